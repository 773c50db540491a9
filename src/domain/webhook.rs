//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): a secret is
//! `whsec_` followed by the base64 of its key; a message is signed as `v1,` and the base64
//! of HMAC-SHA256 over `id.timestamp.body`; during a secret's rotation the
//! `webhook-signature` header carries one signature per secret, separated by spaces.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A key shorter than this is refused (the convention asks for 24 to 64 bytes).
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;

/// The key of a `whsec_` secret, or why it is not one.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, &'static str> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or("must start with whsec_")?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| "must be whsec_ followed by base64")?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
        return Err("must hold a key of 24 to 64 bytes");
    }
    Ok(key)
}

/// One `v1,` signature of a message under one key.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space separated.
pub fn signature_header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its reference libraries.
    #[test]
    fn signs_the_specification_example() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn refuses_what_is_not_a_secret() {
        assert!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(secret_key("whsec_not base64!").is_err());
        assert!(secret_key("whsec_c2hvcnQ=").is_err());
    }

    #[test]
    fn rotation_signs_with_every_key() {
        let a = vec![1u8; 32];
        let b = vec![2u8; 32];
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", 10, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [sign(&a, "msg_1", 10, b"{}"), sign(&b, "msg_1", 10, b"{}")]
        );
    }
}

/// Seconds to wait after each failed attempt before the next (the Standard Webhooks
/// schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; about 28 hours in all). After
/// the last, the message is dead.
pub const RETRY_DELAYS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// When to try again after `attempts` failed attempts, or `None`: give up.
pub fn retry_delay(attempts: i64) -> Option<i64> {
    usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| RETRY_DELAYS.get(i).copied())
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn retries_for_about_a_day_then_gives_up() {
        assert_eq!(retry_delay(1), Some(5));
        assert_eq!(retry_delay(7), Some(36_000));
        assert_eq!(retry_delay(8), None);
        let total: i64 = RETRY_DELAYS.iter().sum();
        assert!((24 * 3600..30 * 3600).contains(&total), "{total}");
    }
}
