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
use crate::domain::totp::{self, Params, Totp};
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
    Passkey(super::passkeys::Used),
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::BackupCode => "backup_code",
            Method::Passkey(_) => "passkey",
        }
    }
}

/// What a second-factor check is given: a code, or a passkey's answer to the ceremony
/// bound to `binding` (the second step's `twoFactorToken` hash).
pub enum Proof<'a> {
    Code(&'a SecondFactorCode),
    Passkey {
        assertion: &'a super::passkeys::Assertion,
        binding: &'a [u8],
    },
}

impl Proof<'_> {
    fn method(&self) -> &'static str {
        match self {
            Proof::Code(code) => code.method(),
            Proof::Passkey { .. } => "passkey",
        }
    }
}

/// How a judged second-factor check ended. A refusal that judged nothing (the factor is
/// locked, TOTP is suspended) is an `Err` instead, with nothing to commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted(Method),
    /// A wrong code: counted, and possibly a lock or suspension, all in the caller's
    /// transaction, which must commit it before answering `InvalidCode`.
    Rejected,
}

/// Checks `code` for `user_id` inside the caller's write transaction: the whole rule for
/// one try. The attempt is counted as a failure as it begins, and in the same transaction
/// either reset (success) or turned into a lock or suspension (failure), so there is no
/// state between statements that a dropped request could leave behind: the transaction
/// commits whole or not at all.
pub async fn check_in(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    code: &SecondFactorCode,
    ctx: &RequestContext,
) -> Result<Verdict, AppError> {
    judge(state, tx, user_id, &Proof::Code(code), ctx, true).await
}

/// As [`check_in`], for the second step of a login: on success the counters are reset by
/// the sign-in that follows in the same transaction (`record_login` of a sign-in with a
/// second factor), so the account's row is written once instead of twice on the hottest
/// write path.
pub async fn check_for_sign_in(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    proof: &Proof<'_>,
    ctx: &RequestContext,
) -> Result<Verdict, AppError> {
    judge(state, tx, user_id, proof, ctx, false).await
}

async fn judge(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    proof: &Proof<'_>,
    ctx: &RequestContext,
    reset_on_success: bool,
) -> Result<Verdict, AppError> {
    let now = state.now();
    let config = &state.config;
    let Some(attempt) =
        db::users::begin_second_factor_attempt(tx, user_id, now, config.lockout_threshold).await?
    else {
        state.metrics.increment(
            "tessera_second_factor_checks_total",
            &[("method", "any"), ("outcome", "locked")],
        );
        let locked_until = db::users::second_factor_locked_until(tx, user_id).await?;
        return Err(AppError::SecondFactorLocked {
            retry_after_secs: (locked_until - now).max(1),
        });
    };
    let on = events::Occasion::new(user_id, now, Some(ctx));
    let accepted = match proof {
        Proof::Passkey { assertion, binding } => {
            super::passkeys::check_second_step(state, tx, user_id, binding, assertion, ctx)
                .await?
                .map(Method::Passkey)
        }
        Proof::Code(SecondFactorCode::Totp(digits)) => {
            if attempt.totp_suspended {
                state.metrics.increment(
                    "tessera_second_factor_checks_total",
                    &[("method", "totp"), ("outcome", "suspended")],
                );
                return Err(AppError::TotpSuspended);
            }
            check_totp(state, tx, on, &attempt, digits)
                .await?
                .then_some(Method::Totp)
        }
        Proof::Code(SecondFactorCode::Backup(normalized)) => {
            check_backup_code(state, tx, on, normalized)
                .await?
                .then_some(Method::BackupCode)
        }
    };
    if let Some(method) = accepted {
        state.metrics.increment(
            "tessera_second_factor_checks_total",
            &[("method", method.name()), ("outcome", "success")],
        );
        if reset_on_success {
            db::users::reset_second_factor_counters(tx, user_id).await?;
        }
        return Ok(Verdict::Accepted(method));
    }
    state.metrics.increment(
        "tessera_second_factor_checks_total",
        &[("method", proof.method()), ("outcome", "failure")],
    );
    record_failure(state, tx, on, &attempt, proof.method()).await?;
    Ok(Verdict::Rejected)
}

