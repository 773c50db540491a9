//! Admin API keys: made, listed and revoked from the command line (`tessera admin
//! api-keys`), presented as `Authorization: Bearer <key>` on `/admin/v1`. A key is 256
//! random bits shown once; only its SHA-256 is stored (as for refresh tokens: a hash of a
//! high-entropy token needs no salt or slow hash).

use uuid::Uuid;

use super::RequestContext;
use crate::crypto;
use crate::db;
use crate::error::AppError;
use crate::state::AppState;

/// What a key may do. A small, fixed set: `users:read` (list, search and read accounts,
/// their events and devices), `users:write` (create, disable, enable, delete, reset the
/// second factor, unlock, revoke sessions, require a second factor) and `admin` (both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    UsersRead,
    UsersWrite,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::UsersRead, Scope::UsersWrite, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == text.trim())
    }
}

/// The prefix of every admin API key, so a leaked one is recognisable (secret scanners,
/// logs) and never mistaken for an access token.
pub const KEY_PREFIX: &str = "tsk_";

/// An admin API key, as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Unix seconds.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<db::admin_keys::AdminKeyRow> for ApiKey {
    fn from(row: db::admin_keys::AdminKeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            scopes: row.scopes.split(' ').filter_map(Scope::parse).collect(),
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A caller of the admin API: the key it presented, and where it called from.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub key: ApiKey,
    pub ctx: RequestContext,
}

impl AdminCaller {
    /// Refuses unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self
            .key
            .scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
        {
            Ok(())
        } else {
            Err(AppError::InsufficientScope(scope.name()))
        }
    }

    /// What the security events of this call say about who acted.
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({"apiKeyId": self.key.id, "apiKeyName": self.key.name})
    }
}

/// Makes a key; returns it (to show once) with its record.
#[tracing::instrument(skip_all)]
pub async fn create(
    state: &AppState,
    name: &str,
    scopes: &[Scope],
) -> Result<(String, ApiKey), AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::field(
            "name",
            "must be 1 to 100 characters, without control characters",
        ));
    }
    if scopes.is_empty() {
        return Err(AppError::field("scope", "at least one scope is required"));
    }
    let mut names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
    names.sort_unstable();
    names.dedup();
    let key = format!("{KEY_PREFIX}{}", crypto::random_token());
    let id = Uuid::new_v4();
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db::admin_keys::insert(
        &mut tx,
        id,
        name,
        &crypto::token_hash(&key),
        &names.join(" "),
        now,
    )
    .await?;
    tx.commit().await?;
    let record = ApiKey {
        id,
        name: name.to_owned(),
        scopes: names.iter().filter_map(|n| Scope::parse(n)).collect(),
        created_at: now,
        revoked_at: None,
    };
    Ok((key, record))
}

#[tracing::instrument(skip_all)]
pub async fn list(state: &AppState) -> Result<Vec<ApiKey>, AppError> {
    let mut conn = state.db.read().await?;
    Ok(db::admin_keys::list(&mut conn)
        .await?
        .into_iter()
        .map(ApiKey::from)
        .collect())
}

/// Revokes the key `which` names (its id, or every live key of that name); how many.
#[tracing::instrument(skip_all, fields(key = which))]
pub async fn revoke(state: &AppState, which: &str) -> Result<u64, AppError> {
    let id = Uuid::parse_str(which.trim()).ok();
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let revoked = db::admin_keys::revoke(&mut tx, id, which.trim(), now).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Whether the admin API is on: at least one live key exists.
pub async fn any_live(state: &AppState) -> Result<bool, AppError> {
    let mut conn = state.db.read().await?;
    Ok(db::admin_keys::any_live(&mut conn).await?)
}

/// The live key a bearer names. Without one: `NotFound` while no key is live at all (the
/// admin API is off, and looks like any unknown path), else `InvalidApiKey`.
pub async fn authenticate(
    state: &AppState,
    bearer: Option<&str>,
    ctx: RequestContext,
) -> Result<AdminCaller, AppError> {
    let mut conn = state.db.read().await?;
    let found = match bearer.filter(|b| b.starts_with(KEY_PREFIX)) {
        Some(bearer) => db::admin_keys::find_live(&mut conn, &crypto::token_hash(bearer)).await?,
        None => None,
    };
    let Some(key) = found else {
        return Err(if db::admin_keys::any_live(&mut conn).await? {
            AppError::InvalidApiKey
        } else {
            AppError::NotFound
        });
    };
    Ok(AdminCaller {
        key: key.into(),
        ctx,
    })
}
