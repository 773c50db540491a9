//! Access-token signing keys and their rotation. The keys live in the database (the
//! private halves sealed under the master key), so every instance sharing it signs with
//! the same current key and accepts the same older ones; the configured key
//! (`jwt_private_key`, `jwt_private_key_file` or the generated `jwt-ed25519.pem`) is
//! taken into the table the first time an instance starts with it.
//!
//! A rotation makes a new key current at once; the key it replaces is still published
//! and accepted until the last token it signed has expired (the access-token lifetime,
//! plus `signing_key_refresh_secs` for an instance that had not re-read the keys yet and
//! went on signing with it). A key can also be prepared ahead: published at once, signing
//! only from the next rotation, so verifiers that cache the JWKS know it before it is used.

use serde_json::json;

use super::admin_api::audit_in;
use super::admin_keys::AdminCaller;
use crate::config::Config;
use crate::crypto;
use crate::db::{self, Conn, Db, signing_keys::SigningKeyRow};
use crate::error::AppError;
use crate::keys::{self, Keys, SymmetricKey};
use crate::state::AppState;
use crate::tokens::{KeyRing, PublicKey};

/// The AAD binding a sealed signing key to its row.
fn aad(kid: &str) -> String {
    format!("tessera:signing-key:{kid}")
}

/// How long after its retirement a key is still published and accepted.
pub fn retired_grace_secs(config: &Config) -> i64 {
    config.access_token_ttl_secs + config.signing_key_refresh_secs as i64
}

/// At start-up: takes the configured key into the table if it is new there (making it
/// the current key; the one it replaces retires as in a rotation), then reads the ring.
pub async fn bootstrap(
    db: &Db,
    keys: &Keys,
    config: &Config,
    now: i64,
) -> Result<KeyRing, AppError> {
    let configured = &keys.signing;
    let mut tx = db.begin().await?;
    if db::signing_keys::find(&mut tx, &configured.kid)
        .await?
        .is_none()
    {
        let sealed = crypto::seal(
            &keys.master,
            &aad(&configured.kid),
            configured.pem.as_bytes(),
        )?;
        db::signing_keys::insert(&mut tx, &configured.kid, &configured.public_x, &sealed, now)
            .await?;
        let retired = db::signing_keys::activate(&mut tx, &configured.kid, now).await?;
        tracing::info!(kid = %configured.kid, ?retired, "the configured signing key is now the current key");
    }
    let ring = read_ring(&mut tx, &keys.master, config, now).await?;
    tx.commit().await?;
    Ok(ring)
}

/// The ring as the database has it: the current key (opened) and every live key.
async fn read_ring(
    conn: &mut Conn,
    master: &SymmetricKey,
    config: &Config,
    now: i64,
) -> Result<KeyRing, AppError> {
    let rows = db::signing_keys::live(conn, now - retired_grace_secs(config)).await?;
    let current = rows
        .iter()
        .filter(|r| r.activated_at.is_some() && r.retired_at.is_none())
        .max_by_key(|r| (r.activated_at, r.created_at))
        .ok_or_else(|| AppError::internal("no current signing key in the database"))?;
    let pem = crypto::open(master, &aad(&current.kid), &current.private_key_enc)?;
    let pem = std::str::from_utf8(&pem).map_err(AppError::internal)?;
    let signing = keys::signing_keys_from_pem(pem).map_err(AppError::internal)?;
    if signing.kid != current.kid {
        return Err(AppError::internal(
            "a stored signing key does not match its id",
        ));
    }
    let others = rows
        .iter()
        .map(|r| PublicKey::new(r.kid.clone(), r.public_x.clone(), r.retired_at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeyRing::new(signing, others))
}

/// Re-reads the keys and installs them in this instance's signer.
pub async fn refresh(state: &AppState) -> Result<(), AppError> {
    let now = state.now();
    let mut conn = state.db.read().await?;
    let ring = read_ring(&mut conn, &state.keys.master, &state.config, now).await?;
    drop(conn);
    state.signer.install(ring);
    Ok(())
}

/// Re-reads the keys if `token` names one this instance does not know (a rotation on
/// another instance), at most once a second.
pub async fn refresh_for(state: &AppState, token: &str) -> Result<bool, AppError> {
    if !state.signer.should_reload_for(token) {
        return Ok(false);
    }
    refresh(state).await?;
    Ok(true)
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new current key.
    pub kid: String,
    /// It had been prepared ahead (and published since).
    pub was_prepared: bool,
    /// The keys it replaced.
    pub retired: Vec<String>,
}

/// Makes a new current key (the prepared one, if any) for every instance sharing the
/// database, and installs it here at once. With `by`, an admin API call: its audit row is
/// written in the rotation's own transaction, so neither is ever there without the other.
#[tracing::instrument(skip_all)]
pub async fn rotate(state: &AppState, by: Option<&AdminCaller>) -> Result<Rotation, AppError> {
    let by = by.cloned();
    let rotation = super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        let (kid, was_prepared) = match db::signing_keys::prepared(&mut tx).await? {
            Some(row) => (row.kid, true),
            None => (add_key(state, &mut tx, now).await?, false),
        };
        let retired = db::signing_keys::activate(&mut tx, &kid, now).await?;
        if let Some(caller) = &by {
            let details = json!({"kid": kid, "retired": retired});
            audit_in(&mut tx, now, caller, "signing_key_rotated", None, details).await?;
        }
        tx.commit().await?;
        tracing::info!(%kid, ?retired, "signing key rotated");
        Ok(Rotation {
            kid,
            was_prepared,
            retired,
        })
    })
    .await?;
    install_now(state).await;
    Ok(rotation)
}