/// Checks a TOTP code against the authenticator the attempt's statement returned.
async fn check_totp(
    state: &AppState,
    tx: &mut Conn,
    on: events::Occasion<'_>,
    attempt: &db::users::SecondFactorAttempt,
    digits: &str,
) -> Result<bool, AppError> {
    let (user_id, now) = (on.user_id, on.now);
    let (Some(sealed), Some(algorithm), Some(digit_count), Some(period), Some(stored_drift)) = (
        attempt.totp_secret_enc.as_deref(),
        attempt.totp_algorithm.as_deref(),
        attempt.totp_digits,
        attempt.totp_period,
        attempt.totp_drift,
    ) else {
        return Ok(false);
    };
    let params = checked_params(algorithm, digit_count, period)?;
    let secret = crypto::open(&state.keys.master, &totp_aad(user_id), sealed)?;
    let totp = Totp::with_params(&secret, params);
    let max_drift = state.config.totp_max_drift_steps;
    let drift = stored_drift.clamp(-max_drift, max_drift);
    let Some(step) = totp.matching_step_around(digits, now, drift, state.config.totp_skew_steps)
    else {
        return Ok(false);
    };
    let learned = totp::learned_drift(step, totp.step_at(now), max_drift);
    // The step must be later than every step accepted before: one statement decides.
    if !db::totp::claim_step(tx, user_id, step, learned).await? {
        return Ok(false);
    }
    if learned != stored_drift {
        record_drift(state, tx, on, stored_drift, learned, "sign_in").await?;
    }
    Ok(true)
}

/// The parameters of a stored authenticator; a row holding values this version cannot use
/// is an internal error, not a wrong code.
pub fn stored_params(credential: &db::totp::TotpRow) -> Result<Params, AppError> {
    checked_params(&credential.algorithm, credential.digits, credential.period)
}

fn checked_params(algorithm: &str, digits: i64, period: i64) -> Result<Params, AppError> {
    Params::from_stored(algorithm, digits, period)
        .map_err(|e| AppError::internal(format!("stored TOTP parameters: {e}")))
}

/// Records that the authenticator's learned clock drift changed, and why (`sign_in`: an
/// accepted code was off the centre of the window; `resync`: an operator re-learned it).
pub async fn record_drift(
    state: &AppState,
    tx: &mut Conn,
    on: events::Occasion<'_>,
    previous: i64,
    drift: i64,
    reason: &str,
) -> Result<(), AppError> {
    let details =
        serde_json::json!({"previousSteps": previous, "driftSteps": drift, "reason": reason});
    on.record(state, tx, events::TOTP_DRIFT_CHANGED, details)
        .await
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
    tx: &mut Conn,
    on: events::Occasion<'_>,
    normalized: &str,
) -> Result<bool, AppError> {
    let user_id = on.user_id;
    let unused = db::backup_codes::unused(tx, user_id).await?;
    let matched = match_backup_code(
        &state.keys.pepper,
        normalized,
        unused.iter().map(|row| row.code_hash.as_slice()),
    );
    let Some(id) = matched.map(|index| unused[index].id) else {
        return Ok(false);
    };
    if !db::backup_codes::consume(tx, id, on.now).await? {
        return Ok(false);
    }
    state
        .metrics
        .increment("tessera_backup_codes_used_total", &[]);
    let remaining = serde_json::json!({"remaining": unused.len() - 1});
    on.record(state, tx, events::BACKUP_CODE_USED, remaining)
        .await?;
    Ok(true)
}

