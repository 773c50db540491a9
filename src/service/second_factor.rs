//! Checking a second factor (TOTP or backup code) for an account, with every rule of the
//! contract: attempts reserved before the check so concurrent guesses cannot exceed the
//! lockout threshold, a lock that doubles on repeat, TOTP suspension after a long run of
//! failures, a time step accepted once, a backup code used once.

use uuid::Uuid;

use super::{RequestContext, events};
use crate::crypto;
use crate::db::{self, Conn};
use crate::domain::lockout::lock_duration;
use crate::domain::second_factor::SecondFactorCode;
use crate::domain::totp::Totp;
use crate::error::AppError;
use crate::state::AppState;

/// The AAD binding a sealed TOTP secret to its owner's row.
pub fn totp_aad(user_id: Uuid) -> String {
    format!("tessera:totp-secret:{user_id}")
}

/// The purpose label for backup-code hashes.
pub const BACKUP_CODE_PURPOSE: &str = "backup-code";

/// Which factor succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    BackupCode,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::BackupCode => "backup_code",
        }
    }
}

/// Reserves an attempt for `user_id`, or says how long the second factor stays locked.
pub async fn reserve_attempt(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
) -> Result<(), AppError> {
    let now = state.now();
    let reserved = db::users::reserve_second_factor_attempt(
        conn,
        user_id,
        now,
        state.config.lockout_threshold,
    )
    .await?;
    if reserved {
        return Ok(());
    }
    state.metrics.increment(
        "tessera_second_factor_checks_total",
        &[("method", "any"), ("outcome", "locked")],
    );
    let locked_until = db::users::find_by_id(conn, user_id)
        .await?
        .map(|u| u.sf_locked_until)
        .unwrap_or(0);
    // A lock being applied right now by a concurrent failure: ask to come back shortly.
    let retry_after_secs = (locked_until - now).max(1);
    Err(AppError::SecondFactorLocked { retry_after_secs })
}

/// Checks `code` for a user who has an attempt reserved. On success the counters start
/// over; on failure the failure is counted and may lock or suspend.
pub async fn check_reserved(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    code: &SecondFactorCode,
    ctx: &RequestContext,
) -> Result<Method, AppError> {
    let now = state.now();
    let user = db::users::find_by_id(conn, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let outcome = match code {
        SecondFactorCode::Totp(digits) => {
            if user.totp_suspended {
                state.metrics.increment(
                    "tessera_second_factor_checks_total",
                    &[("method", "totp"), ("outcome", "suspended")],
                );
                db::users::release_second_factor_attempt(conn, user_id).await?;
                return Err(AppError::TotpSuspended);
            }
            check_totp(state, conn, user_id, digits, now).await?
        }
        SecondFactorCode::Backup(normalized) => {
            check_backup_code(state, conn, user_id, normalized, now).await?
        }
    };
    match outcome {
        Some(method) => {
            state.metrics.increment(
                "tessera_second_factor_checks_total",
                &[("method", method.name()), ("outcome", "success")],
            );
            db::users::reset_second_factor_counters(conn, user_id).await?;
            if method == Method::BackupCode {
                state
                    .metrics
                    .increment("tessera_backup_codes_used_total", &[]);
                let (total, used) = db::backup_codes::counts(conn, user_id).await?;
                events::record(
                    conn,
                    now,
                    user_id,
                    events::BACKUP_CODE_USED,
                    Some(ctx),
                    serde_json::json!({"remaining": total - used}),
                )
                .await?;
            }
            Ok(method)
        }
        None => {
            state.metrics.increment(
                "tessera_second_factor_checks_total",
                &[("method", code.method()), ("outcome", "failure")],
            );
            record_failure(state, conn, user_id, code.method(), ctx).await?;
            Err(AppError::InvalidCode)
        }
    }
}

/// Reserves an attempt and checks the code: the whole rule for one second-factor try.
pub async fn check(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    code: &SecondFactorCode,
    ctx: &RequestContext,
) -> Result<Method, AppError> {
    reserve_attempt(state, conn, user_id).await?;
    check_reserved(state, conn, user_id, code, ctx).await
}

async fn check_totp(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    digits: &str,
    now: i64,
) -> Result<Option<Method>, AppError> {
    let Some(row) = db::totp::find(conn, user_id).await? else {
        return Ok(None);
    };
    let Some(sealed) = row.secret_enc else {
        return Ok(None);
    };
    let secret = crypto::open(&state.keys.master, &totp_aad(user_id), &sealed)?;
    let Some(step) =
        Totp::standard(&secret).matching_step(digits, now, state.config.totp_skew_steps)
    else {
        return Ok(None);
    };
    // The step must be later than every step accepted before: one statement decides.
    let claimed = db::totp::claim_step(conn, user_id, step).await?;
    Ok(claimed.then_some(Method::Totp))
}

/// Which of the `stored` backup-code hashes (if any) is the hash of the `normalized` code.
/// The presented code is hashed once under the pepper and compared with every stored
/// hash in constant time, so timing tells nothing about which one (if any) matched. Pure,
/// so the micro-benchmarks time exactly what a check costs.
pub fn match_backup_code<'a>(
    pepper: &crate::keys::SymmetricKey,
    normalized: &str,
    stored: impl IntoIterator<Item = &'a [u8]>,
) -> Option<usize> {
    let presented = crypto::keyed_hash(pepper, BACKUP_CODE_PURPOSE, normalized.as_bytes());
    let mut matched = None;
    for (index, hash) in stored.into_iter().enumerate() {
        if crypto::constant_time_eq(hash, &presented) && matched.is_none() {
            matched = Some(index);
        }
    }
    matched
}

