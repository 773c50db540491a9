//! The three keys Tessera needs: the Ed25519 key that signs access tokens, the master key
//! that encrypts TOTP secrets at rest, and the pepper that keys the hashes of backup codes
//! and device fingerprints.
//!
//! Each comes from configuration (inline or `*_file`) or, failing that, from a file in the
//! data dir that the first start creates with owner-only permissions. Several instances
//! share keys by pointing at the same files or values.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::Config;

/// A 256-bit symmetric key, zeroed when dropped and never printed.
#[derive(Clone)]
pub struct SymmetricKey(Zeroizing<[u8; 32]>);

impl SymmetricKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey([redacted])")
    }
}

/// The token-signing key pair and its public identity.
#[derive(Clone)]
pub struct SigningKeys {
    pub encoding: jsonwebtoken::EncodingKey,
    pub decoding: jsonwebtoken::DecodingKey,
    /// Key id in every token header and in the JWKS: a digest of the public key.
    pub kid: String,
    /// The raw public key, base64url, as the JWKS `x` member.
    pub public_x: String,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct Keys {
    pub signing: SigningKeys,
    pub master: SymmetricKey,
    pub pepper: SymmetricKey,
}

impl Keys {
    /// Loads every key from configuration or the data dir, creating missing files.
    pub fn load_or_create(config: &Config) -> anyhow::Result<Self> {
        if !config.data_dir.exists() {
            fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
            // The data dir holds the keys and (on SQLite) every account: owner only. An
            // existing dir is left as the operator set it up.
            fs::set_permissions(&config.data_dir, fs::Permissions::from_mode(0o700))?;
        }
        let signing_pem = secret_text(
            config.jwt_private_key.as_ref(),
            config.jwt_private_key_file.as_deref(),
            &config.data_dir.join("jwt-ed25519.pem"),
            generate_signing_pem,
        )?;
        let signing = signing_keys_from_pem(&signing_pem).context("reading the JWT signing key")?;
        let master = symmetric_key(
            config.master_key.as_ref(),
            config.master_key_file.as_deref(),
            &config.data_dir.join("master.key"),
        )
        .context("reading the master key")?;
        let pepper = symmetric_key(
            config.pepper.as_ref(),
            config.pepper_file.as_deref(),
            &config.data_dir.join("pepper.key"),
        )
        .context("reading the pepper")?;
        Ok(Self {
            signing,
            master,
            pepper,
        })
    }
}

fn generate_signing_pem() -> anyhow::Result<Zeroizing<String>> {
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(rand::random());
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding signing key: {e}"))?;
    Ok(Zeroizing::new(pem.to_string()))
}

fn generate_symmetric_text() -> anyhow::Result<Zeroizing<String>> {
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(rand::random());
    Ok(Zeroizing::new(STANDARD.encode(*bytes) + "\n"))
}

/// Parses a PKCS#8 PEM Ed25519 private key (as `openssl genpkey -algorithm ed25519` writes).
pub fn signing_keys_from_pem(pem: &str) -> anyhow::Result<SigningKeys> {
    let key = SigningKey::from_pkcs8_pem(pem.trim())
        .map_err(|e| anyhow::anyhow!("not a PKCS#8 Ed25519 private key: {e}"))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| anyhow::anyhow!("encoding signing key: {e}"))?;
    let public = key.verifying_key().to_bytes();
    let public_x = URL_SAFE_NO_PAD.encode(public);
    let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12]);
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(&public_x)?;
    Ok(SigningKeys {
        encoding: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        decoding,
        kid,
        public_x,
    })
}

fn symmetric_key(
    inline: Option<&SecretString>,
    file: Option<&Path>,
    default_path: &Path,
) -> anyhow::Result<SymmetricKey> {
    let text = secret_text(inline, file, default_path, generate_symmetric_text)?;
    let decoded = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .context("a key must be 32 bytes in standard base64")?,
    );
    let bytes: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("a key must be exactly 32 bytes"))?;
    Ok(SymmetricKey(Zeroizing::new(bytes)))
}

/// Inline value, else the configured file, else the default file (created if missing).
fn secret_text(
    inline: Option<&SecretString>,
    file: Option<&Path>,
    default_path: &Path,
    generate: fn() -> anyhow::Result<Zeroizing<String>>,
) -> anyhow::Result<Zeroizing<String>> {
    if let Some(value) = inline {
        return Ok(Zeroizing::new(value.expose_secret().to_owned()));
    }
    if let Some(path) = file {
        return read_secret_file(path);
    }
    if !default_path.exists() {
        let generated = generate()?;
        match write_owner_only(default_path, generated.as_bytes()) {
            Ok(()) => return Ok(generated),
            // Another instance sharing this data dir won the race: use its key.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("writing {}", default_path.display()));
            }
        }
    }
    read_secret_file(default_path)
}

fn read_secret_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    fs::read_to_string(path)
        .map(Zeroizing::new)
        .with_context(|| format!("reading {}", path.display()))
}

/// Creates `path` with mode 0600, failing if it already exists.
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

/// Where the generated key files live, for documentation and tests.
pub fn default_key_files(data_dir: &Path) -> [PathBuf; 3] {
    [
        data_dir.join("jwt-ed25519.pem"),
        data_dir.join("master.key"),
        data_dir.join("pepper.key"),
    ]
}
