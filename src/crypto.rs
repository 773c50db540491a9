//! Cryptographic building blocks, each wrapped so the rest of the code cannot misuse it:
//! password hashing that never runs on the async runtime, AEAD sealing bound to a row,
//! keyed hashes for low-entropy values, and plain hashes for high-entropy tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::{Zeroize, Zeroizing};

use crate::domain::validate;
use crate::error::AppError;
use crate::keys::SymmetricKey;
use crate::metrics::Metrics;

/// Argon2id hashing and verification on tokio's blocking pool, at most `max_concurrent` at
/// a time: each hash holds ~19 MiB, so an unbounded login flood would exhaust memory.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the account does not exist so
    /// that "no such account" costs the same time as "wrong password".
    dummy_hash: Arc<String>,
    /// Hashes running or queued, for the `tessera_argon2_in_flight` gauge.
    in_flight: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    /// Working memory kept between hashes (see [`Argon2Memory`]).
    memory: Argon2Memory,
}

/// Argon2's working memory (19 MiB a hash by default), one buffer per hash running at
/// once, allocated on first use and kept. Allocating it per hash would let the allocator
/// keep freed buffers in per-thread arenas of the blocking pool (measured: a login flood
/// grew the resident set to ~480 MiB), and page-faulting fresh memory costs time on every
/// hash. At most `max_concurrent` hashes run, so at most that many buffers ever exist.
///
/// A buffer is wiped after every hash: the blocks are derived from the password, so a
/// kept buffer would otherwise hold material an attacker with a memory dump (a core
/// file, swap, a later bug that reads freed or pooled memory) could attack offline.
#[derive(Clone, Default)]
struct Argon2Memory(Arc<std::sync::Mutex<Vec<Vec<Block>>>>);

impl Argon2Memory {
    /// Runs `f` with a buffer of at least `blocks` blocks, then wipes the part it used
    /// and keeps the buffer. The wipe also runs if `f` panics.
    fn with<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let taken = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let buffer = match taken {
            Some(buffer) if buffer.len() >= blocks => buffer,
            _ => vec![Block::default(); blocks],
        };
        let mut lease = Lease {
            pool: self,
            buffer,
            used: blocks,
        };
        f(&mut lease.buffer[..blocks])
    }

    /// The buffers kept now, for tests to inspect.
    #[cfg(test)]
    fn kept(&self) -> Vec<Vec<Block>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A buffer out of the pool: wiped and returned when dropped, on success or panic.
struct Lease<'a> {
    pool: &'a Argon2Memory,
    buffer: Vec<Block>,
    used: usize,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        wipe_argon2_memory(&mut self.buffer[..self.used]);
        let buffer = std::mem::take(&mut self.buffer);
        self.pool
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(buffer);
    }
}

/// Zeroes Argon2 working memory with writes the compiler may not elide (`zeroize`).
/// Public so the benchmarks can measure what the wipe adds to a hash.
pub fn wipe_argon2_memory(blocks: &mut [Block]) {
    blocks.iter_mut().for_each(Zeroize::zeroize);
}

/// Counts a hash as in flight from queueing to completion, and records its duration.
struct InFlight<'a> {
    hasher: &'a PasswordHasher,
    started: Instant,
    operation: &'static str,
}

