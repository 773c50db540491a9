//! TOTP (RFC 6238) over HOTP (RFC 4226), written out here so that the exact time step a
//! code matched is known: replay protection stores that step and accepts only later ones.

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

/// What every mainstream authenticator app supports.
pub const DIGITS: u32 = 6;
pub const PERIOD: i64 = 30;
/// 160 bits, the size RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

pub struct Totp {
    secret: Zeroizing<Vec<u8>>,
    algorithm: Algorithm,
    digits: u32,
    period: i64,
}

impl Totp {
    pub fn new(secret: &[u8], algorithm: Algorithm, digits: u32, period: i64) -> Self {
        Self {
            secret: Zeroizing::new(secret.to_vec()),
            algorithm,
            digits,
            period,
        }
    }

    /// The profile every app understands: SHA1, 6 digits, 30 seconds.
    pub fn standard(secret: &[u8]) -> Self {
        Self::new(secret, Algorithm::Sha1, DIGITS, PERIOD)
    }

    /// The time step (counter) that contains `unix_seconds`.
    pub fn step_at(&self, unix_seconds: i64) -> i64 {
        unix_seconds.div_euclid(self.period)
    }

    /// The code for a time step.
    pub fn code_for_step(&self, step: i64) -> String {
        hotp(&self.secret, self.algorithm, step as u64, self.digits)
    }

    pub fn code_at(&self, unix_seconds: i64) -> String {
        self.code_for_step(self.step_at(unix_seconds))
    }

    /// The step in `now ± skew` steps whose code equals `code`, newest first. Every
    /// candidate is computed and compared in constant time, so timing says nothing about
    /// which step (if any) matched.
    ///
    /// The key is absorbed into the HMAC state once and that state copied for each step,
    /// and candidates are written into a stack buffer: a check of three steps costs about
    /// twice one plain HMAC (`cargo bench --bench micro totp`).
    pub fn matching_step(&self, code: &str, unix_seconds: i64, skew: i64) -> Option<i64> {
        let current = self.step_at(unix_seconds);
        let keyed = KeyedMac::new(&self.secret, self.algorithm);
        let mut found = None;
        for step in (current - skew..=current + skew).rev() {
            let mut buffer = [0u8; MAX_DIGITS];
            let candidate = write_digits(keyed.truncated(step as u64), self.digits, &mut buffer);
            let equal: bool = candidate.ct_eq(code.as_bytes()).into();
            if equal && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

/// Most digits a code can have (10^9 is the largest power of ten below 2^31).
const MAX_DIGITS: usize = 9;

/// An HMAC with the key already absorbed (the inner and outer padded-key blocks hashed),
/// so each counter costs only the message and finalisation blocks.
enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl KeyedMac {
    fn new(secret: &[u8], algorithm: Algorithm) -> Self {
        fn key<M: hmac::digest::KeyInit>(secret: &[u8]) -> M {
            M::new_from_slice(secret).expect("HMAC takes any key length")
        }
        match algorithm {
            Algorithm::Sha1 => KeyedMac::Sha1(key(secret)),
            Algorithm::Sha256 => KeyedMac::Sha256(key(secret)),
            Algorithm::Sha512 => KeyedMac::Sha512(key(secret)),
        }
    }

    /// HOTP's dynamic truncation of the HMAC of the big-endian counter (31 bits).
    fn truncated(&self, counter: u64) -> u32 {
        fn run<M: Mac + Clone>(keyed: &M, counter: u64) -> u32 {
            let mut mac = keyed.clone();
            mac.update(&counter.to_be_bytes());
            let digest = mac.finalize().into_bytes();
            let offset = (digest[digest.len() - 1] & 0x0f) as usize;
            u32::from_be_bytes([
                digest[offset] & 0x7f,
                digest[offset + 1],
                digest[offset + 2],
                digest[offset + 3],
            ])
        }
        match self {
            KeyedMac::Sha1(m) => run(m, counter),
            KeyedMac::Sha256(m) => run(m, counter),
            KeyedMac::Sha512(m) => run(m, counter),
        }
    }
}

/// `value mod 10^digits` as exactly `digits` ASCII digits, zero-padded, in `buffer`.
fn write_digits(value: u32, digits: u32, buffer: &mut [u8; MAX_DIGITS]) -> &[u8] {
    let len = (digits as usize).min(MAX_DIGITS);
    let mut rest = value % 10u32.pow(len as u32);
    for slot in buffer[..len].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    &buffer[..len]
}

/// HOTP: HMAC of the big-endian counter, dynamic truncation, modulo 10^digits.
pub fn hotp(secret: &[u8], algorithm: Algorithm, counter: u64, digits: u32) -> String {
    let mut buffer = [0u8; MAX_DIGITS];
    let code = write_digits(
        KeyedMac::new(secret, algorithm).truncated(counter),
        digits,
        &mut buffer,
    );
    String::from_utf8_lossy(code).into_owned()
}

/// A fresh random secret of [`SECRET_LEN`] bytes.
pub fn generate_secret() -> Zeroizing<Vec<u8>> {
    let bytes: [u8; SECRET_LEN] = rand::random();
    Zeroizing::new(bytes.to_vec())
}

/// RFC 4648 base32 without padding, the form authenticator apps expect.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`
/// (the Key Uri Format that Google Authenticator defined and the others follow).
pub fn otpauth_url(issuer: &str, account: &str, secret_base32: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={}&period={}",
        percent_encode(issuer),
        percent_encode(account),
        secret_base32,
        percent_encode(issuer),
        DIGITS,
        PERIOD
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 4226 Appendix D: HOTP values for counters 0..9 with the ASCII secret above.
    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(
                hotp(SEED20, Algorithm::Sha1, counter as u64, 6),
                *want,
                "counter {counter}"
            );
        }
    }

    /// RFC 6238 Appendix B: 8-digit TOTP values at the listed times for all three hashes.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let rows: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in rows {
            assert_eq!(
                Totp::new(SEED20, Algorithm::Sha1, 8, 30).code_at(time),
                sha1,
                "SHA1 at {time}"
            );
            assert_eq!(
                Totp::new(SEED32, Algorithm::Sha256, 8, 30).code_at(time),
                sha256,
                "SHA256 at {time}"
            );
            assert_eq!(
                Totp::new(SEED64, Algorithm::Sha512, 8, 30).code_at(time),
                sha512,
                "SHA512 at {time}"
            );
        }
    }

    #[test]
    fn matching_step_accepts_one_step_either_side_and_no_further() {
        let totp = Totp::standard(SEED20);
        let now = 1_700_000_000;
        let step = totp.step_at(now);
        for offset in -1..=1 {
            let code = totp.code_for_step(step + offset);
            assert_eq!(totp.matching_step(&code, now, 1), Some(step + offset));
        }
        for offset in [-2, 2] {
            let code = totp.code_for_step(step + offset);
            assert_eq!(totp.matching_step(&code, now, 1), None, "offset {offset}");
        }
    }

    #[test]
    fn otpauth_url_encodes_issuer_and_account() {
        let url = otpauth_url("Acme Corp", "ann@example.com", "ABC");
        assert_eq!(
            url,
            "otpauth://totp/Acme%20Corp:ann%40example.com?secret=ABC&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30"
        );
    }
}
