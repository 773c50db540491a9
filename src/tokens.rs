//! Access tokens: EdDSA-signed JWTs that other services verify with the public keys at
//! `/.well-known/jwks.json`. Expiry is checked against the injected clock, not the wall
//! clock inside the JWT library, so tests can move time.

use std::sync::Arc;

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

pub struct TokenSigner {
    keys: SigningKeys,
    issuer: String,
    ttl_secs: i64,
    /// Claims of tokens whose signature was verified, keyed by the token's SHA-256 (never
    /// the token itself). A signature check costs tens of microseconds, and the same
    /// token arrives with every request of its life; expiry is still checked on every use,
    /// and revocation is the session check's job, which the cache does not skip.
    verified: quick_cache::sync::Cache<[u8; 32], Arc<AccessClaims>>,
}

impl TokenSigner {
    pub fn new(keys: SigningKeys, issuer: String, ttl_secs: i64) -> Self {
        Self {
            keys,
            issuer,
            ttl_secs,
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE_CAPACITY),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
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
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.keys.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.keys.encoding).map_err(AppError::internal)
    }

    /// Checks signature, algorithm, key id, issuer and expiry; any failure is the same
    /// `Unauthenticated`, so callers learn nothing about which check failed.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, AppError> {
        if token.len() > 4096 {
            return Err(AppError::Unauthenticated);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppError::Unauthenticated)?;
        if header.alg != Algorithm::EdDSA || header.kid.as_deref() != Some(self.keys.kid.as_str()) {
            return Err(AppError::Unauthenticated);
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.keys.decoding, &validation)
            .map_err(|_| AppError::Unauthenticated)?;
        if data.claims.exp <= now {
            return Err(AppError::Unauthenticated);
        }
        Ok(data.claims)
    }

    /// As [`TokenSigner::verify`], answering from the cache of verified tokens when it can.
    pub fn verify_cached(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, AppError> {
        if token.len() > 4096 {
            return Err(AppError::Unauthenticated);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = match self.verified.get(&key) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify(token, now)?);
                self.verified.insert(key, claims.clone());
                claims
            }
        };
        if claims.exp <= now {
            self.verified.remove(&key);
            return Err(AppError::Unauthenticated);
        }
        Ok(claims)
    }

    /// The JSON Web Key Set that publishes the verification key (RFC 8037 OKP key).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": self.keys.public_x,
                "kid": self.keys.kid,
                "use": "sig",
                "alg": "EdDSA",
            }]
        })
    }
}
