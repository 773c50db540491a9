//! The `two_factor_challenges` table: the pending second step of a login, named by the
//! hash of its `twoFactorToken`. Single use, short-lived, dead after a few wrong codes.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct ChallengeRow {
    pub user_id: Uuid,
    pub expires_at: i64,
}

/// What a pending token stands for (the `purpose` column).
pub const SECOND_FACTOR: &str = "second_factor";
/// A login of an account that must have a second factor and has none: allows TOTP
/// enrolment only, and its confirmation signs in.
pub const ENROLMENT: &str = "enrolment";
/// The single-use link that sets the password of an account created without one.
pub const SET_PASSWORD: &str = "set_password";

pub struct NewChallenge<'a> {
    pub hash: &'a [u8],
    pub user_id: Uuid,
    pub now: i64,
    pub expires_at: i64,
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
}

/// Creates a pending second step (for seeding; sign-in uses [`insert_for_password`]).
pub async fn insert(conn: &mut Conn, c: &NewChallenge<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO two_factor_challenges (token_hash, user_id, created_at, expires_at, ip_address, user_agent) \
               VALUES ($1, $2, $3, $4, $5, $6)";
    run!(conn, e => sqlx::query(sql).bind(c.hash).bind(c.user_id).bind(c.now).bind(c.expires_at).bind(c.ip)
        .bind(c.user_agent).execute(&mut *e).await.map(|_| ()))
}

/// Creates a pending token of `purpose` only while the account's password hash is still
/// `password_hash` (the one just checked, or just stored); false when it has changed since.
pub async fn insert_for_password(
    conn: &mut Conn,
    c: &NewChallenge<'_>,
    purpose: &str,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO two_factor_challenges (token_hash, user_id, created_at, expires_at, ip_address, user_agent, purpose) \
               SELECT $1, $2, $3, $4, $5, $6, $8 WHERE EXISTS \
                 (SELECT 1 FROM users WHERE id = $2 AND password_hash = $7)";
    run!(conn, e => sqlx::query(sql).bind(c.hash).bind(c.user_id).bind(c.now).bind(c.expires_at).bind(c.ip)
        .bind(c.user_agent).bind(password_hash).bind(purpose)
        .execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// What a live token is, in one place for every statement that needs one: this hash
/// (`$1`) and `purpose` (`$3`), unused, unexpired at `now` (`$2`), and short of
/// `max_failures` (`$4`) wrong codes.
macro_rules! live {
    () => {
        "token_hash = $1 AND purpose = $3 AND used_at IS NULL AND expires_at > $2 AND failures < $4"
    };
}

/// The live token of `purpose` with this hash, without taking an attempt.
pub async fn find_live(
    conn: &mut Conn,
    hash: &[u8],
    purpose: &str,
    now: i64,
    max_failures: i64,
) -> Result<Option<ChallengeRow>, sqlx::Error> {
    let sql = concat!(
        "SELECT user_id, expires_at FROM two_factor_challenges WHERE ",
        live!()
    );
    run!(conn, e => sqlx::query_as::<_, ChallengeRow>(sql).bind(hash).bind(now).bind(purpose).bind(max_failures)
        .fetch_optional(&mut *e).await)
}

/// Spends a live token of `purpose` (as [`find_live`] has it) that no attempt was reserved
/// on; the account for exactly one caller.
pub async fn spend(
    conn: &mut Conn,
    hash: &[u8],
    purpose: &str,
    now: i64,
    max_failures: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = concat!(
        "UPDATE two_factor_challenges SET used_at = $2 WHERE ",
        live!(),
        " RETURNING user_id"
    );
    run!(conn, e => sqlx::query_scalar::<_, Uuid>(sql).bind(hash).bind(now).bind(purpose).bind(max_failures)
        .fetch_optional(&mut *e).await)
}

/// Takes one of the `max_failures` attempts of a token of `purpose` ([`SECOND_FACTOR`],
/// [`ENROLMENT`]), in the transaction that checks the code: the challenge if it is unused,
/// unexpired and had an attempt to spare. A wrong code commits the attempt as the
/// failure; a success gives it back in [`consume`]; any other outcome rolls the
/// transaction back. On PostgreSQL the statement also locks the row, so concurrent uses of
/// one token take turns.
pub async fn reserve_attempt(
    conn: &mut Conn,
    hash: &[u8],
    purpose: &str,
    now: i64,
    max_failures: i64,
) -> Result<Option<ChallengeRow>, sqlx::Error> {
    let sql = concat!(
        "UPDATE two_factor_challenges SET failures = failures + 1 WHERE ",
        live!(),
        " RETURNING user_id, expires_at"
    );
    run!(conn, e => sqlx::query_as::<_, ChallengeRow>(sql).bind(hash).bind(now).bind(purpose).bind(max_failures)
        .fetch_optional(&mut *e).await)
}

/// Spends the challenge for a caller holding one of its attempts (taken by
/// [`reserve_attempt`] in the same transaction, and given back here: a success is not a
/// failure). True for exactly one caller, and only while it is still live.
pub async fn consume(conn: &mut Conn, hash: &[u8], now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE two_factor_challenges SET used_at = $2, failures = failures - 1 \
               WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2";
    run!(conn, e => sqlx::query(sql).bind(hash).bind(now).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

pub async fn delete_for_user(conn: &mut Conn, user_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM two_factor_challenges WHERE user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).execute(&mut *e).await.map(|_| ()))
}

#[derive(Debug, Clone, FromRow)]
pub struct AbandonedRow {
    pub token_hash: Vec<u8>,
    pub user_id: Uuid,
    pub created_at: i64,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// Challenges that expired without ever being completed and are not yet reported.
pub async fn abandoned(
    conn: &mut Conn,
    now: i64,
    batch: i64,
) -> Result<Vec<AbandonedRow>, sqlx::Error> {
    let sql = "SELECT token_hash, user_id, created_at, ip_address, user_agent FROM two_factor_challenges \
               WHERE used_at IS NULL AND expires_at <= $1 AND abandoned_reported = FALSE AND purpose = 'second_factor' LIMIT $2";
    run!(conn, e => sqlx::query_as::<_, AbandonedRow>(sql).bind(now).bind(batch).fetch_all(&mut *e).await)
}

/// Marks an abandoned challenge reported; true for exactly one caller across instances.
pub async fn mark_reported(conn: &mut Conn, hash: &[u8]) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE two_factor_challenges SET abandoned_reported = TRUE WHERE token_hash = $1 AND abandoned_reported = FALSE";
    run!(conn, e => sqlx::query(sql).bind(hash).execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Deletes challenges that are over and done with: used, or expired and reported.
pub async fn prune(conn: &mut Conn, now: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM two_factor_challenges WHERE token_hash IN (SELECT token_hash FROM two_factor_challenges \
               WHERE expires_at <= $1 AND (used_at IS NOT NULL OR abandoned_reported = TRUE OR purpose <> 'second_factor') LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(now).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
