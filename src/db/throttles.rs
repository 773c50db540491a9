//! The `ip_throttles` table: failed passwords per client network, so one client cannot
//! spray guesses across many accounts. The `ip` column holds the key the service counts
//! under (`domain::network::throttle_key`): an IPv4 address, or an IPv6 /64 such as
//! `2001:db8:1:2::/64`.

use super::{Conn, run};

#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct IpThrottle {
    pub failures: i64,
    pub window_start: i64,
    pub blocked_until: i64,
}

pub async fn find(conn: &mut Conn, ip: &str) -> Result<Option<IpThrottle>, sqlx::Error> {
    let sql = "SELECT failures, window_start, blocked_until FROM ip_throttles WHERE ip = $1";
    run!(conn, e => sqlx::query_as::<_, IpThrottle>(sql).bind(ip).fetch_optional(&mut *e).await)
}

/// Counts a failure in the IP's current hour window and returns the count.
pub async fn count_failure(conn: &mut Conn, ip: &str, now: i64) -> Result<i64, sqlx::Error> {
    let sql = "INSERT INTO ip_throttles (ip, failures, window_start, blocked_until) VALUES ($1, 1, $2, 0) \
               ON CONFLICT (ip) DO UPDATE SET \
                 failures = CASE WHEN ip_throttles.window_start <= $2 - 3600 THEN 1 ELSE ip_throttles.failures + 1 END, \
                 window_start = CASE WHEN ip_throttles.window_start <= $2 - 3600 THEN $2 ELSE ip_throttles.window_start END \
               RETURNING failures";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(ip).bind(now).fetch_one(&mut *e).await)
}

pub async fn block_until(conn: &mut Conn, ip: &str, until: i64) -> Result<(), sqlx::Error> {
    let sql = "UPDATE ip_throttles SET blocked_until = $2 WHERE ip = $1 AND blocked_until < $2";
    run!(conn, e => sqlx::query(sql).bind(ip).bind(until).execute(&mut *e).await.map(|_| ()))
}

pub async fn prune(conn: &mut Conn, now: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM ip_throttles WHERE window_start <= $1 - 3600 AND blocked_until <= $1";
    run!(conn, e => sqlx::query(sql).bind(now).execute(&mut *e).await.map(|r| r.rows_affected()))
}