impl<'a> InFlight<'a> {
    fn start(hasher: &'a PasswordHasher, operation: &'static str) -> Self {
        hasher.in_flight.fetch_add(1, Ordering::SeqCst);
        Self {
            hasher,
            started: Instant::now(),
            operation,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.hasher.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.hasher.metrics.observe(
            "tessera_argon2_duration_seconds",
            &[("operation", self.operation)],
            self.started.elapsed().as_secs_f64(),
        );
    }
}

impl PasswordHasher {
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        max_concurrent: usize,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
        let memory = Argon2Memory::default();
        let dummy_password = random_token();
        let dummy_hash = hash_blocking(&params, dummy_password.as_bytes(), &memory)?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(dummy_hash),
            in_flight: Arc::new(AtomicUsize::new(0)),
            metrics,
            memory,
        })
    }

    /// Hashes a password, in NFKC (see [`validate::password_nfkc`]), to a PHC string.
    pub async fn hash(&self, password: &SecretString) -> Result<String, AppError> {
        let _in_flight = InFlight::start(self, "hash");
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let params = self.params.clone();
        let memory = self.memory.clone();
        let password =
            Zeroizing::new(validate::password_nfkc(password.expose_secret()).into_bytes());
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| hash_blocking(&params, &password, &memory))
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
    }

    /// Checks a password, in NFKC, against a stored hash, or against the dummy hash when
    /// there is no account, so both cases take the same time. Returns whether it matched.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<bool, AppError> {
        let _in_flight = InFlight::start(self, "verify");
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let is_real = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_owned();
        let normalized =
            Zeroizing::new(validate::password_nfkc(password.expose_secret()).into_bytes());
        // A hash made before passwords were normalized is of the password as typed then;
        // when the input is not in NFKC, that form is tried too. Whether it is depends on
        // the input alone, so the extra time tells nothing about the account.
        let as_typed = (normalized.as_slice() != password.expose_secret().as_bytes())
            .then(|| Zeroizing::new(password.expose_secret().as_bytes().to_vec()));
        let memory = self.memory.clone();
        let span = tracing::Span::current();
        let matched = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                verify_blocking(&normalized, &stored, &memory)
                    || as_typed.is_some_and(|raw| verify_blocking(&raw, &stored, &memory))
            })
        })
        .await
        .map_err(AppError::internal)?;
        Ok(matched && is_real)
    }

    /// Hashes running or waiting for a slot right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Argon2id of `password` under a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
