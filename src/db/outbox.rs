//! The `outbox` table: messages to deliver, written in the transaction of the event they
//! tell of, claimed by a delivery worker with a lease, and finished as delivered or dead.
//!
//! A claim is one statement. On PostgreSQL its row selection takes `FOR UPDATE SKIP
//! LOCKED`, so instances claiming at once each take different rows; on SQLite the single
//! writer serialises claims. A claim stamps the rows with a fresh `claim_id` and a lease:
//! only that claim may record the attempt's outcome, and a row whose lease ran out (its
//! worker died) is claimed again. A worker claims only the messages of the channels its
//! instance is configured with.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Backend, Conn, run};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";

pub struct NewMessage<'a> {
    pub id: Uuid,
    pub channel: &'a str,
    pub user_id: Option<Uuid>,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub channel: String,
    pub user_id: Option<Uuid>,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
    pub status: String,
    /// Attempts made, the one just claimed included.
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "id, channel, user_id, event_type, payload, created_at, status, attempts, next_attempt_at, last_error, finished_at";

pub async fn insert(conn: &mut Conn, m: &NewMessage<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO outbox (id, channel, user_id, event_type, payload, created_at, status, next_attempt_at) \
               VALUES ($1, $2, $3, $4, $5, $6, 'pending', $6)";
    run!(conn, e => sqlx::query(sql)
        .bind(m.id).bind(m.channel).bind(m.user_id).bind(m.event_type).bind(m.payload).bind(m.created_at)
        .execute(&mut *e).await.map(|_| ()))
}

/// Whether any message of `channels` is due: a read, so an idle worker's poll does not
/// take the writer.
pub async fn any_due(conn: &mut Conn, now: i64, channels: &[String]) -> Result<bool, sqlx::Error> {
    if channels.is_empty() {
        return Ok(false);
    }
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND lease_until <= $1 AND channel IN ({}) LIMIT 1) AS due",
        super::placeholders(2, channels.len()).join(", ")
    );
    run!(conn, e => {
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone())).bind(now);
        for channel in channels {
            query = query.bind(channel);
        }
        query.fetch_one(&mut *e).await.map(|n| n > 0)
    })
}

/// Claims up to `limit` due messages of `channels` until `lease_until`, counting the
/// attempt.
pub async fn claim(
    conn: &mut Conn,
    now: i64,
    lease_until: i64,
    claim_id: Uuid,
    limit: i64,
    channels: &[String],
) -> Result<Vec<MessageRow>, sqlx::Error> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let lock = match conn.backend() {
        Backend::Sqlite(_) => "",
        Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE outbox SET lease_until = $1, claim_id = $2, attempts = attempts + 1 \
         WHERE status = 'pending' AND lease_until <= $3 AND id IN \
           (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 AND lease_until <= $3 \
            AND channel IN ({}) ORDER BY next_attempt_at LIMIT $4{lock}) \
         RETURNING {COLUMNS}",
        super::placeholders(5, channels.len()).join(", ")
    );
    run!(conn, e => {
        let mut query = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(lease_until).bind(claim_id).bind(now).bind(limit);
        for channel in channels {
            query = query.bind(channel);
        }
        query.fetch_all(&mut *e).await
    })
}

/// Records a delivered message; false when the claim is no longer the row's.
pub async fn mark_delivered(
    conn: &mut Conn,
    id: Uuid,
    claim_id: Uuid,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE outbox SET status = 'delivered', finished_at = $3, lease_until = 0, last_error = NULL \
               WHERE id = $1 AND claim_id = $2 AND status = 'pending'";
    run!(conn, e => sqlx::query(sql).bind(id).bind(claim_id).bind(now)
        .execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Records a failed attempt: retried at `retry_at`, or, with `None`, dead.
pub async fn mark_failed(
    conn: &mut Conn,
    id: Uuid,
    claim_id: Uuid,
    now: i64,
    retry_at: Option<i64>,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let retry = "UPDATE outbox SET next_attempt_at = $3, lease_until = 0, last_error = $4 \
                 WHERE id = $1 AND claim_id = $2 AND status = 'pending'";
    let dead = "UPDATE outbox SET status = 'dead', finished_at = $3, lease_until = 0, last_error = $4 \
                WHERE id = $1 AND claim_id = $2 AND status = 'pending'";
    let (sql, at) = match retry_at {
        Some(at) => (retry, at),
        None => (dead, now),
    };
    run!(conn, e => sqlx::query(sql).bind(id).bind(claim_id).bind(at).bind(error)
        .execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Makes a message due again at `now`, with its attempts counted from zero (an operator's
/// replay). False when there is no such message or a worker holds it now.
pub async fn replay(conn: &mut Conn, id: Uuid, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_until = 0, \
               claim_id = NULL, finished_at = NULL WHERE id = $1 AND lease_until <= $2";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now)
        .execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

pub async fn find(conn: &mut Conn, id: Uuid) -> Result<Option<MessageRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = $1");
    run!(conn, e => sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql.clone())).bind(id)
        .fetch_optional(&mut *e).await)
}

/// The newest messages, of one channel or all.
pub async fn recent(
    conn: &mut Conn,
    channel: Option<&str>,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM outbox WHERE ($1 = '' OR channel = $1) ORDER BY created_at DESC, id LIMIT $2"
    );
    run!(conn, e => sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(channel.unwrap_or("")).bind(limit)
        .fetch_all(&mut *e).await)
}

/// Pending messages: how many, and when the oldest was written.
pub async fn pending_stats(conn: &mut Conn) -> Result<(i64, Option<i64>), sqlx::Error> {
    let sql = "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'";
    run!(conn, e => sqlx::query_as::<_, (i64, Option<i64>)>(sql).fetch_one(&mut *e).await)
}

/// Messages by channel and status.
pub async fn counts(conn: &mut Conn) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let sql = "SELECT channel, status, COUNT(*) FROM outbox GROUP BY channel, status ORDER BY channel, status";
    run!(conn, e => sqlx::query_as::<_, (String, String, i64)>(sql).fetch_all(&mut *e).await)
}

/// Deletes every message about the account, sent or not (through the `outbox_user`
/// index): their payloads are copies of the account's events, which go with it.
pub async fn delete_for_user(conn: &mut Conn, user_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM outbox WHERE user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).execute(&mut *e).await.map(|_| ()))
}

/// Deletes finished messages older than `older_than`, a batch at a time.
pub async fn prune(conn: &mut Conn, older_than: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status <> 'pending' AND finished_at < $1 LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(older_than).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
