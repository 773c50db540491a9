//! The fuzz targets (`fuzz/`), run on stable Rust: each target's function over its corpus,
//! every regression kept in `fuzz/regressions/<target>/` (inputs that once crashed it), a
//! list of known-hostile inputs, and a few thousand inputs generated from a fixed seed by
//! mutating the corpus. Coverage-guided fuzzing with `cargo fuzz` needs nightly: see the
//! README, "Hardening".

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Inputs any parser should survive.
const HOSTILE: &[&[u8]] = &[
    b"",
    b" ",
    b"\0",
    b"\xff\xfe\xfd",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    "１２３４５６".as_bytes(),
    "١٢٣٤٥٦".as_bytes(),
    "ｂｅａｒｅｒ ｘ".as_bytes(),
    b"Bearer ",
    b"Bearer  \t ",
    b"bearer\tx",
    b"{",
    b"{\"a\":",
    b"[]",
    b"null",
    b"{\"password\": \"\\ud800\\udc00 surrogate pair\", \"code\": \"\\u0000\"}",
    b"{\"trustDevice\": {\"trustDevice\": {\"trustDevice\": {}}}}",
    b"{\"email\": 1e400, \"password\": -0, \"enable\": \"true\"}",
    b"\x00\x00\x00",
    b"\x00,,,,,,,,,,,,,,,,,,,,",
    b"\x00::ffff:127.0.0.1, fe80::1%eth0, [::1]:80, 1.2.3.4:5",
];

/// A small deterministic generator (xorshift64*), so every run tries the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One mutation of `seed`: flip, insert, delete, duplicate or splice bytes.
    fn mutate(&mut self, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(6) {
                0 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] ^= 1 << self.below(8);
                }
                1 => {
                    let interesting = [
                        b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'-', b' ', 0, 0x7f, 0x80,
                        0xff, b'0', b'9',
                    ];
                    out.insert(at, interesting[self.below(interesting.len())]);
                }
                2 if !out.is_empty() => {
                    let end = (at + self.below(8)).min(out.len());
                    out.drain(at.min(end)..end);
                }
                3 if !out.is_empty() => {
                    let start = self.below(out.len());
                    let end = (start + self.below(16)).min(out.len());
                    let piece = out[start..end].to_vec();
                    out.splice(at..at, piece);
                }
                4 if !others.is_empty() => {
                    let other = &others[self.below(others.len())];
                    let start = self.below(other.len());
                    out.splice(at..at, other[start..].iter().copied());
                }
                _ => out.insert(at, self.next() as u8),
            }
        }
        out.truncate(4096);
        out
    }
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| !p.ends_with(".keep"))
        .map(|p| std::fs::read(p).expect("read input"))
        .collect()
}

fn run(target: &str, function: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files(&root.join("corpus").join(target));
    let regressions = files(&root.join("regressions").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} has seed inputs");
    let mut inputs: Vec<Vec<u8>> = corpus.clone();
    inputs.extend(regressions);
    inputs.extend(HOSTILE.iter().map(|h| h.to_vec()));
    inputs.push(vec![b'7'; 100_000]);
    inputs.push([b"Bearer ".as_slice(), &[b'a'; 5000]].concat());
    let mut rng = Rng(0x5eed_0000_0000_0001 ^ target.len() as u64);
    let seeds = inputs.clone();
    for _ in 0..10_000 {
        let seed = &seeds[rng.below(seeds.len())];
        inputs.push(rng.mutate(seed, &seeds));
    }
    for input in &inputs {
        let outcome = catch_unwind(AssertUnwindSafe(|| function(input)));
        assert!(
            outcome.is_ok(),
            "fuzz target {target} panicked on {:?}; keep this input in fuzz/regressions/{target}/",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn second_factor_code_survives_hostile_input() {
    run("second_factor_code", targets::second_factor_code);
}

#[test]
fn backup_code_survives_hostile_input() {
    run("backup_code", targets::backup_code);
}

#[test]
fn bearer_token_survives_hostile_input() {
    run("bearer_token", targets::bearer_token);
}

#[test]
fn json_body_survives_hostile_input() {
    run("json_body", targets::json_body);
}

#[test]
fn forwarded_for_survives_hostile_input() {
    run("forwarded_for", targets::forwarded_for);
}
