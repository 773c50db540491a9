//! The `trusted_devices` table: devices whose `deviceToken` (stored as a SHA-256 hash)
//! lets a login skip the second factor until they expire or are revoked.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct DeviceRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub fingerprint_hash: Vec<u8>,
    pub device_name: String,
    pub device_type: String,
    pub browser_info: Option<String>,
    pub ip_address: Option<String>,
    pub location: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, user_id, fingerprint_hash, device_name, device_type, browser_info, ip_address, \
                       location, created_at, last_used_at, expires_at";

pub struct NewDevice<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token_hash: &'a [u8],
    pub fingerprint_hash: &'a [u8],
    pub device_name: &'a str,
    pub device_type: &'a str,
    pub browser_info: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub location: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut Conn, d: &NewDevice<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO trusted_devices (id, user_id, token_hash, fingerprint_hash, device_name, device_type, \
               browser_info, ip_address, location, created_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    run!(conn, e => sqlx::query(sql)
        .bind(d.id).bind(d.user_id).bind(d.token_hash).bind(d.fingerprint_hash).bind(d.device_name)
        .bind(d.device_type).bind(d.browser_info).bind(d.ip_address).bind(d.location)
        .bind(d.created_at).bind(d.expires_at)
        .execute(&mut *e).await.map(|_| ()))
}

pub async fn list_live(
    conn: &mut Conn,
    user_id: Uuid,
    now: i64,
) -> Result<Vec<DeviceRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM trusted_devices WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id"
    );
    run!(conn, e => sqlx::query_as::<_, DeviceRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id).bind(now).fetch_all(&mut *e).await)
}

pub async fn count_live(conn: &mut Conn, user_id: Uuid, now: i64) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM trusted_devices WHERE user_id = $1 AND expires_at > $2";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(user_id).bind(now).fetch_one(&mut *e).await)
}

/// The live device a token names, if it belongs to `user_id`.
pub async fn find_live_by_token(
    conn: &mut Conn,
    user_id: Uuid,
    token_hash: &[u8],
    now: i64,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM trusted_devices WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3"
    );
    run!(conn, e => sqlx::query_as::<_, DeviceRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(token_hash).bind(user_id).bind(now).fetch_optional(&mut *e).await)
}

pub async fn touch(conn: &mut Conn, id: Uuid, now: i64) -> Result<(), sqlx::Error> {
    let sql = "UPDATE trusted_devices SET last_used_at = $2 WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now).execute(&mut *e).await.map(|_| ()))
}

/// Deletes one device of this user; false if there is none with that id for them.
pub async fn delete_one(conn: &mut Conn, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let sql = "DELETE FROM trusted_devices WHERE id = $1 AND user_id = $2";
    run!(conn, e => sqlx::query(sql).bind(id).bind(user_id).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Deletes every device of the user (expired ones too); returns how many were live.
pub async fn delete_all(conn: &mut Conn, user_id: Uuid, now: i64) -> Result<u64, sqlx::Error> {
    let count = "SELECT COUNT(*) FROM trusted_devices WHERE user_id = $1 AND expires_at > $2";
    let delete = "DELETE FROM trusted_devices WHERE user_id = $1";
    run!(conn, e => {
        let live = sqlx::query_scalar::<_, i64>(count).bind(user_id).bind(now).fetch_one(&mut *e).await?;
        sqlx::query(delete).bind(user_id).execute(&mut *e).await?;
        Ok(live as u64)
    })
}

pub async fn count_all_live(conn: &mut Conn, now: i64) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM trusted_devices WHERE expires_at > $1";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(now).fetch_one(&mut *e).await)
}

pub async fn prune(conn: &mut Conn, now: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM trusted_devices WHERE id IN (SELECT id FROM trusted_devices WHERE expires_at <= $1 LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(now).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
