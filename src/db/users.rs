//! The `users` table: the account, and the counters that throttle its password and second
//! factor. Every counter moves in one conditional statement so concurrent requests, on one
//! instance or many, cannot slip past a limit.

use sqlx::FromRow;
use uuid::Uuid;

use super::throttles::Counted;
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
    /// Unix seconds; `None` while the account is enabled.
    pub disabled_at: Option<i64>,
    /// An operator requires this account to have a second factor.
    pub second_factor_required: bool,
}

const COLUMNS: &str = "id, email, user_name, phone_number, password_hash, created_at, last_login_at, \
     last_login_ip, two_factor_enabled, two_factor_enabled_at, backup_codes_generated_at, \
     pw_failures, pw_window_start, pw_blocked_until, sf_attempts, sf_failures, sf_lockouts, \
     sf_locked_until, totp_suspended, disabled_at, second_factor_required";

/// The account columns qualified by a table alias, for joins.
pub fn columns(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub user_name: &'a str,
    pub user_name_key: &'a str,
    pub phone_number: Option<&'a str>,
    pub password_hash: &'a str,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, user: &NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO users (id, email, user_name, user_name_key, phone_number, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    run!(conn, e => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(user.id)
        .bind(user.email)
        .bind(user.user_name)
        .bind(user.user_name_key)
        .bind(user.phone_number)
        .bind(user.password_hash)
        .bind(user.created_at)
        .fetch_one(&mut *e)
        .await)
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

/// Records a completed sign-in and returns the account as it now is, in one statement.
/// With `password_hash`, only while the account still has that hash. A sign-in with a
/// second factor also starts the second factor's counters, lock and suspension over (a
/// success resets them), in the same statement.
pub async fn record_login(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
    ip: &str,
    password_hash: Option<&str>,
    second_factor: bool,
) -> Result<Option<UserRow>, sqlx::Error> {
    let condition = if password_hash.is_some() {
        "id = $1 AND password_hash = $4 AND disabled_at IS NULL"
    } else {
        "id = $1 AND $4 IS NULL AND disabled_at IS NULL"
    };
    let reset = if second_factor {
        ", sf_attempts = 0, sf_failures = 0, sf_lockouts = 0, sf_locked_until = 0, totp_suspended = FALSE"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE users SET last_login_at = $2, last_login_ip = $3, pw_failures = 0, pw_blocked_until = 0{reset} \
         WHERE {condition} RETURNING {COLUMNS}"
    );
    run!(conn, e => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id).bind(now).bind(ip).bind(password_hash)
        .fetch_optional(&mut *e).await)
}

