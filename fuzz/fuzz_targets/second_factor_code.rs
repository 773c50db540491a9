#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::second_factor_code(data));
