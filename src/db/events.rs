//! The `security_events` table: what happened to an account, for its owner to review.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub event_type: String,
    pub occurred_at: i64,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
}

pub struct NewEvent<'a> {
    pub user_id: Uuid,
    pub event_type: &'a str,
    pub occurred_at: i64,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub details: &'a str,
}

pub async fn insert(conn: &mut Conn, ev: &NewEvent<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO security_events (id, user_id, event_type, occurred_at, seq, ip_address, user_agent, details) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    // Orders events within one second; wall-clock nanoseconds are monotonic enough here.
    let seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    run!(conn, e => sqlx::query(sql)
        .bind(Uuid::new_v4()).bind(ev.user_id).bind(ev.event_type).bind(ev.occurred_at).bind(seq)
        .bind(ev.ip_address).bind(ev.user_agent).bind(ev.details)
        .execute(&mut *e).await.map(|_| ()))
}

/// The user's events, newest first.
pub async fn page(
    conn: &mut Conn,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let sql = "SELECT id, event_type, occurred_at, ip_address, user_agent, details FROM security_events \
               WHERE user_id = $1 ORDER BY occurred_at DESC, seq DESC LIMIT $2 OFFSET $3";
    run!(conn, e => sqlx::query_as::<_, EventRow>(sql).bind(user_id).bind(limit).bind(offset).fetch_all(&mut *e).await)
}

pub async fn prune(conn: &mut Conn, older_than: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM security_events WHERE id IN (SELECT id FROM security_events WHERE occurred_at < $1 LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(older_than).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