async fn check_backup_code(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    normalized: &str,
    now: i64,
) -> Result<Option<Method>, AppError> {
    let unused = db::backup_codes::unused(conn, user_id).await?;
    let matched = match_backup_code(
        &state.keys.pepper,
        normalized,
        unused.iter().map(|row| row.code_hash.as_slice()),
    );
    let Some(id) = matched.map(|index| unused[index].id) else {
        return Ok(None);
    };
    let consumed = db::backup_codes::consume(conn, id, now).await?;
    Ok(consumed.then_some(Method::BackupCode))
}

async fn record_failure(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    method: &str,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let now = state.now();
    let config = &state.config;
    let (failures, attempts, lockouts) =
        db::users::count_second_factor_failure(conn, user_id).await?;
    events::record(
        conn,
        now,
        user_id,
        events::SECOND_FACTOR_FAILED,
        Some(ctx),
        serde_json::json!({"method": method, "consecutiveFailures": failures}),
    )
    .await?;
    if attempts >= config.lockout_threshold {
        let duration = lock_duration(lockouts, config.lockout_base_secs, config.lockout_max_secs);
        if db::users::lock_second_factor(conn, user_id, now + duration, config.lockout_threshold)
            .await?
        {
            state
                .metrics
                .increment("tessera_second_factor_lockouts_total", &[]);
            events::record(
                conn,
                now,
                user_id,
                events::SECOND_FACTOR_LOCKED,
                Some(ctx),
                serde_json::json!({"lockedForSeconds": duration}),
            )
            .await?;
        }
    }
    if failures == config.totp_suspend_threshold {
        db::users::suspend_totp(conn, user_id).await?;
        events::record(
            conn,
            now,
            user_id,
            events::TOTP_SUSPENDED,
            Some(ctx),
            serde_json::json!({"consecutiveFailures": failures}),
        )
        .await?;
    }
    Ok(())
}

/// Whether the principal proved a second factor recently enough for a sensitive change.
pub fn is_fresh(state: &AppState, amr: &[String], auth_time: i64) -> bool {
    amr.iter().any(|m| m == crate::tokens::amr::OTP)
        && state.now() - auth_time <= state.config.fresh_second_factor_secs
}

/// A sensitive change needs a fresh second factor: from the token, or a `code` now.
pub async fn require_fresh(
    state: &AppState,
    conn: &mut Conn,
    principal: &super::Principal,
    code: Option<&SecondFactorCode>,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    match code {
        Some(code) => check(state, conn, principal.user_id, code, ctx)
            .await
            .map(|_| ()),
        None if is_fresh(state, &principal.amr, principal.auth_time) => Ok(()),
        None => Err(AppError::ReauthenticationRequired),
    }
}

/// The gate of a sensitive change to the second factor itself (new backup codes, a new
/// trusted device): 2FA must be on, and the second factor fresh. Returns the account.
pub async fn require_enabled_and_fresh(
    state: &AppState,
    principal: &super::Principal,
    code: Option<&SecondFactorCode>,
    ctx: &RequestContext,
) -> Result<db::users::UserRow, AppError> {
    let mut conn = state.db.conn().await?;
    let user = db::users::find_by_id(&mut conn, principal.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !user.two_factor_enabled {
        return Err(AppError::TwoFactorNotEnabled);
    }
    require_fresh(state, &mut conn, principal, code, ctx).await?;
    Ok(user)
}
