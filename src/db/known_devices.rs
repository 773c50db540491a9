//! The `known_devices` table: the devices each account has signed in from, and when.

use uuid::Uuid;

use super::{Conn, run};

/// Notes that `user_id` signed in from `key` at `now`; returns when it was last seen
/// before (`None`: never).
pub async fn seen(
    conn: &mut Conn,
    user_id: Uuid,
    key: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let before = "SELECT last_seen_at FROM known_devices WHERE user_id = $1 AND device_key = $2";
    let upsert = "INSERT INTO known_devices (user_id, device_key, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3) \
                  ON CONFLICT (user_id, device_key) DO UPDATE SET last_seen_at = excluded.last_seen_at";
    run!(conn, e => {
        let last: Option<i64> = sqlx::query_scalar(before).bind(user_id).bind(key)
            .fetch_optional(&mut *e).await?;
        sqlx::query(upsert).bind(user_id).bind(key).bind(now).execute(&mut *e).await?;
        Ok(last)
    })
}

/// Whether the account has signed in from any device before.
pub async fn any(conn: &mut Conn, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM known_devices WHERE user_id = $1";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(user_id).fetch_one(&mut *e).await.map(|n| n > 0))
}

/// Forgets devices not seen since `older_than`, a batch at a time.
pub async fn prune(conn: &mut Conn, older_than: i64, batch: i64) -> Result<u64, sqlx::Error> {
    // An account's most recent device stays, however old: without any, the account's next
    // sign-in would count as its first and report nothing, exactly when a long-unused
    // account is signed into from somewhere new.
    let sql = "DELETE FROM known_devices WHERE (user_id, device_key) IN \
               (SELECT k.user_id, k.device_key FROM known_devices k WHERE k.last_seen_at < $1 \
                  AND EXISTS (SELECT 1 FROM known_devices n WHERE n.user_id = k.user_id \
                              AND n.last_seen_at > k.last_seen_at) \
                LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(older_than).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
