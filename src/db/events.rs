//! The `security_events` table: what happened to an account, for its owner to review; and
//! `event_quotas`, which caps how many events of a type one account adds in an hour.

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
    /// Events of the same type past the cap in this one's hour, counted here.
    pub suppressed: i64,
}

pub struct NewEvent<'a> {
    pub user_id: Uuid,
    pub event_type: &'a str,
    pub occurred_at: i64,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub details: &'a str,
}

const INSERT: &str = "INSERT INTO security_events (id, user_id, event_type, occurred_at, seq, ip_address, user_agent, details) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Orders events within one second; wall-clock nanoseconds are monotonic enough here.
fn seq() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub async fn insert(conn: &mut Conn, ev: &NewEvent<'_>) -> Result<(), sqlx::Error> {
    let seq = seq();
    run!(conn, e => sqlx::query(INSERT)
        .bind(Uuid::new_v4()).bind(ev.user_id).bind(ev.event_type).bind(ev.occurred_at).bind(seq)
        .bind(ev.ip_address).bind(ev.user_agent).bind(ev.details)
        .execute(&mut *e).await.map(|_| ()))
}

/// What [`insert_capped`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capped {
    /// Stored as a row of its own.
    Recorded,
    /// Past the cap: counted into the `suppressed` of the last row of its type.
    Folded,
}

/// Stores `ev` unless `cap` events of its type were already seen for its user in the
/// current hour window; past the cap it only adds one to the `suppressed` count of the
/// last row recorded in the window. The window opens at the first event after the last
/// one closed.
///
/// One upsert on the quota row (by primary key) decides, then one statement stores or
/// counts; both run in one transaction (a savepoint inside a caller's), so the decision
/// and its row land together: concurrent requests serialise on the quota row and each
/// sees the others' rows, on SQLite and PostgreSQL alike.
pub async fn insert_capped(
    conn: &mut Conn,
    ev: &NewEvent<'_>,
    cap: i64,
) -> Result<Capped, sqlx::Error> {
    let quota = "INSERT INTO event_quotas (user_id, event_type, window_start, seen, last_event_id) \
                 VALUES ($1, $2, $3, 1, $4) \
                 ON CONFLICT (user_id, event_type) DO UPDATE SET \
                   seen = CASE WHEN event_quotas.window_start <= $3 - 3600 THEN 1 ELSE event_quotas.seen + 1 END, \
                   last_event_id = CASE WHEN event_quotas.window_start <= $3 - 3600 OR event_quotas.seen < $5 \
                                   THEN $4 ELSE event_quotas.last_event_id END, \
                   window_start = CASE WHEN event_quotas.window_start <= $3 - 3600 THEN $3 ELSE event_quotas.window_start END \
                 RETURNING seen, last_event_id";
    let fold = "UPDATE security_events SET suppressed = suppressed + 1 WHERE id = $1";
    let repoint =
        "UPDATE event_quotas SET last_event_id = $3 WHERE user_id = $1 AND event_type = $2";
    let id = Uuid::new_v4();
    let seq = seq();
    run!(conn, e => {
        let mut tx = sqlx::Connection::begin(&mut *e).await?;
        let (seen, last): (i64, Uuid) = sqlx::query_as(quota)
            .bind(ev.user_id).bind(ev.event_type).bind(ev.occurred_at).bind(id).bind(cap)
            .fetch_one(&mut *tx).await?;
        let folded = seen > cap
            && sqlx::query(fold).bind(last).execute(&mut *tx).await?.rows_affected() == 1;
        if !folded {
            sqlx::query(INSERT)
                .bind(id).bind(ev.user_id).bind(ev.event_type).bind(ev.occurred_at).bind(seq)
                .bind(ev.ip_address).bind(ev.user_agent).bind(ev.details)
                .execute(&mut *tx).await?;
        }
        if !folded && seen > cap {
            // Past the cap, but the row to count into is gone (pruned early): this event
            // took its place, and the next ones count into it instead of vanishing.
            sqlx::query(repoint).bind(ev.user_id).bind(ev.event_type).bind(id)
                .execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(if folded { Capped::Folded } else { Capped::Recorded })
    })
}

/// Forgets quota windows that have closed.
pub async fn prune_quotas(conn: &mut Conn, now: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM event_quotas WHERE window_start <= $1 - 3600";
    run!(conn, e => sqlx::query(sql).bind(now).execute(&mut *e).await.map(|r| r.rows_affected()))
}

/// The user's events, newest first.
pub async fn page(
    conn: &mut Conn,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let sql = "SELECT id, event_type, occurred_at, ip_address, user_agent, details, suppressed FROM security_events \
               WHERE user_id = $1 ORDER BY occurred_at DESC, seq DESC LIMIT $2 OFFSET $3";
    run!(conn, e => sqlx::query_as::<_, EventRow>(sql).bind(user_id).bind(limit).bind(offset).fetch_all(&mut *e).await)
}

pub async fn prune(conn: &mut Conn, older_than: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM security_events WHERE id IN (SELECT id FROM security_events WHERE occurred_at < $1 LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(older_than).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
