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

    /// `SHA1`, `SHA256` or `SHA512`, in any case (as `otpauth://` URIs write them).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// How an authenticator makes its codes: hash, digits and period. Only the values every
/// mainstream authenticator app supports are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: i64,
}

impl Default for Params {
    /// What a new enrolment gets: SHA1, 6 digits, 30 seconds.
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: DIGITS,
            period: PERIOD,
        }
    }
}

/// The digit counts an authenticator may use.
pub const ALLOWED_DIGITS: [u32; 2] = [6, 8];
/// The periods (seconds) an authenticator may use.
pub const ALLOWED_PERIODS: [i64; 2] = [30, 60];

impl Params {
    /// Checks digits and period against [`ALLOWED_DIGITS`] and [`ALLOWED_PERIODS`].
    pub fn new(algorithm: Algorithm, digits: i64, period: i64) -> Result<Self, ParamError> {
        let digits = u32::try_from(digits)
            .ok()
            .filter(|d| ALLOWED_DIGITS.contains(d))
            .ok_or(ParamError::Digits)?;
        if !ALLOWED_PERIODS.contains(&period) {
            return Err(ParamError::Period);
        }
        Ok(Self {
            algorithm,
            digits,
            period,
        })
    }

    /// From the stored columns; a row that holds anything else is refused.
    pub fn from_stored(algorithm: &str, digits: i64, period: i64) -> Result<Self, ParamError> {
        let algorithm = Algorithm::from_name(algorithm).ok_or(ParamError::Algorithm)?;
        Self::new(algorithm, digits, period)
    }
}