/// Replaces the password hash if it is still `old`: of two concurrent changes, one wins.
pub async fn replace_password_hash(
    conn: &mut Conn,
    id: Uuid,
    old: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2";
    run!(conn, e => sqlx::query(sql).bind(id).bind(old).bind(new).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// Counts a password attempt against the account in the current hour window, before its
/// hash is checked (a right password gives it back with [`give_back_password_attempt`]);
/// `None` when the account is gone.
pub async fn count_password_attempt(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
) -> Result<Option<Counted>, sqlx::Error> {
    let sql = "UPDATE users SET \
                 pw_failures = CASE WHEN pw_window_start <= $2 - 3600 THEN 1 ELSE pw_failures + 1 END, \
                 pw_window_start = CASE WHEN pw_window_start <= $2 - 3600 THEN $2 ELSE pw_window_start END \
               WHERE id = $1 \
               RETURNING pw_failures AS failures, pw_window_start AS window_start, pw_blocked_until AS blocked_until";
    run!(conn, e => sqlx::query_as::<_, Counted>(sql).bind(id).bind(now).fetch_optional(&mut *e).await)
}

/// Takes back an attempt [`count_password_attempt`] counted in the window that began at
/// `window_start`; nothing once that window has ended.
pub async fn give_back_password_attempt(
    conn: &mut Conn,
    id: Uuid,
    window_start: i64,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET pw_failures = pw_failures - 1 \
               WHERE id = $1 AND pw_window_start = $2 AND pw_failures > 0";
    run!(conn, e => sqlx::query(sql).bind(id).bind(window_start).execute(&mut *e).await.map(|_| ()))
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

/// The account's second-factor state, as one check begins.
#[derive(Debug, Clone, FromRow)]
pub struct SecondFactorAttempt {
    /// Failures since the last lock, this attempt included.
    pub sf_attempts: i64,
    /// Consecutive failures, this attempt included.
    pub sf_failures: i64,
    pub sf_lockouts: i64,
    pub totp_suspended: bool,
    pub two_factor_enabled: bool,
    /// The confirmed authenticator, if there is one: its sealed secret, parameters and
    /// learned drift (see [`super::totp::TotpRow`]).
    pub totp_secret_enc: Option<Vec<u8>>,
    pub totp_algorithm: Option<String>,
    pub totp_digits: Option<i64>,
    pub totp_period: Option<i64>,
    pub totp_drift: Option<i64>,
}

/// Begins a second-factor check inside a write transaction: counts the attempt as a
/// failure up front (a success resets the counters in the same transaction) and returns
/// the state the check needs, the confirmed authenticator included (one round trip on the
/// hottest write path, not two). `None` while the factor is
/// locked. The statement also takes the account's row lock, so on PostgreSQL concurrent
/// checks of one account run one after another, on any number of instances.
pub async fn begin_second_factor_attempt(
    conn: &mut Conn,
    id: Uuid,
    now: i64,
    threshold: i64,
) -> Result<Option<SecondFactorAttempt>, sqlx::Error> {
    let sql = "UPDATE users SET sf_attempts = sf_attempts + 1, sf_failures = sf_failures + 1 \
               WHERE id = $1 AND sf_locked_until <= $2 AND sf_attempts < $3 \
               RETURNING sf_attempts, sf_failures, sf_lockouts, totp_suspended, two_factor_enabled, \
                 (SELECT t.secret_enc FROM totp_credentials t WHERE t.user_id = users.id) AS totp_secret_enc, \
                 (SELECT t.algorithm FROM totp_credentials t WHERE t.user_id = users.id) AS totp_algorithm, \
                 (SELECT t.digits FROM totp_credentials t WHERE t.user_id = users.id) AS totp_digits, \
                 (SELECT t.period FROM totp_credentials t WHERE t.user_id = users.id) AS totp_period, \
                 (SELECT t.drift FROM totp_credentials t WHERE t.user_id = users.id) AS totp_drift";
    run!(conn, e => sqlx::query_as::<_, SecondFactorAttempt>(sql).bind(id).bind(now).bind(threshold)
        .fetch_optional(&mut *e).await)
}

/// Takes the account's row lock for the rest of the transaction (on PostgreSQL; SQLite's
/// one writer serialises write transactions anyway), so a rule that reads several of the
/// account's rows decides on a state no concurrent change of the account can move.
pub async fn lock_row(conn: &mut Conn, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET id = id WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|_| ()))
}

pub async fn two_factor_enabled(conn: &mut Conn, id: Uuid) -> Result<Option<bool>, sqlx::Error> {
    let sql = "SELECT two_factor_enabled FROM users WHERE id = $1";
    run!(conn, e => sqlx::query_scalar::<_, bool>(sql).bind(id).fetch_optional(&mut *e).await)
}

/// When the account's second factor unlocks (0 if it is not locked).
pub async fn second_factor_locked_until(conn: &mut Conn, id: Uuid) -> Result<i64, sqlx::Error> {
    let sql = "SELECT sf_locked_until FROM users WHERE id = $1";
    run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(id).fetch_optional(&mut *e).await)
        .map(|until| until.unwrap_or(0))
}

/// After a failed check that reached a limit: locks the factor until `lock_until` (when
/// given; the attempts start over) and suspends TOTP (when `suspend`).
pub async fn apply_second_factor_limits(
    conn: &mut Conn,
    id: Uuid,
    lock_until: Option<i64>,
    suspend: bool,
) -> Result<(), sqlx::Error> {
    let sql = match lock_until {
        Some(_) => {
            "UPDATE users SET sf_locked_until = $2, sf_lockouts = sf_lockouts + 1, sf_attempts = 0, \
             totp_suspended = (totp_suspended OR $3) WHERE id = $1"
        }
        None if suspend => "UPDATE users SET totp_suspended = $3 WHERE id = $1 AND $2 = 0",
        None => return Ok(()),
    };
    run!(conn, e => sqlx::query(sql).bind(id).bind(lock_until.unwrap_or(0)).bind(suspend)
        .execute(&mut *e).await.map(|_| ()))
}

/// A second factor succeeded: every counter, lock and suspension starts over.
pub async fn reset_second_factor_counters(conn: &mut Conn, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET sf_attempts = 0, sf_failures = 0, sf_lockouts = 0, sf_locked_until = 0, \
               totp_suspended = FALSE WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|_| ()))
}