/// Prepares the next key (published at once, signing from the next rotation), unless one
/// is prepared already. Returns its id and whether it is new. With `by`, as [`rotate`].
#[tracing::instrument(skip_all)]
pub async fn prepare(
    state: &AppState,
    by: Option<&AdminCaller>,
) -> Result<(String, bool), AppError> {
    let by = by.cloned();
    let prepared = super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        let (kid, new) = match db::signing_keys::prepared(&mut tx).await? {
            Some(row) => (row.kid, false),
            None => (add_key(state, &mut tx, now).await?, true),
        };
        if let Some(caller) = &by {
            let details = json!({"kid": kid, "new": new});
            audit_in(&mut tx, now, caller, "signing_key_prepared", None, details).await?;
        }
        tx.commit().await?;
        if new {
            tracing::info!(%kid, "signing key prepared");
        }
        Ok((kid, new))
    })
    .await?;
    install_now(state).await;
    Ok(prepared)
}

/// Installs the keys a committed change left here at once. Should the read fail, the
/// change stands (and is not to be made again): this instance, like every other, takes it
/// up at its next re-read.
async fn install_now(state: &AppState) {
    if let Err(error) = refresh(state).await {
        tracing::warn!(%error, "signing keys changed; this instance takes them up at its next re-read");
    }
}

async fn add_key(state: &AppState, tx: &mut Conn, now: i64) -> Result<String, AppError> {
    let new = keys::new_signing_keys().map_err(AppError::internal)?;
    let sealed = crypto::seal(&state.keys.master, &aad(&new.kid), new.pem.as_bytes())?;
    if !db::signing_keys::insert(tx, &new.kid, &new.public_x, &sealed, now).await? {
        return Err(AppError::internal(format!(
            "signing key id {} exists",
            new.kid
        )));
    }
    Ok(new.kid)
}

/// Where a key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Current,
    Prepared,
    /// Retired, published until the given unix time.
    Retired {
        published_until: i64,
    },
    /// Retired and no longer published.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub state: KeyState,
}

/// Every key the database holds, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(state: &AppState) -> Result<Vec<KeyInfo>, AppError> {
    let now = state.now();
    let grace = retired_grace_secs(&state.config);
    let mut conn = state.db.read().await?;
    let rows = db::signing_keys::all(&mut conn).await?;
    Ok(rows
        .into_iter()
        .map(|r: SigningKeyRow| {
            let state = match (r.activated_at, r.retired_at) {
                (None, _) => KeyState::Prepared,
                (Some(_), None) => KeyState::Current,
                (Some(_), Some(retired)) if retired + grace > now => KeyState::Retired {
                    published_until: retired + grace,
                },
                (Some(_), Some(_)) => KeyState::Expired,
            };
            KeyInfo {
                kid: r.kid,
                created_at: r.created_at,
                activated_at: r.activated_at,
                retired_at: r.retired_at,
                state,
            }
        })
        .collect())
}