/// Why TOTP parameters were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    Algorithm,
    Digits,
    Period,
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ParamError::Algorithm => "algorithm must be SHA1, SHA256 or SHA512",
            ParamError::Digits => "digits must be 6 or 8",
            ParamError::Period => "period must be 30 or 60 seconds",
        })
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
        Self::with_params(secret, Params::default())
    }

    pub fn with_params(secret: &[u8], params: Params) -> Self {
        Self::new(secret, params.algorithm, params.digits, params.period)
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
        self.matching_step_around(code, unix_seconds, 0, skew)
    }

    /// As [`Totp::matching_step`] with the window centred on the authenticator's learned
    /// `drift` (in steps): `now + drift ± skew`. The window is as wide as without drift.
    pub fn matching_step_around(
        &self,
        code: &str,
        unix_seconds: i64,
        drift: i64,
        skew: i64,
    ) -> Option<i64> {
        let centre = self.step_at(unix_seconds) + drift;
        self.matching_step_in(code, centre - skew, centre + skew)
    }

    /// The step in `first..=last` whose code equals `code`, newest first, every candidate
    /// compared in constant time.
    fn matching_step_in(&self, code: &str, first: i64, last: i64) -> Option<i64> {
        let keyed = KeyedMac::new(&self.secret, self.algorithm);
        let mut found = None;
        for step in (first..=last).rev() {
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

/// The step `s` within `now ± window_secs` where `first` is the code of `s` and `second`
/// the code of `s + 1` (two consecutive codes, as RFC 6238 section 6 resynchronisation
/// asks for), nearest the current step first. `None` when there is no such step or more
/// than one (which two codes cannot decide between).
pub fn resync_step(
    totp: &Totp,
    first: &str,
    second: &str,
    now: i64,
    window_secs: i64,
) -> Option<i64> {
    let current = totp.step_at(now);
    let reach = window_secs / totp.period;
    let keyed = KeyedMac::new(&totp.secret, totp.algorithm);
    let code = |step: i64| {
        let mut buffer = [0u8; MAX_DIGITS];
        write_digits(keyed.truncated(step as u64), totp.digits, &mut buffer).to_vec()
    };
    let mut found = Vec::new();
    let mut previous = code(current - reach);
    for step in current - reach..current + reach {
        let next = code(step + 1);
        let a: bool = previous.ct_eq(first.as_bytes()).into();
        let b: bool = next.ct_eq(second.as_bytes()).into();
        if a && b {
            found.push(step);
        }
        previous = next;
    }
    match found.as_slice() {
        [step] => Some(*step),
        _ => None,
    }
}

/// The drift to remember after a code matched `matched` at `current`: its offset, within
/// `±max`.
pub fn learned_drift(matched: i64, current: i64, max: i64) -> i64 {
    (matched - current).clamp(-max, max)
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

/// The shortest secret an import accepts: 80 bits, what the oldest authenticator
/// deployments hand out (16 base32 characters). New enrolments get [`SECRET_LEN`].
pub const MIN_IMPORTED_SECRET_LEN: usize = 10;
/// The longest: 512 bits, a full SHA-512 block's worth of key.
pub const MAX_IMPORTED_SECRET_LEN: usize = 64;

/// A base32 secret as people and exporters write it: any case, spaces, dashes and `=`
/// padding allowed. Refusals never quote the secret.
pub fn parse_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '=' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    if cleaned.is_empty() {
        return Err("the secret is empty");
    }
    let secret = data_encoding::BASE32_NOPAD
        .decode(cleaned.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| "the secret is not base32 (RFC 4648)")?;
    if secret.len() < MIN_IMPORTED_SECRET_LEN {
        return Err("the secret is shorter than 80 bits");
    }
    if secret.len() > MAX_IMPORTED_SECRET_LEN {
        return Err("the secret is longer than 512 bits");
    }
    Ok(secret)
}

/// An authenticator read from an `otpauth://totp/...` URI (the Key Uri Format).
pub struct OtpAuth {
    pub secret: Zeroizing<Vec<u8>>,
    pub params: Params,
}

impl std::fmt::Debug for OtpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpAuth")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Parses an `otpauth://totp/LABEL?secret=...&algorithm=...&digits=...&period=...` URI:
/// `secret` is required, the others default to SHA1, 6 and 30; `issuer`, the label and
/// any other parameter are ignored. Refusals say what is wrong, never the secret.
pub fn parse_otpauth(uri: &str) -> Result<OtpAuth, String> {
    let parsed = url::Url::parse(uri.trim()).map_err(|_| "not a valid URI".to_owned())?;
    if parsed.scheme() != "otpauth" {
        return Err("the URI scheme is not otpauth".into());
    }
    match parsed.host_str().map(str::to_ascii_lowercase).as_deref() {
        Some("totp") => {}
        Some("hotp") => return Err("HOTP (counter-based) authenticators are not supported".into()),
        _ => return Err("the URI type is not totp".into()),
    }
    let mut secret = None;
    let mut algorithm = None;
    let mut digits = None;
    let mut period = None;
    for (name, value) in parsed.query_pairs() {
        let slot = match name.to_ascii_lowercase().as_str() {
            "secret" => &mut secret,
            "algorithm" => &mut algorithm,
            "digits" => &mut digits,
            "period" => &mut period,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("the URI has `{name}` more than once"));
        }
        *slot = Some(Zeroizing::new(value.into_owned()));
    }
    let secret = parse_secret(secret.as_deref().ok_or("the URI has no secret")?)?;
    let algorithm = match algorithm {
        Some(name) => Algorithm::from_name(&name).ok_or(ParamError::Algorithm.to_string())?,
        None => Algorithm::Sha1,
    };
    let number = |value: Option<Zeroizing<String>>, default: i64, error: ParamError| match value {
        Some(text) => text.trim().parse::<i64>().map_err(|_| error.to_string()),
        None => Ok(default),
    };
    let digits = number(digits, i64::from(DIGITS), ParamError::Digits)?;
    let period = number(period, PERIOD, ParamError::Period)?;
    let params = Params::new(algorithm, digits, period).map_err(|e| e.to_string())?;
    Ok(OtpAuth { secret, params })
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
    fn the_window_is_centred_on_the_drift_and_keeps_its_width() {
        let totp = Totp::standard(SEED20);
        let now = 1_700_000_000;
        let step = totp.step_at(now);
        for offset in 4..=6 {
            let code = totp.code_for_step(step + offset);
            assert_eq!(
                totp.matching_step_around(&code, now, 5, 1),
                Some(step + offset)
            );
        }
        for offset in [0, 3, 7] {
            let code = totp.code_for_step(step + offset);
            assert_eq!(
                totp.matching_step_around(&code, now, 5, 1),
                None,
                "offset {offset}"
            );
        }
        assert_eq!(learned_drift(step + 1, step, 10), 1);
        assert_eq!(learned_drift(step - 12, step, 10), -10);
    }

    #[test]
    fn resync_finds_two_consecutive_codes_within_the_window() {
        let totp = Totp::new(SEED32, Algorithm::Sha256, 8, 30);
        let now = 1_700_000_000;
        let step = totp.step_at(now);
        let (a, b) = (totp.code_for_step(step + 8), totp.code_for_step(step + 9));
        assert_eq!(resync_step(&totp, &a, &b, now, 600), Some(step + 8));
        // Not consecutive, reversed, or beyond the window: nothing.
        assert_eq!(resync_step(&totp, &b, &a, now, 600), None);
        let c = totp.code_for_step(step + 10);
        assert_eq!(resync_step(&totp, &a, &c, now, 600), None);
        let (far, after) = (totp.code_for_step(step + 25), totp.code_for_step(step + 26));
        assert_eq!(resync_step(&totp, &far, &after, now, 600), None);
    }

    #[test]
    fn otpauth_uris_are_parsed_with_their_parameters() {
        let secret = base32(SEED32);
        let uri = format!(
            "otpauth://totp/Acme:ann%40example.com?secret={secret}&issuer=Acme&algorithm=sha256&digits=8&period=60"
        );
        let parsed = parse_otpauth(&uri).unwrap();
        assert_eq!(parsed.secret.as_slice(), SEED32);
        assert_eq!(
            parsed.params,
            Params::new(Algorithm::Sha256, 8, 60).unwrap()
        );
        let plain = parse_otpauth(&format!("otpauth://totp/x?secret={}", base32(SEED20))).unwrap();
        assert_eq!(plain.params, Params::default());
        for (bad, why) in [
            (
                format!("otpauth://hotp/x?secret={secret}&counter=1"),
                "HOTP",
            ),
            ("otpauth://totp/x?issuer=a".to_owned(), "no secret"),
            (
                format!("otpauth://totp/x?secret={secret}&digits=7"),
                "digits",
            ),
            (
                format!("otpauth://totp/x?secret={secret}&period=45"),
                "period",
            ),
            (
                format!("otpauth://totp/x?secret={secret}&algorithm=MD5"),
                "algorithm",
            ),
            ("otpauth://totp/x?secret=GEZDGNBV".to_owned(), "80 bits"),
            ("otpauth://totp/x?secret=!!!!".to_owned(), "base32"),
            ("https://example.com/?secret=GEZDGNBV".to_owned(), "scheme"),
        ] {
            let err = parse_otpauth(&bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                !err.contains(&secret),
                "the refusal never quotes the secret"
            );
        }
    }

    #[test]
    fn secrets_are_read_leniently() {
        assert_eq!(
            parse_secret("gezd gnbv-gy3t qojq gezd gnbv gy3t qojq====")
                .unwrap()
                .as_slice(),
            SEED20
        );
        assert!(parse_secret("").is_err());
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
