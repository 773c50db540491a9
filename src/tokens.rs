//! Access tokens: EdDSA-signed JWTs that other services verify with the public keys at
//! `/.well-known/jwks.json`. Expiry is checked against the injected clock, not the wall
//! clock inside the JWT library, so tests can move time.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AppError;
use crate::keys::SigningKeys;

/// Authentication methods (RFC 8176 names where one fits).
pub mod amr {
    pub const PASSWORD: &str = "pwd";
    pub const OTP: &str = "otp";
    pub const MFA: &str = "mfa";
    /// The second factor was skipped because the device was trusted.
    pub const TRUSTED_DEVICE: &str = "device";
    /// A passkey bound to its authenticator (RFC 8176 `hwk`: a hardware-secured key).
    pub const HARDWARE_KEY: &str = "hwk";
    /// A passkey that may be synced to other devices (RFC 8176 `swk`: a software-secured key).
    pub const SOFTWARE_KEY: &str = "swk";
    /// User verification on the authenticator (PIN or biometric; RFC 8176 `user`), which a
    /// passkey sign-in always requires.
    pub const USER: &str = "user";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub amr: Vec<String>,
    /// When the user last proved who they are; refreshing keeps it.
    pub auth_time: i64,
    /// The session (refresh-token family) this token belongs to, so revoking the session
    /// ends its access tokens at once.
    pub sid: Uuid,
}

/// How many verified tokens the cache keeps; beyond that the least useful are evicted.
const VERIFIED_CACHE_CAPACITY: usize = 100_000;

/// A key that verifies tokens and is published in the JWKS.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: String,
    /// The raw public key, base64url, as the JWKS `x` member.
    pub public_x: String,
    decoding: jsonwebtoken::DecodingKey,
    /// When it stopped signing (unix seconds); `None` for the current key and one
    /// prepared ahead of use.
    pub retired_at: Option<i64>,
}

impl PublicKey {
    pub fn new(kid: String, public_x: String, retired_at: Option<i64>) -> Result<Self, AppError> {
        let decoding =
            jsonwebtoken::DecodingKey::from_ed_components(&public_x).map_err(AppError::internal)?;
        Ok(Self {
            kid,
            public_x,
            decoding,
            retired_at,
        })
    }

    fn of(keys: &SigningKeys) -> Self {
        Self {
            kid: keys.kid.clone(),
            public_x: keys.public_x.clone(),
            decoding: keys.decoding.clone(),
            retired_at: None,
        }
    }
}

/// The keys an instance knows: the one it signs with, and every key it accepts and
/// publishes (the current one, one prepared ahead, and retired ones whose tokens may
/// still be live).
#[derive(Clone)]
pub struct KeyRing {
    pub current: SigningKeys,
    pub published: Vec<PublicKey>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn single(current: SigningKeys) -> Self {
        Self {
            published: vec![PublicKey::of(&current)],
            current,
        }
    }

    /// `current` signs; `others` (the current key's own entry among them or not) verify.
    pub fn new(current: SigningKeys, others: Vec<PublicKey>) -> Self {
        let mut published = vec![PublicKey::of(&current)];
        published.extend(others.into_iter().filter(|k| k.kid != current.kid));
        Self { current, published }
    }
}

pub struct TokenSigner {
    ring: RwLock<Arc<KeyRing>>,
    issuer: String,
    ttl_secs: i64,
    /// How long a retired key is still accepted and published: the access-token lifetime
    /// plus the time another instance may take to learn of the rotation (and stop signing
    /// with it).
    retired_grace_secs: i64,
    /// When the ring was last re-read because a token named an unknown key.
    last_unknown_reload: Mutex<Option<Instant>>,
    /// Claims of tokens whose signature was verified, keyed by the token's SHA-256 (never
    /// the token itself). A signature check costs tens of microseconds, and the same
    /// token arrives with every request of its life; expiry is still checked on every use,
    /// and revocation is the session check's job, which the cache does not skip.
    /// The key id is kept beside the claims, so a token whose key has left the ring is
    /// refused even from the cache.
    verified: quick_cache::sync::Cache<[u8; 32], (Arc<AccessClaims>, Arc<str>)>,
}