fn hash_blocking(
    params: &Params,
    password: &[u8],
    memory: &Argon2Memory,
) -> anyhow::Result<String> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    memory
        .with(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password, &salt_bytes, &mut out[..], blocks)
        })
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out[..]).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored`, recomputed with the algorithm,
/// version and parameters the string names (so hashes made under older parameters keep
/// working) and compared in constant time.
fn verify_blocking(password: &[u8], stored: &str, memory: &Argon2Memory) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let mut salt_buffer = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = Zeroizing::new([0u8; Output::MAX_LENGTH]);
    let out = &mut out[..expected.len()];
    let computed = memory.with(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt, out, blocks)
    });
    computed.is_ok() && constant_time_eq(out, expected.as_bytes())
}

const NONCE_LEN: usize = 24;

/// Encrypts with XChaCha20-Poly1305 under the master key. `aad` names the row and column
/// the ciphertext belongs to, so a ciphertext copied to another row fails to open.
pub fn seal(key: &SymmetricKey, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, AppError> {
    let cipher = XChaCha20Poly1305::new_from_slice(key.bytes()).map_err(AppError::internal)?;
    let nonce_bytes: [u8; NONCE_LEN] = rand::random();
    let ciphertext = cipher
        .encrypt(
            (&nonce_bytes).into(),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| AppError::internal("sealing failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens what [`seal`] produced with the same `aad`.
pub fn open(key: &SymmetricKey, aad: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AppError> {
    if sealed.len() < NONCE_LEN {
        return Err(AppError::internal("sealed value too short"));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(AppError::internal)?;
    let cipher = XChaCha20Poly1305::new_from_slice(key.bytes()).map_err(AppError::internal)?;
    cipher
        .decrypt(
            (&nonce).into(),
            Payload {
                msg: ciphertext,
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| AppError::internal("a sealed secret failed to open (wrong master key?)"))
}

/// HMAC-SHA256 under the pepper, with a purpose label so a hash made for one use never
/// matches in another. For low-entropy values (backup codes, device fingerprints) that a
/// database thief must not be able to brute-force without the pepper.
pub fn keyed_hash(pepper: &SymmetricKey, purpose: &str, value: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(pepper.bytes())
        .expect("any key length");
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(value);
    mac.finalize().into_bytes().to_vec()
}

/// SHA-256 of a high-entropy bearer token: enough to make a stolen table useless.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// 256 random bits from the OS generator, base64url without padding (43 characters).
pub fn random_token() -> String {
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(rand::random());
    URL_SAFE_NO_PAD.encode(*bytes)
}

/// A new random refresh-token family (see [`refresh_token`]).
pub fn refresh_family() -> [u8; 16] {
    rand::random()
}

/// A new refresh token of `family`: the family, then a random token, as
/// `<22 characters>.<43 characters>`. Only the token's hash is stored, and only while it
/// is live or just retired; the family in front is how a token retired long ago is still
/// known as its session's, so presenting it revokes that session.
pub fn refresh_token(family: &[u8; 16]) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(family), random_token())
}

/// The family a refresh token starts with, if it has one (tokens issued before families
/// existed have none).
pub fn refresh_token_family(token: &str) -> Option<[u8; 16]> {
    let (family, _) = token.split_once('.')?;
    URL_SAFE_NO_PAD.decode(family).ok()?.try_into().ok()
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn small_params() -> Params {
        Params::new(64, 1, 1, None).expect("params")
    }

    /// The hashes made with pooled memory are standard PHC Argon2id strings that the
    /// argon2 crate's own verifier accepts, and its hashes verify here.
    #[test]
    fn pooled_hashing_interoperates_with_the_argon2_crate() {
        let memory = Argon2Memory::default();
        let ours = hash_blocking(&small_params(), b"correct horse", &memory).expect("hash");
        assert!(ours.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(verify_blocking(b"correct horse", &ours, &memory));
        assert!(!verify_blocking(b"wrong horse", &ours, &memory));

        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).expect("params"),
        )
        .hash_password(b"battery staple", &salt)
        .expect("hash")
        .to_string();
        assert!(verify_blocking(b"battery staple", &theirs, &memory));
        assert!(!verify_blocking(b"battery stapler", &theirs, &memory));
        assert!(!verify_blocking(
            b"battery staple",
            "not a phc string",
            &memory
        ));
        // One buffer served every call, grown to the largest parameters seen.
        assert_eq!(memory.0.lock().unwrap().len(), 1);
    }

    fn all_zero(buffers: &[Vec<Block>]) -> bool {
        buffers
            .iter()
            .flatten()
            .all(|block| block.as_ref().iter().all(|word| *word == 0))
    }

    /// After a hash, and after a verify, the pooled working memory holds nothing derived
    /// from the password.
    #[test]
    fn pooled_memory_is_wiped_after_each_use() {
        let memory = Argon2Memory::default();
        let hash = hash_blocking(&small_params(), b"correct horse", &memory).expect("hash");
        let kept = memory.kept();
        assert_eq!(kept.len(), 1, "the buffer is kept for the next hash");
        assert_eq!(kept[0].len(), small_params().block_count());
        assert!(all_zero(&kept), "the buffer is wiped after hashing");

        assert!(verify_blocking(b"correct horse", &hash, &memory));
        assert!(all_zero(&memory.kept()), "and after verifying");
        assert!(!verify_blocking(b"wrong horse", &hash, &memory));
        assert!(all_zero(&memory.kept()), "and after a failed verify");

        // A smaller hash in a larger kept buffer wipes what it used; the rest was wiped
        // before.
        let large = Params::new(256, 1, 1, None).expect("params");
        hash_blocking(&large, b"battery staple", &memory).expect("hash");
        hash_blocking(&small_params(), b"battery staple", &memory).expect("hash");
        let kept = memory.kept();
        assert_eq!(kept[0].len(), large.block_count());
        assert!(all_zero(&kept));
    }

    /// A hash that panics midway still leaves the buffer wiped.
    #[test]
    fn pooled_memory_is_wiped_when_a_hash_panics() {
        let memory = Argon2Memory::default();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            memory.with(small_params().block_count(), |blocks| {
                blocks[0] = Block::new();
                blocks[0].as_mut()[0] = 0xdead_beef;
                panic!("hash failed midway");
            })
        }));
        assert!(outcome.is_err());
        assert!(all_zero(&memory.kept()));
    }

    #[test]
    fn a_refresh_token_carries_its_family_and_nothing_else_parses_as_one() {
        let family = refresh_family();
        let token = refresh_token(&family);
        assert_eq!(refresh_token_family(&token), Some(family));
        assert_ne!(refresh_token(&family), token, "each token is new");
        assert_eq!(refresh_token_family(&random_token()), None, "no family");
        assert_eq!(refresh_token_family("short.x"), None);
        assert_eq!(refresh_token_family("not base64 at all!!!!!.x"), None);
    }
}
