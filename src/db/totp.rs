//! The `totp_credentials` table: a user's confirmed TOTP secret and a pending one during
//! setup, both sealed under the master key, and the last accepted time step.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};
use crate::domain::totp::Params;

#[derive(Debug, Clone, FromRow)]
pub struct TotpRow {
    pub user_id: Uuid,
    pub secret_enc: Option<Vec<u8>>,
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
    pub pending_secret_enc: Option<Vec<u8>>,
    pub pending_expires_at: Option<i64>,
    /// The confirmed authenticator's parameters (see [`crate::domain::totp::Params`]).
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    /// The authenticator's clock offset in steps, learned from accepted codes.
    pub drift: i64,
}

pub async fn find(conn: &mut Conn, user_id: Uuid) -> Result<Option<TotpRow>, sqlx::Error> {
    let sql = "SELECT user_id, secret_enc, confirmed_at, last_step, pending_secret_enc, pending_expires_at, \
               algorithm, digits, period, drift FROM totp_credentials WHERE user_id = $1";
    run!(conn, e => sqlx::query_as::<_, TotpRow>(sql).bind(user_id).fetch_optional(&mut *e).await)
}

/// Stores a new pending secret, replacing any unconfirmed one and leaving a confirmed
/// secret (kept while 2FA is switched off on the compatibility surface) untouched.
pub async fn put_pending(
    conn: &mut Conn,
    user_id: Uuid,
    pending_enc: &[u8],
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO totp_credentials (user_id, pending_secret_enc, pending_expires_at) VALUES ($1, $2, $3) \
               ON CONFLICT (user_id) DO UPDATE SET pending_secret_enc = excluded.pending_secret_enc, \
               pending_expires_at = excluded.pending_expires_at";
    run!(conn, e => sqlx::query(sql).bind(user_id).bind(pending_enc).bind(expires_at).execute(&mut *e).await.map(|_| ()))
}

/// Promotes the pending secret to the confirmed one, if it is still the same pending
/// secret and unexpired, recording `step` as used and `drift` as learned. An enrolment
/// always has the default parameters. Returns whether it happened.
pub async fn confirm_pending(
    conn: &mut Conn,
    user_id: Uuid,
    pending_enc: &[u8],
    step: i64,
    drift: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let defaults = Params::default();
    let sql = "UPDATE totp_credentials SET secret_enc = pending_secret_enc, confirmed_at = $4, last_step = $3, \
               pending_secret_enc = NULL, pending_expires_at = NULL, \
               algorithm = $5, digits = $6, period = $7, drift = $8 \
               WHERE user_id = $1 AND pending_secret_enc = $2 AND pending_expires_at > $4";
    run!(conn, e => sqlx::query(sql).bind(user_id).bind(pending_enc).bind(step).bind(now)
        .bind(defaults.algorithm.name()).bind(i64::from(defaults.digits)).bind(defaults.period).bind(drift)
        .execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// Stores an imported authenticator as the confirmed one, unless the account has a
/// confirmed authenticator already (a pending setup is replaced). `last_step` is the last
/// step used elsewhere (-1 for none). Returns whether it was stored.
pub async fn import(
    conn: &mut Conn,
    user_id: Uuid,
    secret_enc: &[u8],
    params: Params,
    last_step: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO totp_credentials (user_id, secret_enc, confirmed_at, last_step, algorithm, digits, period, drift) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, 0) \
               ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, confirmed_at = excluded.confirmed_at, \
               last_step = excluded.last_step, algorithm = excluded.algorithm, digits = excluded.digits, \
               period = excluded.period, drift = 0, pending_secret_enc = NULL, pending_expires_at = NULL \
               WHERE totp_credentials.secret_enc IS NULL";
    run!(conn, e => sqlx::query(sql).bind(user_id).bind(secret_enc).bind(now).bind(last_step)
        .bind(params.algorithm.name()).bind(i64::from(params.digits)).bind(params.period)
        .execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

/// Claims a time step and records the drift learned from it: succeeds only if the step is
/// later than every step accepted before, so a code (or an older one) can never be used
/// twice, even by concurrent requests.
pub async fn claim_step(
    conn: &mut Conn,
    user_id: Uuid,
    step: i64,
    drift: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE totp_credentials SET last_step = $2, drift = $3 \
               WHERE user_id = $1 AND last_step < $2 AND secret_enc IS NOT NULL";
    run!(conn, e => sqlx::query(sql).bind(user_id).bind(step).bind(drift).execute(&mut *e).await
        .map(|r| r.rows_affected() == 1))
}

pub async fn delete(conn: &mut Conn, user_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM totp_credentials WHERE user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).execute(&mut *e).await.map(|_| ()))
}

/// Forgets pending setups that were never confirmed in time.
pub async fn prune_expired_pending(conn: &mut Conn, now: i64) -> Result<u64, sqlx::Error> {
    let clear = "UPDATE totp_credentials SET pending_secret_enc = NULL, pending_expires_at = NULL \
                 WHERE pending_expires_at IS NOT NULL AND pending_expires_at <= $1";
    let drop_empty =
        "DELETE FROM totp_credentials WHERE secret_enc IS NULL AND pending_secret_enc IS NULL";
    run!(conn, e => {
        let cleared = sqlx::query(clear).bind(now).execute(&mut *e).await?.rows_affected();
        sqlx::query(drop_empty).execute(&mut *e).await?;
        Ok(cleared)
    })
}
