//! The `sessions` table (one row per refresh-token family: a sign-in and everything
//! refreshed from it) and `refresh_tokens` (SHA-256 hashes, each usable once, kept while
//! live and through the reuse grace).

use sqlx::FromRow;
use uuid::Uuid;

use super::users::UserRow;
use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub auth_time: i64,
    pub amr: String,
    pub expires_at: i64,
}

pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub now: i64,
    pub auth_time: i64,
    pub amr: &'a str,
    pub expires_at: i64,
    pub ip_address: &'a str,
    pub user_agent: Option<&'a str>,
    pub refresh_family: &'a [u8],
}

pub async fn insert(conn: &mut Conn, s: &NewSession<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO sessions (id, user_id, created_at, auth_time, amr, expires_at, ip_address, user_agent, refresh_family) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    run!(conn, e => sqlx::query(sql)
        .bind(s.id).bind(s.user_id).bind(s.now).bind(s.auth_time).bind(s.amr)
        .bind(s.expires_at).bind(s.ip_address).bind(s.user_agent).bind(s.refresh_family)
        .execute(&mut *e).await.map(|_| ()))
}

/// Gives a session from before refresh-token families `family`, unless it has one by now
/// (a concurrent refresh gave it first); returns the family it has.
pub async fn give_refresh_family(
    conn: &mut Conn,
    id: Uuid,
    family: &[u8],
) -> Result<Vec<u8>, sqlx::Error> {
    let sql = "UPDATE sessions SET refresh_family = COALESCE(refresh_family, $2) WHERE id = $1 \
               RETURNING refresh_family";
    run!(conn, e => sqlx::query_scalar::<_, Vec<u8>>(sql).bind(id).bind(family).fetch_one(&mut *e).await)
}

/// The session of a refresh-token family, live or not.
pub async fn session_of_refresh_family(
    conn: &mut Conn,
    family: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "SELECT id FROM sessions WHERE refresh_family = $1";
    run!(conn, e => sqlx::query_scalar::<_, Uuid>(sql).bind(family).fetch_optional(&mut *e).await)
}

/// Deletes the session's refresh tokens retired more than `grace` seconds ago: they can
/// no longer be exchanged, and the family they start with is what recognises them if they
/// come back. So a session holds its live token and those still inside the reuse grace,
/// however often it is refreshed. Tokens issued before families existed have none, so
/// their rows (marked `before_families`) stay until the session ends.
pub async fn forget_retired_refresh_tokens(
    conn: &mut Conn,
    session_id: Uuid,
    now: i64,
    grace: i64,
) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM refresh_tokens \
               WHERE session_id = $1 AND used_at IS NOT NULL AND used_at <= $2 - $3 AND NOT before_families";
    run!(conn, e => sqlx::query(sql).bind(session_id).bind(now).bind(grace).execute(&mut *e).await.map(|_| ()))
}

pub async fn insert_refresh_token(
    conn: &mut Conn,
    hash: &[u8],
    session_id: Uuid,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)";
    run!(conn, e => sqlx::query(sql).bind(hash).bind(session_id).bind(now).execute(&mut *e).await.map(|_| ()))
}

/// The session if it is neither revoked nor past its absolute expiry.
pub async fn find_active(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
) -> Result<Option<SessionRow>, sqlx::Error> {
    let sql = "SELECT id, user_id, auth_time, amr, expires_at FROM sessions \
               WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2";
    run!(conn, e => sqlx::query_as::<_, SessionRow>(sql).bind(id).bind(now).fetch_optional(&mut *e).await)
}

/// Retires a refresh token; returns its session for exactly one concurrent caller.
pub async fn consume_refresh_token(
    conn: &mut Conn,
    hash: &[u8],
    now: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL RETURNING session_id";
    run!(conn, e => sqlx::query_scalar::<_, Uuid>(sql).bind(hash).bind(now).fetch_optional(&mut *e).await)
}

/// Exchanges a retired refresh token once more, if it was retired less than `grace`
/// seconds ago and has not had its grace exchange yet; returns its session.
pub async fn consume_within_grace(
    conn: &mut Conn,
    hash: &[u8],
    now: i64,
    grace: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "UPDATE refresh_tokens SET grace_used_at = $2 \
               WHERE token_hash = $1 AND used_at IS NOT NULL AND used_at > $2 - $3 AND grace_used_at IS NULL \
               RETURNING session_id";
    run!(conn, e => sqlx::query_scalar::<_, Uuid>(sql).bind(hash).bind(now).bind(grace).fetch_optional(&mut *e).await)
}

/// A live session with its account, in one query: what a refresh answers with.
#[derive(Debug, Clone, FromRow)]
pub struct SessionWithUser {
    pub session_auth_time: i64,
    pub session_amr: String,
    pub session_expires_at: i64,
    /// `None` for a session from before refresh-token families.
    pub session_refresh_family: Option<Vec<u8>>,
    #[sqlx(flatten)]
    pub user: UserRow,
}

pub async fn find_active_with_user(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
) -> Result<Option<SessionWithUser>, sqlx::Error> {
    let sql = format!(
        "SELECT s.auth_time AS session_auth_time, s.amr AS session_amr, s.expires_at AS session_expires_at, \
           s.refresh_family AS session_refresh_family, {} \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.disabled_at IS NULL",
        super::users::columns("u")
    );
    run!(conn, e => sqlx::query_as::<_, SessionWithUser>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(now)
        .fetch_optional(&mut *e).await)
}

/// The session of a refresh token that still has its row (live, or retired inside the
/// reuse grace).
pub async fn session_of_refresh_token(
    conn: &mut Conn,
    hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "SELECT session_id FROM refresh_tokens WHERE token_hash = $1";
    run!(conn, e => sqlx::query_scalar::<_, Uuid>(sql).bind(hash).fetch_optional(&mut *e).await)
}

/// Revokes one session; returns whether it was live.
pub async fn revoke(conn: &mut Conn, id: Uuid, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Revokes every live session of the user except `keep`; returns how many.
pub async fn revoke_all_for_user(
    conn: &mut Conn,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let sql = "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND revoked_at IS NULL AND id <> $2";
    let keep = keep.unwrap_or(Uuid::nil());
    run!(conn, e => sqlx::query(sql).bind(user_id).bind(keep).bind(now).execute(&mut *e).await.map(|r| r.rows_affected()))
}

/// Deletes sessions (and their refresh tokens) that expired or were revoked over a day ago,
/// at most `batch` at a time.
pub async fn prune(conn: &mut Conn, now: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
               WHERE expires_at <= $1 OR revoked_at <= $2 LIMIT $3)";
    run!(conn, e => sqlx::query(sql).bind(now).bind(now - 86_400).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}

/// How many live sessions the user has.
pub async fn count_live(conn: &mut Conn, user_id: Uuid, now: i64) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(user_id).bind(now).fetch_one(&mut *e).await)
}