impl TokenSigner {
    pub fn new(keys: SigningKeys, issuer: String, ttl_secs: i64) -> Self {
        Self::with_ring(KeyRing::single(keys), issuer, ttl_secs, ttl_secs)
    }

    /// A signer with several keys; retired keys are accepted for `retired_grace_secs`
    /// after their retirement (`service::signing_keys::retired_grace_secs`, the same span
    /// the JWKS publishes them for).
    pub fn with_ring(
        ring: KeyRing,
        issuer: String,
        ttl_secs: i64,
        retired_grace_secs: i64,
    ) -> Self {
        Self {
            ring: RwLock::new(Arc::new(ring)),
            issuer,
            ttl_secs,
            retired_grace_secs,
            last_unknown_reload: Mutex::new(None),
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE_CAPACITY),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The keys in use now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the keys (after a rotation, here or on another instance).
    pub fn install(&self, ring: KeyRing) {
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
    }

    /// Whether a retired key is still live at `now`.
    fn live(&self, key: &PublicKey, now: i64) -> bool {
        key.retired_at
            .is_none_or(|retired| now < retired + self.retired_grace_secs)
    }

    /// Whether `token` names a key this instance does not know, and a re-read of the keys
    /// is due (at most one a second, so unknown key ids cannot flood the database).
    pub fn should_reload_for(&self, token: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        let Some(kid) = header.kid else {
            return false;
        };
        if self.ring().published.iter().any(|k| k.kid == kid) {
            return false;
        }
        let mut last = self
            .last_unknown_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    pub fn sign(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        amr: Vec<String>,
        auth_time: i64,
        now: i64,
    ) -> Result<String, AppError> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user_id,
            iat: now,
            exp: now + self.ttl_secs,
            jti: Uuid::new_v4(),
            amr,
            auth_time,
            sid: session_id,
        };
        let ring = self.ring();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(ring.current.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &ring.current.encoding).map_err(AppError::internal)
    }

    /// Checks signature, algorithm, key id (a live key of the ring), issuer and expiry;
    /// any failure is the same `Unauthenticated`, so callers learn nothing about which
    /// check failed.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, AppError> {
        self.verify_with_kid(token, now).map(|(claims, _)| claims)
    }

    fn verify_with_kid(&self, token: &str, now: i64) -> Result<(AccessClaims, Arc<str>), AppError> {
        if token.len() > 4096 {
            return Err(AppError::Unauthenticated);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppError::Unauthenticated)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AppError::Unauthenticated);
        }
        let ring = self.ring();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| ring.published.iter().find(|k| k.kid == kid))
            .filter(|k| self.live(k, now))
            .ok_or(AppError::Unauthenticated)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|_| AppError::Unauthenticated)?;
        if data.claims.exp <= now {
            return Err(AppError::Unauthenticated);
        }
        Ok((data.claims, key.kid.as_str().into()))
    }

    /// As [`TokenSigner::verify`], answering from the cache of verified tokens when it can.
    /// A cached token whose key has since left the ring is refused.
    pub fn verify_cached(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, AppError> {
        if token.len() > 4096 {
            return Err(AppError::Unauthenticated);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = match self.verified.get(&key) {
            Some((claims, kid)) => {
                let ring = self.ring();
                let live = ring
                    .published
                    .iter()
                    .any(|k| *k.kid == *kid && self.live(k, now));
                if !live {
                    self.verified.remove(&key);
                    return Err(AppError::Unauthenticated);
                }
                claims
            }
            None => {
                let (claims, kid) = self.verify_with_kid(token, now)?;
                let claims = Arc::new(claims);
                self.verified.insert(key, (claims.clone(), kid));
                claims
            }
        };
        if claims.exp <= now {
            self.verified.remove(&key);
            return Err(AppError::Unauthenticated);
        }
        Ok(claims)
    }

    /// The JSON Web Key Set (RFC 8037 OKP keys): the current key, one prepared ahead of
    /// use if any, and retired keys until the last token they signed has expired.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let ring = self.ring();
        let keys: Vec<serde_json::Value> = ring
            .published
            .iter()
            .filter(|k| self.live(k, now))
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": k.public_x,
                    "kid": k.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
