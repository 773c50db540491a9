//! The `users` table: the account, and the counters that throttle its password and second
//! factor. Every counter moves in one conditional statement so concurrent requests, on one
//! instance or many, cannot slip past a limit.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub user_name: String,
    pub phone_number: Option<String>,
    pub password_hash: String,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub last_login_ip: Option<String>,
    pub two_factor_enabled: bool,
    pub two_factor_enabled_at: Option<i64>,
    pub backup_codes_generated_at: Option<i64>,
    pub pw_failures: i64,
    pub pw_window_start: i64,
    pub pw_blocked_until: i64,
    pub sf_attempts: i64,
    pub sf_failures: i64,
    pub sf_lockouts: i64,
    pub sf_locked_until: i64,
    pub totp_suspended: bool,
}

const COLUMNS: &str = "id, email, user_name, phone_number, password_hash, created_at, last_login_at, \
     last_login_ip, two_factor_enabled, two_factor_enabled_at, backup_codes_generated_at, \
     pw_failures, pw_window_start, pw_blocked_until, sf_attempts, sf_failures, sf_lockouts, \
     sf_locked_until, totp_suspended";

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub user_name: &'a str,
    pub user_name_key: &'a str,
    pub phone_number: Option<&'a str>,
    pub password_hash: &'a str,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, user: &NewUser<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO users (id, email, user_name, user_name_key, phone_number, password_hash, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    run!(conn, e => sqlx::query(sql)
        .bind(user.id)
        .bind(user.email)
        .bind(user.user_name)
        .bind(user.user_name_key)
        .bind(user.phone_number)
        .bind(user.password_hash)
        .bind(user.created_at)
        .execute(&mut *e)
        .await
        .map(|_| ()))
}

pub async fn find_by_id(conn: &mut Conn, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    run!(conn, e => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *e).await)
}

pub async fn find_by_email(conn: &mut Conn, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    run!(conn, e => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(email).fetch_optional(&mut *e).await)
}

pub async fn find_by_user_name(conn: &mut Conn, key: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE user_name_key = $1");
    run!(conn, e => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(key).fetch_optional(&mut *e).await)
}

pub async fn record_login(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET last_login_at = $2, last_login_ip = $3, pw_failures = 0, pw_blocked_until = 0 WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now).bind(ip).execute(&mut *e).await.map(|_| ()))
}

pub async fn set_password_hash(conn: &mut Conn, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET password_hash = $2 WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).bind(hash).execute(&mut *e).await.map(|_| ()))
}

/// Counts a failed password in the current hour window and returns the count.
pub async fn count_password_failure(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let sql = "UPDATE users SET \
                 pw_failures = CASE WHEN pw_window_start <= $2 - 3600 THEN 1 ELSE pw_failures + 1 END, \
                 pw_window_start = CASE WHEN pw_window_start <= $2 - 3600 THEN $2 ELSE pw_window_start END \
               WHERE id = $1 RETURNING pw_failures";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(id).bind(now).fetch_one(&mut *e).await)
}

/// Pushes the next allowed password attempt out to `until` (never pulls it in).
pub async fn block_password_until(
    conn: &mut Conn,
    id: Uuid,
    until: i64,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET pw_blocked_until = $2 WHERE id = $1 AND pw_blocked_until < $2";
    run!(conn, e => sqlx::query(sql).bind(id).bind(until).execute(&mut *e).await.map(|_| ()))
}

