//! The `admin_api_keys` table: keys for the admin HTTP API, named by the SHA-256 of the
//! key (the key itself is shown once and never stored).

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct AdminKeyRow {
    pub id: Uuid,
    pub name: String,
    /// Space-separated.
    pub scopes: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, name, scopes, created_at, revoked_at";

pub async fn insert(
    conn: &mut Conn,
    id: Uuid,
    name: &str,
    key_hash: &[u8],
    scopes: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO admin_api_keys (id, name, key_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)";
    run!(conn, e => sqlx::query(sql).bind(id).bind(name).bind(key_hash).bind(scopes).bind(now)
        .execute(&mut *e).await.map(|_| ()))
}

/// The live (unrevoked) key with this hash.
pub async fn find_live(
    conn: &mut Conn,
    key_hash: &[u8],
) -> Result<Option<AdminKeyRow>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM admin_api_keys WHERE key_hash = $1 AND revoked_at IS NULL");
    run!(conn, e => sqlx::query_as::<_, AdminKeyRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(key_hash)
        .fetch_optional(&mut *e).await)
}

/// Whether any key is live: without one, the admin API is not served at all.
pub async fn any_live(conn: &mut Conn) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM admin_api_keys WHERE revoked_at IS NULL";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut *e).await.map(|n| n > 0))
}

pub async fn list(conn: &mut Conn) -> Result<Vec<AdminKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM admin_api_keys ORDER BY created_at, name");
    run!(conn, e => sqlx::query_as::<_, AdminKeyRow>(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(&mut *e).await)
}

/// Revokes the key with this id, or every live key with this name; how many were revoked.
pub async fn revoke(
    conn: &mut Conn,
    id: Option<Uuid>,
    name: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let sql = "UPDATE admin_api_keys SET revoked_at = $3 WHERE revoked_at IS NULL AND (id = $1 OR ($1 IS NULL AND name = $2))";
    run!(conn, e => sqlx::query(sql).bind(id).bind(name).bind(now).execute(&mut *e).await
        .map(|r| r.rows_affected()))
}