/// Records a failed check already counted by [`db::users::begin_second_factor_attempt`]:
/// the event, and the lock or suspension it may earn, in the same transaction.
async fn record_failure(
    state: &AppState,
    tx: &mut Conn,
    on: events::Occasion<'_>,
    attempt: &db::users::SecondFactorAttempt,
    method: &str,
) -> Result<(), AppError> {
    let (user_id, now) = (on.user_id, on.now);
    let config = &state.config;
    let failures = attempt.sf_failures;
    let failed = serde_json::json!({"method": method, "consecutiveFailures": failures});
    on.record(state, tx, events::SECOND_FACTOR_FAILED, failed)
        .await?;
    let lock = (attempt.sf_attempts >= config.lockout_threshold).then(|| {
        lock_duration(
            attempt.sf_lockouts,
            config.lockout_base_secs,
            config.lockout_max_secs,
        )
    });
    let suspend = failures == config.totp_suspend_threshold;
    db::users::apply_second_factor_limits(tx, user_id, lock.map(|d| now + d), suspend).await?;
    if let Some(duration) = lock {
        state
            .metrics
            .increment("tessera_second_factor_lockouts_total", &[]);
        let locked = serde_json::json!({"lockedForSeconds": duration});
        on.record(state, tx, events::SECOND_FACTOR_LOCKED, locked)
            .await?;
    }
    if suspend {
        let suspended = serde_json::json!({"consecutiveFailures": failures});
        on.record(state, tx, events::TOTP_SUSPENDED, suspended)
            .await?;
    }
    Ok(())
}

/// Whether the principal proved a second factor (a code, or a passkey with user
/// verification) recently enough for a sensitive change.
pub fn is_fresh(state: &AppState, amr: &[String], auth_time: i64) -> bool {
    amr.iter().any(|m| m == crate::tokens::amr::MFA)
        && state.now() - auth_time <= state.config.fresh_second_factor_secs
}

/// A sensitive change needs a fresh second factor: from the token, or a `code` checked
/// now in the change's own transaction `tx`. Hands `tx` back when the change may go
/// ahead; a wrong code is a judged failure, committed here: see [`Gate::pass`].
pub async fn require_fresh(
    state: &AppState,
    mut tx: Conn,
    principal: &super::Principal,
    code: Option<&SecondFactorCode>,
    ctx: &RequestContext,
) -> Result<Conn, AppError> {
    let gate = match code {
        Some(code) => match check_in(state, &mut tx, principal.user_id, code, ctx).await? {
            Verdict::Accepted(_) => Gate::Open,
            Verdict::Rejected => Gate::WrongCode,
        },
        None if is_fresh(state, &principal.amr, principal.auth_time) => Gate::Open,
        None => return Err(AppError::ReauthenticationRequired),
    };
    gate.pass(tx).await
}

/// Whether a sensitive change may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
enum Gate {
    Open,
    /// The code in the request was wrong: the failure was counted in the change's
    /// transaction, which is committed; no change is made.
    WrongCode,
}

impl Gate {
    /// Lets the change go ahead in `tx`, or, for a wrong code, commits `tx` (so the counted
    /// failure and any lockout it caused are kept) and refuses with `InvalidCode`. One
    /// place for this rule, so no use case can forget the commit and roll the count back.
    async fn pass(self, tx: Conn) -> Result<Conn, AppError> {
        match self {
            Gate::Open => Ok(tx),
            Gate::WrongCode => super::commit_refusal(tx, AppError::InvalidCode).await,
        }
    }
}

/// The gate of a sensitive change to the second factor itself (new backup codes, a new
/// trusted device) in the change's transaction: 2FA must be on, and the second factor
/// fresh (see [`require_fresh`]).
pub async fn require_enabled_and_fresh(
    state: &AppState,
    mut tx: Conn,
    principal: &super::Principal,
    code: Option<&SecondFactorCode>,
    ctx: &RequestContext,
) -> Result<Conn, AppError> {
    if !db::users::two_factor_enabled(&mut tx, principal.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?
    {
        return Err(AppError::TwoFactorNotEnabled);
    }
    require_fresh(state, tx, principal, code, ctx).await
}