/// Reserves one second-factor attempt: succeeds only while the factor is not locked and
/// fewer than `threshold` attempts are outstanding since the last lock. Reserving before
/// checking the code means concurrent guesses cannot exceed the threshold.
pub async fn reserve_second_factor_attempt(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
    threshold: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET sf_attempts = sf_attempts + 1 \
               WHERE id = $1 AND sf_locked_until <= $2 AND sf_attempts < $3";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now).bind(threshold).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// After a failed second factor: counts it, and returns (consecutive failures, attempts
/// outstanding, locks so far).
pub async fn count_second_factor_failure(
    conn: &mut Conn,
    id: Uuid,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let sql = "UPDATE users SET sf_failures = sf_failures + 1 WHERE id = $1 \
               RETURNING sf_failures, sf_attempts, sf_lockouts";
    run!(conn, e => sqlx::query_as::<_, (i64, i64, i64)>(sql).bind(id).fetch_one(&mut *e).await)
}

/// Locks the second factor until `until` if `threshold` attempts are outstanding; only one
/// of several concurrent failures applies the lock.
pub async fn lock_second_factor(
    conn: &mut Conn,
    id: Uuid,
    until: i64,
    threshold: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET sf_locked_until = $2, sf_lockouts = sf_lockouts + 1, sf_attempts = 0 \
               WHERE id = $1 AND sf_attempts >= $3";
    run!(conn, e => sqlx::query(sql).bind(id).bind(until).bind(threshold).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

pub async fn suspend_totp(conn: &mut Conn, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET totp_suspended = TRUE WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|_| ()))
}

/// A second factor succeeded: every counter, lock and suspension starts over.
pub async fn reset_second_factor_counters(conn: &mut Conn, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET sf_attempts = 0, sf_failures = 0, sf_lockouts = 0, sf_locked_until = 0, \
               totp_suspended = FALSE WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|_| ()))
}

/// Gives back a reserved attempt that ended without judging a code (for example, the
/// two-factor token was already spent), so it does not count toward a lock.
pub async fn release_second_factor_attempt(conn: &mut Conn, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET sf_attempts = sf_attempts - 1 WHERE id = $1 AND sf_attempts > 0";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|_| ()))
}

pub async fn set_two_factor_enabled(
    conn: &mut Conn,
    id: Uuid,
    enabled: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET two_factor_enabled = $2, \
               two_factor_enabled_at = CASE WHEN $2 THEN $3 ELSE NULL END WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).bind(enabled).bind(now).execute(&mut *e).await.map(|_| ()))
}

pub async fn set_backup_codes_generated_at(
    conn: &mut Conn,
    id: Uuid,
    at: Option<i64>,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET backup_codes_generated_at = $2 WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).bind(at).execute(&mut *e).await.map(|_| ()))
}

/// Clears every lock on the account (admin unlock).
pub async fn unlock(conn: &mut Conn, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET sf_attempts = 0, sf_failures = 0, sf_lockouts = 0, sf_locked_until = 0, \
               totp_suspended = FALSE, pw_failures = 0, pw_blocked_until = 0 WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|_| ()))
}

pub async fn list(
    conn: &mut Conn,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    let pattern = format!("%{}%", search.unwrap_or("").to_lowercase());
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE email LIKE $1 OR user_name_key LIKE $1 ORDER BY created_at, email LIMIT $2"
    );
    run!(conn, e => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(&pattern).bind(limit).fetch_all(&mut *e).await)
}

/// What `GET /2fa/status` shows, in one round trip: status is the hottest signed-in
/// route, so it costs one query rather than four.
#[derive(Debug, Clone, FromRow)]
pub struct TwoFactorSummary {
    pub two_factor_enabled: bool,
    pub two_factor_enabled_at: Option<i64>,
    pub setup_pending: i64,
    pub backup_codes_unused: i64,
    pub trusted_devices: i64,
}

pub async fn two_factor_summary(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
) -> Result<Option<TwoFactorSummary>, sqlx::Error> {
    let sql = "SELECT u.two_factor_enabled, u.two_factor_enabled_at, \
                 CAST(CASE WHEN t.pending_secret_enc IS NOT NULL AND t.pending_expires_at > $2 \
                      THEN 1 ELSE 0 END AS BIGINT) AS setup_pending, \
                 (SELECT COUNT(*) FROM backup_codes b WHERE b.user_id = u.id AND b.used_at IS NULL) \
                   AS backup_codes_unused, \
                 (SELECT COUNT(*) FROM trusted_devices d WHERE d.user_id = u.id AND d.expires_at > $2) \
                   AS trusted_devices \
               FROM users u LEFT JOIN totp_credentials t ON t.user_id = u.id WHERE u.id = $1";
    run!(conn, e => sqlx::query_as::<_, TwoFactorSummary>(sql)
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *e)
        .await)
}
