//! The three keys Tessera needs: the Ed25519 key that signs access tokens, the master key
//! that encrypts TOTP secrets at rest, and the pepper that keys the hashes of backup codes
//! and device fingerprints.
//!
//! Each comes from configuration (inline or `*_file`) or, failing that, from a file in the
//! data dir that the first start creates with owner-only permissions. Several instances
//! share keys by pointing at the same files or values.
//!
//! Keys fail closed. A key file that group or others can read is refused (unless
//! `allow_insecure_key_permissions`), and the database records a fingerprint of the master
//! key and the pepper on first start (see [`SymmetricKey::fingerprint`]): a server whose
//! keys do not match what its data was sealed and keyed under refuses to start, and a
//! missing master key or pepper file is not silently generated anew once the database has
//! a fingerprint for it.

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

    /// An identifier of this key that reveals nothing about it: HMAC-SHA256 keyed with the
    /// key itself over a fixed label, 128 bits in base64url. Only the key's holder can
    /// compute it, and it cannot be turned back into the key, so it can sit in the
    /// database beside the data the key protects.
    pub fn fingerprint(&self) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(self.bytes())
            .expect("any key length");
        mac.update(b"tessera key fingerprint v1");
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }
}

/// The symmetric keys whose fingerprints the database records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Master,
    Pepper,
}

impl Recorded {
    pub const ALL: [Recorded; 2] = [Recorded::Master, Recorded::Pepper];

    /// Its name in the database.
    pub fn name(self) -> &'static str {
        match self {
            Recorded::Master => "master_key",
            Recorded::Pepper => "pepper",
        }
    }

    pub fn key(self, keys: &Keys) -> &SymmetricKey {
        match self {
            Recorded::Master => &keys.master,
            Recorded::Pepper => &keys.pepper,
        }
    }

    /// Where the key came from, for an error message: the file, or the inline setting.
    pub fn source(self, config: &Config) -> String {
        let (inline, file, default, label) = match self {
            Recorded::Master => (
                config.master_key.is_some(),
                config.master_key_file.as_deref(),
                "master.key",
                "master key",
            ),
            Recorded::Pepper => (
                config.pepper.is_some(),
                config.pepper_file.as_deref(),
                "pepper.key",
                "pepper",
            ),
        };
        if inline {
            format!("{label} (the inline `{}` setting)", self.name())
        } else {
            let path = file.map_or_else(|| config.data_dir.join(default), Path::to_path_buf);
            format!("{label} file {}", path.display())
        }
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
    /// The private key as PKCS#8 PEM, to seal it into the database.
    pub pem: Zeroizing<String>,
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
        Self::load(config, &[])
    }

    /// As [`Keys::load_or_create`], except that a missing default file of a key in
    /// `recorded` (one whose fingerprint the database holds) is an error, not a new key:
    /// a new key could not open what the lost one sealed.
    pub fn load(config: &Config, recorded: &[Recorded]) -> anyhow::Result<Self> {
        ensure_data_dir(config)?;
        let files = KeyFiles {
            allow_insecure: config.allow_insecure_key_permissions,
        };
        let signing_pem = files.secret_text(
            config.jwt_private_key.as_ref(),
            config.jwt_private_key_file.as_deref(),
            &config.data_dir.join("jwt-ed25519.pem"),
            Some(generate_signing_pem),
        )?;
        let signing = signing_keys_from_pem(&signing_pem).context("reading the JWT signing key")?;
        let generate =
            |which| (!recorded.contains(&which)).then_some(generate_symmetric_text as Generate);
        let master = files
            .symmetric_key(
                config.master_key.as_ref(),
                config.master_key_file.as_deref(),
                &config.data_dir.join("master.key"),
                generate(Recorded::Master),
            )
            .context("reading the master key")?;
        let pepper = files
            .symmetric_key(
                config.pepper.as_ref(),
                config.pepper_file.as_deref(),
                &config.data_dir.join("pepper.key"),
                generate(Recorded::Pepper),
            )
            .context("reading the pepper")?;
        Ok(Self {
            signing,
            master,
            pepper,
        })
    }
}

/// Creates the data dir when missing, owner-only: it holds the keys and (on SQLite) every
/// account. An existing dir is left as the operator set it up.
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    if !config.data_dir.exists() {
        fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        fs::set_permissions(&config.data_dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

type Generate = fn() -> anyhow::Result<Zeroizing<String>>;

/// How key files are read.
struct KeyFiles {
    /// Warn about a group- or world-accessible key file instead of refusing it.
    allow_insecure: bool,
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
        pem: Zeroizing::new(pem.trim().to_owned() + "\n"),
    })
}

/// A new random signing key (for a rotation).
pub fn new_signing_keys() -> anyhow::Result<SigningKeys> {
    signing_keys_from_pem(&generate_signing_pem()?)
}

impl KeyFiles {
    fn symmetric_key(
        &self,
        inline: Option<&SecretString>,
        file: Option<&Path>,
        default_path: &Path,
        generate: Option<Generate>,
    ) -> anyhow::Result<SymmetricKey> {
        let text = self.secret_text(inline, file, default_path, generate)?;
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

    /// Inline value, else the configured file, else the default file (created if missing
    /// and `generate` is given).
    fn secret_text(
        &self,
        inline: Option<&SecretString>,
        file: Option<&Path>,
        default_path: &Path,
        generate: Option<Generate>,
    ) -> anyhow::Result<Zeroizing<String>> {
        if let Some(value) = inline {
            return Ok(Zeroizing::new(value.expose_secret().to_owned()));
        }
        if let Some(path) = file {
            return self.read(path);
        }
        if !default_path.exists() {
            let Some(generate) = generate else {
                anyhow::bail!(
                    "{} is missing, but the database holds data sealed or keyed under the key it held \
                     (its fingerprint is recorded): restore the file from a backup. A new key \
                     would leave that data unreadable, so none is generated",
                    default_path.display()
                );
            };
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
        self.read(default_path)
    }

    /// Reads a key file that only its owner may access: a key others can read is no
    /// longer secret, and one others can write can be swapped.
    fn read(&self, path: &Path) -> anyhow::Result<Zeroizing<String>> {
        let mode = fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            if self.allow_insecure {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "key file is accessible to group or others; allowed by allow_insecure_key_permissions"
                );
            } else {
                anyhow::bail!(
                    "key file {path} is accessible to group or others (mode {mode:o}): run `chmod 600 {path}`, \
                     or set allow_insecure_key_permissions = true to start with a warning instead",
                    path = path.display(),
                    mode = mode & 0o777
                );
            }
        }
        fs::read_to_string(path)
            .map(Zeroizing::new)
            .with_context(|| format!("reading {}", path.display()))
    }
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