/// Switches 2FA on or off; true when it changed (of concurrent switches, one wins).
pub async fn set_two_factor_enabled(
    conn: &mut Conn,
    id: Uuid,
    enabled: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET two_factor_enabled = $2, \
               two_factor_enabled_at = CASE WHEN $2 THEN $3 ELSE NULL END \
               WHERE id = $1 AND two_factor_enabled <> $2";
    run!(conn, e => sqlx::query(sql).bind(id).bind(enabled).bind(now).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// Turns 2FA on after a confirmed enrolment, with new backup codes and every counter
/// starting over, in one statement; false if it was already on.
pub async fn enable_two_factor(conn: &mut Conn, id: Uuid, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET two_factor_enabled = TRUE, two_factor_enabled_at = $2, \
               backup_codes_generated_at = $2, sf_attempts = 0, sf_failures = 0, sf_lockouts = 0, \
               sf_locked_until = 0, totp_suspended = FALSE \
               WHERE id = $1 AND two_factor_enabled = FALSE";
    run!(conn, e => sqlx::query(sql).bind(id).bind(now).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// Turns 2FA off with its secret gone: no backup codes, every counter starting over.
pub async fn disable_two_factor(conn: &mut Conn, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET two_factor_enabled = FALSE, two_factor_enabled_at = NULL, \
               backup_codes_generated_at = NULL, sf_attempts = 0, sf_failures = 0, sf_lockouts = 0, \
               sf_locked_until = 0, totp_suspended = FALSE WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|_| ()))
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

/// An account with how many live sessions it has, as an operator lists it.
#[derive(Debug, Clone, FromRow)]
pub struct ListedUser {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub live_sessions: i64,
}

/// Accounts whose email or user name contains `search`, oldest first, with their live
/// session counts, in one round trip.
pub async fn list(
    conn: &mut Conn,
    search: Option<&str>,
    limit: i64,
    offset: i64,
    now: i64,
) -> Result<Vec<ListedUser>, sqlx::Error> {
    // `\` escapes the pattern characters, so a search for `_` or `%` finds those.
    let escaped = search
        .unwrap_or("")
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT COUNT(*) FROM sessions s WHERE s.user_id = users.id \
           AND s.revoked_at IS NULL AND s.expires_at > $4) AS live_sessions \
         FROM users WHERE email LIKE $1 ESCAPE '\\' OR user_name_key LIKE $1 ESCAPE '\\' \
         ORDER BY created_at, email, id LIMIT $2 OFFSET $3"
    );
    run!(conn, e => sqlx::query_as::<_, ListedUser>(sqlx::AssertSqlSafe(sql.as_str())).bind(&pattern).bind(limit)
        .bind(offset).bind(now).fetch_all(&mut *e).await)
}

/// Disables (`at`) or enables (`None`) the account; true when it changed.
pub async fn set_disabled(conn: &mut Conn, id: Uuid, at: Option<i64>) -> Result<bool, sqlx::Error> {
    let sql = match at {
        Some(_) => "UPDATE users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
        None => {
            "UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL AND $2 = 0"
        }
    };
    run!(conn, e => sqlx::query(sql).bind(id).bind(at.unwrap_or(0)).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// Sets whether the account must have a second factor; true when it changed.
pub async fn set_second_factor_required(
    conn: &mut Conn,
    id: Uuid,
    required: bool,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET second_factor_required = $2 WHERE id = $1 AND second_factor_required <> $2";
    run!(conn, e => sqlx::query(sql).bind(id).bind(required).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Deletes the account; everything that references it goes with it (`ON DELETE CASCADE`:
/// sessions and their refresh tokens, secrets, backup codes, devices, pending steps,
/// events). True when there was one.
pub async fn delete(conn: &mut Conn, id: Uuid) -> Result<bool, sqlx::Error> {
    let sql = "DELETE FROM users WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Sets a new password hash (a set-password link); true when the account exists.
pub async fn set_password_hash(conn: &mut Conn, id: Uuid, hash: &str) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET password_hash = $2 WHERE id = $1";
    run!(conn, e => sqlx::query(sql).bind(id).bind(hash).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
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
    /// 1 when a TOTP authenticator is confirmed.
    pub totp_confirmed: i64,
    /// Passkeys that can be used (not disabled).
    pub passkeys: i64,
}

/// The summary; with `session_id`, only while it is a live session of the account: the
/// caller's authentication check folded into the same round trip.
pub async fn two_factor_summary(
    conn: &mut Conn,
    id: Uuid,
    session_id: Option<Uuid>,
    now: i64,
) -> Result<Option<TwoFactorSummary>, sqlx::Error> {
    let sql = "SELECT u.two_factor_enabled, u.two_factor_enabled_at, \
                 CAST(CASE WHEN t.pending_secret_enc IS NOT NULL AND t.pending_expires_at > $2 \
                      THEN 1 ELSE 0 END AS BIGINT) AS setup_pending, \
                 (SELECT COUNT(*) FROM backup_codes b WHERE b.user_id = u.id AND b.used_at IS NULL) \
                   AS backup_codes_unused, \
                 (SELECT COUNT(*) FROM trusted_devices d WHERE d.user_id = u.id AND d.expires_at > $2) \
                   AS trusted_devices, \
                 CAST(CASE WHEN t.secret_enc IS NOT NULL THEN 1 ELSE 0 END AS BIGINT) AS totp_confirmed, \
                 (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = u.id AND p.disabled_at IS NULL) AS passkeys \
               FROM users u LEFT JOIN totp_credentials t ON t.user_id = u.id \
               WHERE u.id = $1 AND ($3 IS NULL OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = $3 \
                 AND s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > $2))";
    run!(conn, e => sqlx::query_as::<_, TwoFactorSummary>(sql)
        .bind(id)
        .bind(now)
        .bind(session_id)
        .fetch_optional(&mut *e)
        .await)
}
