//! The `ip_throttles` table: failed passwords per client network, so one client cannot
//! spray guesses across many accounts. The `ip` column holds the key the service counts
//! under (`domain::network::throttle_key`): an IPv4 address, or an IPv6 /64 such as
//! `2001:db8:1:2::/64`.

use super::{Conn, run};

/// A password failure counter as an attempt was counted (an `ip_throttles` row, or an
/// account's `pw_*` columns): the hour window's count with the attempt in it, when that
/// window began, and the delay as it stood before the attempt.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Counted {
    pub failures: i64,
    pub window_start: i64,
    pub blocked_until: i64,
}

/// Counts a password attempt against the client's network in the current hour window,
/// before its hash is checked (a right password gives it back with [`give_back`]).
pub async fn count_attempt(conn: &mut Conn, ip: &str, now: i64) -> Result<Counted, sqlx::Error> {
    let sql = "INSERT INTO ip_throttles (ip, failures, window_start, blocked_until) VALUES ($1, 1, $2, 0) \
               ON CONFLICT (ip) DO UPDATE SET \
                 failures = CASE WHEN ip_throttles.window_start <= $2 - 3600 THEN 1 ELSE ip_throttles.failures + 1 END, \
                 window_start = CASE WHEN ip_throttles.window_start <= $2 - 3600 THEN $2 ELSE ip_throttles.window_start END \
               RETURNING failures, window_start, blocked_until";
    run!(conn, e => sqlx::query_as::<_, Counted>(sql).bind(ip).bind(now).fetch_one(&mut *e).await)
}

/// Takes back an attempt [`count_attempt`] counted in the window that began at
/// `window_start`; nothing once that window has ended.
pub async fn give_back(conn: &mut Conn, ip: &str, window_start: i64) -> Result<(), sqlx::Error> {
    let sql = "UPDATE ip_throttles SET failures = failures - 1 \
               WHERE ip = $1 AND window_start = $2 AND failures > 0";
    run!(conn, e => sqlx::query(sql).bind(ip).bind(window_start).execute(&mut *e).await.map(|_| ()))
}

pub async fn block_until(conn: &mut Conn, ip: &str, until: i64) -> Result<(), sqlx::Error> {
    let sql = "UPDATE ip_throttles SET blocked_until = $2 WHERE ip = $1 AND blocked_until < $2";
    run!(conn, e => sqlx::query(sql).bind(ip).bind(until).execute(&mut *e).await.map(|_| ()))
}

pub async fn prune(conn: &mut Conn, now: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM ip_throttles WHERE window_start <= $1 - 3600 AND blocked_until <= $1";
    run!(conn, e => sqlx::query(sql).bind(now).execute(&mut *e).await.map(|r| r.rows_affected()))
}
