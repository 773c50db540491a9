//! The `passkeys` table: each account's registered WebAuthn credentials.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct PasskeyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub credential_id: Vec<u8>,
    pub name: String,
    pub credential: String,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub aaguid: Option<Uuid>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub disabled_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, credential_id, name, credential, sign_count, backup_eligible, \
                       backed_up, aaguid, created_at, last_used_at, disabled_at";

pub struct NewPasskey<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub credential_id: &'a [u8],
    pub name: &'a str,
    pub credential: &'a str,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub aaguid: Option<Uuid>,
    pub now: i64,
}

/// Stores a new passkey; false when the credential is already registered (to any account).
pub async fn insert(conn: &mut Conn, p: &NewPasskey<'_>) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO passkeys (id, user_id, credential_id, name, credential, sign_count, \
               backup_eligible, backed_up, aaguid, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (credential_id) DO NOTHING";
    run!(conn, e => sqlx::query(sql).bind(p.id).bind(p.user_id).bind(p.credential_id).bind(p.name)
        .bind(p.credential).bind(p.sign_count).bind(p.backup_eligible).bind(p.backed_up).bind(p.aaguid)
        .bind(p.now).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// The account's passkeys, oldest first, disabled ones included.
pub async fn for_user(conn: &mut Conn, user_id: Uuid) -> Result<Vec<PasskeyRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
    run!(conn, e => sqlx::query_as::<_, PasskeyRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id).fetch_all(&mut *e).await)
}

/// The account's passkey with this credential ID, if it has one.
pub async fn by_credential(
    conn: &mut Conn,
    user_id: Uuid,
    credential_id: &[u8],
) -> Result<Option<PasskeyRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 AND credential_id = $2");
    run!(conn, e => sqlx::query_as::<_, PasskeyRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id)
        .bind(credential_id).fetch_optional(&mut *e).await)
}

/// How many passkeys the account has that can still be used.
pub async fn count_enabled(conn: &mut Conn, user_id: Uuid) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM passkeys WHERE user_id = $1 AND disabled_at IS NULL";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(user_id).fetch_one(&mut *e).await)
}

/// Records a use: the new counter, flags and stored credential, only while the passkey is
/// enabled and the counter moved forward (or the authenticator keeps no counter: both 0).
/// False when another use with the same or a later counter won, or the passkey was
/// disabled meanwhile: one statement decides.
#[allow(clippy::too_many_arguments)]
pub async fn record_use(
    conn: &mut Conn,
    id: Uuid,
    sign_count: i64,
    backup_eligible: bool,
    backed_up: bool,
    credential: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE passkeys SET sign_count = $2, backup_eligible = $3, backed_up = $4, credential = $5, \
               last_used_at = $6 \
               WHERE id = $1 AND disabled_at IS NULL AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))";
    run!(conn, e => sqlx::query(sql).bind(id).bind(sign_count).bind(backup_eligible).bind(backed_up)
        .bind(credential).bind(now).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Disables a passkey (its counter went backwards); true for the one caller that did.
pub async fn disable(conn: &mut Conn, id: Uuid, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE passkeys SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

pub async fn rename(
    conn: &mut Conn,
    user_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE passkeys SET name = $3 WHERE id = $2 AND user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).bind(id).bind(name).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// Deletes one of the account's passkeys; false when it has no such passkey.
pub async fn delete(conn: &mut Conn, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let sql = "DELETE FROM passkeys WHERE id = $2 AND user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).bind(id).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

pub async fn delete_all(conn: &mut Conn, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM passkeys WHERE user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).execute(&mut *e).await.map(|r| r.rows_affected()))
}

/// The account's WebAuthn user handle, made on first use: `candidate` is stored only if the
/// account has none yet, and the stored one is returned either way.
pub async fn user_handle(
    conn: &mut Conn,
    user_id: Uuid,
    candidate: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let set =
        "UPDATE users SET webauthn_user_handle = $2 WHERE id = $1 AND webauthn_user_handle IS NULL";
    let get = "SELECT webauthn_user_handle FROM users WHERE id = $1";
    run!(conn, e => {
        sqlx::query(set).bind(user_id).bind(candidate).execute(&mut *e).await?;
        sqlx::query_scalar::<_, Option<Uuid>>(get).bind(user_id).fetch_optional(&mut *e).await
            .map(Option::flatten)
    })
}

/// The account a WebAuthn user handle belongs to.
pub async fn user_by_handle(conn: &mut Conn, handle: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "SELECT id FROM users WHERE webauthn_user_handle = $1";
    run!(conn, e => sqlx::query_scalar::<_, Uuid>(sql).bind(handle).fetch_optional(&mut *e).await)
}
