//! The `backup_codes` table: keyed hashes only, each usable once.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct BackupCodeRow {
    pub id: Uuid,
    pub code_hash: Vec<u8>,
}

/// Replaces every code of the user with `hashes`.
pub async fn replace_all(
    conn: &mut Conn,
    user_id: Uuid,
    hashes: &[Vec<u8>],
    now: i64,
) -> Result<(), sqlx::Error> {
    let delete = "DELETE FROM backup_codes WHERE user_id = $1";
    let insert =
        "INSERT INTO backup_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)";
    run!(conn, e => {
        sqlx::query(delete).bind(user_id).execute(&mut *e).await?;
        for hash in hashes {
            sqlx::query(insert).bind(Uuid::new_v4()).bind(user_id).bind(hash).bind(now).execute(&mut *e).await?;
        }
        Ok(())
    })
}

pub async fn unused(conn: &mut Conn, user_id: Uuid) -> Result<Vec<BackupCodeRow>, sqlx::Error> {
    let sql = "SELECT id, code_hash FROM backup_codes WHERE user_id = $1 AND used_at IS NULL";
    run!(conn, e => sqlx::query_as::<_, BackupCodeRow>(sql).bind(user_id).fetch_all(&mut *e).await)
}

/// Marks a code used if nobody used it first; true for exactly one concurrent caller.
pub async fn consume(conn: &mut Conn, id: Uuid, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE backup_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// (total, used).
pub async fn counts(conn: &mut Conn, user_id: Uuid) -> Result<(i64, i64), sqlx::Error> {
    let sql = "SELECT COUNT(*), COUNT(used_at) FROM backup_codes WHERE user_id = $1";
    run!(conn, e => sqlx::query_as::<_, (i64, i64)>(sql).bind(user_id).fetch_one(&mut *e).await)
}

pub async fn delete_all(conn: &mut Conn, user_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM backup_codes WHERE user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).execute(&mut *e).await.map(|_| ()))
}
