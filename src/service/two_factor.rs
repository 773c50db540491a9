//! TOTP two-factor authentication: enrolment, the second step of login, backup codes,
//! turning it off, and the compatibility surface's on/off switch.

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::accounts::Account;
use super::devices::{DeviceInput, TrustedDevice};
use super::second_factor::{self, BACKUP_CODE_PURPOSE, Verdict, totp_aad};
use super::sessions::{self, IssuedTokens};
use super::{Principal, RequestContext, accounts, events};
use crate::crypto;
use crate::db::{self, Conn, users::UserRow};
use crate::domain::backup_code;
use crate::domain::second_factor::SecondFactorCode;
use crate::domain::totp::{self, Totp};
use crate::domain::validate;
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::amr;

/// Where an account's second factor stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    /// Unix seconds.
    pub enabled_at: Option<i64>,
    /// An unconfirmed setup is waiting for its confirmation.
    pub setup_pending: bool,
    pub backup_codes_remaining: i64,
    /// How many trusted devices are live.
    pub trusted_devices: i64,
    /// A TOTP authenticator is confirmed.
    pub totp: bool,
    /// How many passkeys can be used.
    pub passkeys: i64,
}

impl TwoFactorStatus {
    /// The second factors a sign-in can use now: `totp`, `passkey`, `backup_code`.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.enabled && self.totp {
            methods.push("totp");
        }
        if self.enabled && self.passkeys > 0 {
            methods.push("passkey");
        }
        if self.enabled && self.backup_codes_remaining > 0 {
            methods.push("backup_code");
        }
        methods
    }
}

/// The caller's two-factor status. The session check is folded into the same query
/// (the principal comes from [`sessions::verify_token`]), so the hottest signed-in route
/// costs one round trip; a revoked session is still refused at once.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn status(state: &AppState, principal: &Principal) -> Result<TwoFactorStatus, AppError> {
    status_of(state, principal.user_id, Some(principal.session_id)).await
}

/// The status of any account, for the operator (no session to check).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn status_for_admin(
    state: &AppState,
    user_id: Uuid,
) -> Result<TwoFactorStatus, AppError> {
    status_of(state, user_id, None).await
}

async fn status_of(
    state: &AppState,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> Result<TwoFactorStatus, AppError> {
    let now = state.now();
    let mut conn = state.db.read().await?;
    let summary = db::users::two_factor_summary(&mut conn, user_id, session_id, now)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    Ok(TwoFactorStatus {
        enabled: summary.two_factor_enabled,
        enabled_at: summary.two_factor_enabled_at,
        setup_pending: summary.setup_pending == 1,
        // The same count `backup-codes` reports: codes kept while 2FA is switched off on
        // the compatibility surface still count, and work again once it is back on.
        backup_codes_remaining: summary.backup_codes_unused,
        trusted_devices: summary.trusted_devices,
        totp: summary.totp_confirmed == 1,
        passkeys: summary.passkeys,
    })
}

/// Enrolment needs a recent authentication: an access token issued by a sign-in at most
/// `fresh_second_factor_secs` ago, or the account's password now. Otherwise a stolen
/// access token could enrol the thief's authenticator and lock the owner out.
pub(super) async fn require_recent_authentication(
    state: &AppState,
    principal: &Principal,
    user: &UserRow,
    password: Option<&SecretString>,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    match password {
        Some(password) => accounts::confirm_password(state, user, password, ctx).await,
        None if state.now() - principal.auth_time <= state.config.fresh_second_factor_secs => {
            Ok(())
        }
        None => Err(AppError::ReauthenticationRequired),
    }
}

/// A new pending authenticator secret, to scan or type into an authenticator app.
pub struct Setup {
    /// The shared secret, base32 without padding.
    pub secret: String,
    pub otpauth_url: String,
    /// A PNG of `otpauth_url` as a data URI.
    pub qr_code: String,
    pub issuer: String,
    pub account_name: String,
    pub algorithm: &'static str,
    pub digits: u32,
    /// Seconds per code.
    pub period: i64,
    /// When the unconfirmed setup lapses, unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("account_name", &self.account_name)
            .finish_non_exhaustive()
    }
}

/// The common start of both setup steps: the account, which must not have an
/// authenticator app yet, and a recent authentication (see
/// [`require_recent_authentication`]). An account whose 2FA is on through passkeys only
/// may add one next to them: a sensitive change, so its sign-in's second factor must be
/// fresh instead (a passkey sign-in within `fresh_second_factor_secs`).
async fn enrolling_user(
    state: &AppState,
    principal: &Principal,
    password: Option<&SecretString>,
    ctx: &RequestContext,
) -> Result<UserRow, AppError> {
    let user = accounts::reload_row(state, principal.user_id).await?;
    if !user.two_factor_enabled {
        require_recent_authentication(state, principal, &user, password, ctx).await?;
        return Ok(user);
    }
    let has_authenticator = {
        let mut conn = state.db.read().await?;
        db::totp::find(&mut conn, user.id)
            .await?
            .is_some_and(|t| t.secret_enc.is_some())
    };
    if has_authenticator {
        return Err(AppError::TwoFactorAlreadyEnabled);
    }
    // No code is taken here, so freshness is the sign-in's alone: a pure check, no
    // transaction (which would hold SQLite's one writer for nothing).
    if !super::second_factor::is_fresh(state, &principal.amr, principal.auth_time) {
        return Err(AppError::ReauthenticationRequired);
    }
    Ok(user)
}

/// Makes a new pending secret (replacing an unconfirmed one) and its QR code. Needs a
/// recent authentication (see [`require_recent_authentication`]).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn setup(
    state: &AppState,
    principal: Principal,
    password: Option<SecretString>,
    ctx: RequestContext,
) -> Result<Setup, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let user = enrolling_user(state, &principal, password.as_ref(), &ctx).await?;
        new_pending_setup(state, user, now).await
    })
    .await
}

/// Makes and stores a new pending secret for `user`, and its QR code.
async fn new_pending_setup(state: &AppState, user: UserRow, now: i64) -> Result<Setup, AppError> {
    let secret = totp::generate_secret();
    let sealed = crypto::seal(&state.keys.master, &totp_aad(user.id), &secret)?;
    let expires_at = now + state.config.totp_setup_ttl_secs;
    let mut tx = state.db.begin().await?;
    db::totp::put_pending(&mut tx, user.id, &sealed, expires_at).await?;
    tx.commit().await?;
    let secret_b32 = totp::base32(&secret);
    let issuer = state.config.issuer.clone();
    let otpauth_url = totp::otpauth_url(&issuer, &user.email, &secret_b32);
    let qr_code = crate::domain::qr::png_data_uri(&otpauth_url)?;
    Ok(Setup {
        secret: secret_b32,
        otpauth_url,
        qr_code,
        issuer,
        account_name: user.email,
        algorithm: totp::Algorithm::Sha1.name(),
        digits: totp::DIGITS,
        period: totp::PERIOD,
        expires_at,
    })
}

/// The account an enrolment token (from a login that answered `requiresEnrollment`)
/// names, while the token is live (its wrong codes at `verify-setup` count against every
/// use of it) and the account still has no second factor.
pub(super) async fn enrolment_user(state: &AppState, token: &str) -> Result<UserRow, AppError> {
    let now = state.now();
    let mut conn = state.db.read().await?;
    let challenge = db::challenges::find_live(
        &mut conn,
        &crypto::token_hash(token),
        db::challenges::ENROLMENT,
        now,
        state.config.two_factor_token_max_failures,
    )
    .await?
    .ok_or(AppError::Unauthenticated)?;
    let user = db::users::find_by_id(&mut conn, challenge.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if user.disabled_at.is_some() {
        return Err(AppError::AccountDisabled);
    }
    if user.two_factor_enabled {
        return Err(AppError::TwoFactorAlreadyEnabled);
    }
    Ok(user)
}

/// `setup` for a login that must enrol first: the enrolment token stands for the
/// recent authentication (its password was checked moments ago).
#[tracing::instrument(skip_all)]
pub async fn setup_by_enrolment(state: &AppState, token: String) -> Result<Setup, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let user = enrolment_user(state, &token).await?;
        new_pending_setup(state, user, state.now()).await
    })
    .await
}

/// Enrolment completed by a login that had to enrol: 2FA is on, and the account signed in.
pub struct EnrolledSignIn {
    pub backup_codes: Vec<String>,
    pub tokens: IssuedTokens,
    pub user: Account,
}

/// `verify-setup` for a login that must enrol first: confirms the pending secret, turns
/// 2FA on, spends the enrolment token and signs in (with `otp` in `amr`, as a code was
/// just checked), all in one transaction that runs to its end. A wrong code is counted
/// against the token, which dies after `two_factor_token_max_failures` of them.
#[tracing::instrument(skip_all)]
pub async fn verify_setup_by_enrolment(
    state: &AppState,
    token: String,
    code: String,
    ctx: RequestContext,
) -> Result<EnrolledSignIn, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let hash = crypto::token_hash(&token);
        let (codes, hashes) = new_backup_codes(state);
        let mut tx = state.db.begin().await?;
        let user_id = db::challenges::reserve_attempt(
            &mut tx,
            &hash,
            db::challenges::ENROLMENT,
            now,
            state.config.two_factor_token_max_failures,
        )
        .await?
        .ok_or(AppError::Unauthenticated)?
        .user_id;
        if !confirm_pending_setup(state, &mut tx, user_id, &code, now).await? {
            // The token's attempt stays taken.
            return super::commit_refusal(tx, AppError::InvalidCode).await;
        }
        if !db::users::enable_two_factor(&mut tx, user_id, now).await? {
            return Err(AppError::TwoFactorAlreadyEnabled);
        }
        db::backup_codes::replace_all(&mut tx, user_id, &hashes, now).await?;
        let on = events::Occasion::new(user_id, now, Some(&ctx));
        record_enabled(state, &mut tx, on, "totp").await?;
        if !db::challenges::consume(&mut tx, &hash, now).await? {
            return Err(AppError::Unauthenticated);
        }
        let (tokens, user) = sign_in_enrolled(state, tx, user_id, amr::OTP, "totp", &ctx).await?;
        Ok(EnrolledSignIn {
            backup_codes: codes,
            tokens,
            user,
        })
    })
    .await
}

/// Signs in a login that had to enrol, in the enrolment's transaction `tx` (committed
/// here), once its first second factor is on: `amr` names the password, the factor
/// (`factor_amr`) and `mfa`, as the factor was just proven; the event names the
/// `second_factor` enrolled.
pub(super) async fn sign_in_enrolled(
    state: &AppState,
    mut tx: Conn,
    user_id: Uuid,
    factor_amr: &str,
    second_factor: &str,
    ctx: &RequestContext,
) -> Result<(IssuedTokens, Account), AppError> {
    let amr = vec![amr::PASSWORD.into(), factor_amr.into(), amr::MFA.into()];
    let details = json!({"method": "enrolment", "secondFactor": second_factor});
    let signed_in =
        accounts::sign_in_in(state, &mut tx, user_id, amr, details, None, None, ctx).await?;
    tx.commit().await?;
    signed_in.issue(state)
}

/// Confirms the account's live pending secret with `code` from it, in the caller's
/// transaction, keeping the drift the code shows; false when the code is wrong (what that
/// costs is the caller's to say). `NoPendingSetup` when there is no live pending secret,
/// or it was replaced or confirmed meanwhile.
async fn confirm_pending_setup(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    code: &str,
    now: i64,
) -> Result<bool, AppError> {
    let pending = db::totp::find(tx, user_id)
        .await?
        .and_then(|t| {
            t.pending_secret_enc
                .filter(|_| t.pending_expires_at.is_some_and(|at| at > now))
        })
        .ok_or(AppError::NoPendingSetup)?;
    let secret = crypto::open(&state.keys.master, &totp_aad(user_id), &pending)?;
    let totp = Totp::standard(&secret);
    let Some(step) = totp.matching_step(code, now, state.config.totp_skew_steps) else {
        return Ok(false);
    };
    let drift = totp::learned_drift(step, totp.step_at(now), state.config.totp_max_drift_steps);
    if !db::totp::confirm_pending(tx, user_id, &pending, step, drift, now).await? {
        return Err(AppError::NoPendingSetup);
    }
    Ok(true)
}

/// Fresh backup codes: the display forms (shown once) and their keyed hashes (stored).
pub(super) fn new_backup_codes(state: &AppState) -> (Vec<String>, Vec<Vec<u8>>) {
    let codes: Vec<String> = (0..backup_code::COUNT)
        .map(|_| backup_code::generate())
        .collect();
    let hashes = codes
        .iter()
        .map(|c| {
            let normalized = backup_code::normalize(c).expect("generated codes are valid");
            crypto::keyed_hash(
                &state.keys.pepper,
                BACKUP_CODE_PURPOSE,
                normalized.as_bytes(),
            )
        })
        .collect();
    (codes, hashes)
}

/// The event of 2FA turning on with `method` (`totp`: a first setup, or a confirmed
/// authenticator turned back on; `passkey`: a first passkey).
pub(super) async fn record_enabled(
    state: &AppState,
    tx: &mut Conn,
    on: events::Occasion<'_>,
    method: &str,
) -> Result<(), AppError> {
    let details = json!({"method": method});
    on.record(state, tx, events::TWO_FACTOR_ENABLED, details)
        .await
}

/// Confirms the pending secret with a code from it, turns 2FA on and returns the backup
/// codes: the only time they are ever shown. Needs a recent authentication; the
/// confirmation is one transaction that runs to its end.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn verify_setup(
    state: &AppState,
    principal: Principal,
    code: String,
    password: Option<SecretString>,
    ctx: RequestContext,
) -> Result<Vec<String>, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let user = enrolling_user(state, &principal, password.as_ref(), &ctx).await?;
        let (codes, hashes) = new_backup_codes(state);
        let mut tx = state.db.begin().await?;
        if !confirm_pending_setup(state, &mut tx, user.id, &code, now).await? {
            return Err(AppError::InvalidCode);
        }
        let on = events::Occasion::new(user.id, now, Some(&ctx));
        if user.two_factor_enabled {
            // Added next to passkeys: 2FA stays on, and the backup codes the account has
            // stay valid (none are shown).
            record_enabled(state, &mut tx, on, "totp").await?;
            tx.commit().await?;
            return Ok(Vec::new());
        }
        if !db::users::enable_two_factor(&mut tx, user.id, now).await? {
            // Turned on by a concurrent confirmation that committed first.
            return Err(AppError::TwoFactorAlreadyEnabled);
        }
        db::backup_codes::replace_all(&mut tx, user.id, &hashes, now).await?;
        record_enabled(state, &mut tx, on, "totp").await?;
        tx.commit().await?;
        Ok(codes)
    })
    .await
}

pub struct VerifiedLogin {
    pub tokens: IssuedTokens,
    pub user: Account,
    pub device: Option<(TrustedDevice, String)>,
}

/// What the second step of a login is answered with.
pub enum SecondStep {
    Code(SecondFactorCode),
    Passkey(Box<super::passkeys::Assertion>),
}

/// The second step of login: the `twoFactorToken` from the password step and a code.
/// One transaction takes one of the token's attempts, checks the code against the
/// account's counters and, on success, spends the token and signs in; it runs to its
/// end even if the request is dropped.
#[tracing::instrument(skip_all)]
pub async fn verify_login(
    state: &AppState,
    challenge_token: String,
    code: SecondFactorCode,
    trust_device: Option<DeviceInput>,
    ctx: RequestContext,
) -> Result<VerifiedLogin, AppError> {
    verify_second_step(
        state,
        challenge_token,
        SecondStep::Code(code),
        trust_device,
        ctx,
    )
    .await
}

/// As [`verify_login`], with a code or a passkey's answer: the same token, attempts,
/// lockout, trusted-device and event rules for both.
#[tracing::instrument(skip_all)]
pub async fn verify_second_step(
    state: &AppState,
    challenge_token: String,
    step: SecondStep,
    trust_device: Option<DeviceInput>,
    ctx: RequestContext,
) -> Result<VerifiedLogin, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        verify_login_unit(state, &challenge_token, &step, trust_device.as_ref(), &ctx).await
    })
    .await
}

async fn verify_login_unit(
    state: &AppState,
    challenge_token: &str,
    step: &SecondStep,
    trust_device: Option<&DeviceInput>,
    ctx: &RequestContext,
) -> Result<VerifiedLogin, AppError> {
    let now = state.now();
    let max_failures = state.config.two_factor_token_max_failures;
    let hash = crypto::token_hash(challenge_token);
    let mut tx = state.db.begin().await?;
    let purpose = db::challenges::SECOND_FACTOR;
    let challenge = db::challenges::reserve_attempt(&mut tx, &hash, purpose, now, max_failures)
        .await?
        .ok_or(AppError::InvalidTwoFactorToken)?;
    let user_id = challenge.user_id;
    let proof = match step {
        SecondStep::Code(code) => second_factor::Proof::Code(code),
        SecondStep::Passkey(assertion) => second_factor::Proof::Passkey {
            assertion,
            binding: &hash,
        },
    };
    // A refusal that judged nothing (locked, suspended, no such passkey ceremony) rolls
    // back, giving the token's attempt back; a wrong answer commits it as the token's
    // failure and the account's.
    let method =
        match second_factor::check_for_sign_in(state, &mut tx, user_id, &proof, ctx).await? {
            Verdict::Accepted(method) => method,
            Verdict::Rejected => {
                tx.commit().await?;
                return Err(match step {
                    SecondStep::Code(_) => AppError::InvalidCode,
                    SecondStep::Passkey(_) => AppError::InvalidPasskey,
                });
            }
        };
    if !db::challenges::consume(&mut tx, &hash, now).await? {
        return Err(AppError::InvalidTwoFactorToken);
    }
    let details = json!({"method": "second_factor", "secondFactor": method.name()});
    let amr = match method {
        second_factor::Method::Passkey(used) => {
            vec![amr::PASSWORD.into(), used.key_amr().into(), amr::MFA.into()]
        }
        _ => vec![amr::PASSWORD.into(), amr::OTP.into(), amr::MFA.into()],
    };
    let mut signed_in = accounts::sign_in_in(
        state,
        &mut tx,
        user_id,
        amr,
        details,
        trust_device,
        None,
        ctx,
    )
    .await?;
    tx.commit().await?;
    let device = signed_in.device.take();
    let (tokens, user) = signed_in.issue(state)?;
    Ok(VerifiedLogin {
        tokens,
        user,
        device,
    })
}

/// Turns 2FA off and deletes the secret, the backup codes and the trusted devices; every
/// other session is revoked. Needs the password and a fresh second factor.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn disable(
    state: &AppState,
    principal: Principal,
    password: SecretString,
    code: Option<SecondFactorCode>,
    ctx: RequestContext,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let user = accounts::reload_row(state, principal.user_id).await?;
        if !user.two_factor_enabled {
            return Err(AppError::TwoFactorNotEnabled);
        }
        accounts::confirm_password(state, &user, &password, &ctx).await?;
        let now = state.now();
        let tx = state.db.begin().await?;
        let mut tx =
            second_factor::require_fresh(state, tx, &principal, code.as_ref(), &ctx).await?;
        delete_second_factors(&mut tx, user.id).await?;
        let on = events::Occasion::new(principal.user_id, now, Some(&ctx));
        turned_off(state, &mut tx, on, principal.session_id, json!({})).await?;
        tx.commit().await
    })
    .await
}

/// Deletes the secret, the passkeys (with their pending ceremonies) and the backup codes,
/// and marks 2FA off: what turning 2FA off, an admin reset and removing the last passkey
/// share. The caller ends what was granted under them.
pub(super) async fn delete_second_factors(tx: &mut Conn, user_id: Uuid) -> Result<(), AppError> {
    db::totp::delete(tx, user_id).await?;
    db::passkeys::delete_all(tx, user_id).await?;
    db::ceremonies::delete_for_user(tx, user_id).await?;
    db::backup_codes::delete_all(tx, user_id).await?;
    db::users::disable_two_factor(tx, user_id).await?;
    Ok(())
}

/// The owner turned 2FA off (by `POST /2fa/disable`, the compatibility switch, or removing
/// the last passkey): everything granted under it ends (trusted devices, pending second
/// steps, every session but the caller's) and `two_factor_disabled` is recorded, with
/// `details` saying how.
///
/// `on` is the owner's own change: `keep` is the session that made it.
pub(super) async fn turned_off(
    state: &AppState,
    tx: &mut Conn,
    on: events::Occasion<'_>,
    keep: Uuid,
    details: serde_json::Value,
) -> Result<(), AppError> {
    sessions::revoke_granted(state, tx, on, Some(keep), "two_factor_disabled").await?;
    on.record(state, tx, events::TWO_FACTOR_DISABLED, details)
        .await
}

/// Operator reset (admin CLI and API): as `disable`, revoking every session. Who acted
/// goes into the `two_factor_reset` event. `NotFound` if there is no such account.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn admin_reset(
    state: &AppState,
    user_id: Uuid,
    actor: super::operator::Actor,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        super::operator::require_account(&mut tx, user_id).await?;
        delete_second_factors(&mut tx, user_id).await?;
        let on = actor.on(user_id, now);
        sessions::revoke_granted(state, &mut tx, on.occasion, None, "admin_reset").await?;
        on.record(state, &mut tx, events::TWO_FACTOR_RESET, json!({}))
            .await?;
        tx.commit().await
    })
    .await
}

/// Counts of the account's backup codes (never the codes themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCodesSummary {
    pub total: i64,
    pub remaining: i64,
    pub used: i64,
    /// Unix seconds.
    pub generated_at: Option<i64>,
}

#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn backup_codes_summary(
    state: &AppState,
    user_id: Uuid,
) -> Result<BackupCodesSummary, AppError> {
    let mut conn = state.db.read().await?;
    let user = db::users::find_by_id(&mut conn, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (total, used) = db::backup_codes::counts(&mut conn, user_id).await?;
    Ok(BackupCodesSummary {
        total,
        remaining: total - used,
        used,
        generated_at: user.backup_codes_generated_at,
    })
}

/// Replaces every backup code with 10 new ones (shown once). A sensitive change, decided
/// and made in one transaction.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn regenerate_backup_codes(
    state: &AppState,
    principal: Principal,
    code: Option<SecondFactorCode>,
    ctx: RequestContext,
) -> Result<(Vec<String>, i64), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let (codes, hashes) = new_backup_codes(state);
        let tx = state.db.begin().await?;
        let mut tx =
            second_factor::require_enabled_and_fresh(state, tx, &principal, code.as_ref(), &ctx)
                .await?;
        db::backup_codes::replace_all(&mut tx, principal.user_id, &hashes, now).await?;
        db::users::set_backup_codes_generated_at(&mut tx, principal.user_id, Some(now)).await?;
        events::Occasion::new(principal.user_id, now, Some(&ctx))
            .record(state, &mut tx, events::BACKUP_CODES_REGENERATED, json!({}))
            .await?;
        tx.commit().await?;
        Ok((codes, now))
    })
    .await
}

/// The compatibility surface's switch. The caller names its own account by `email` (any
/// other is `Forbidden`, before the password is checked) and confirms it with the
/// password. Off keeps the authenticator (and backup codes) so it can be switched on
/// again; it needs a fresh second factor and ends everything granted under 2FA (devices,
/// other sessions, pending second steps). On needs an authenticator confirmed before.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, enable = enable))]
pub async fn set_enabled(
    state: &AppState,
    principal: Principal,
    email: &str,
    password: SecretString,
    enable: bool,
    code: Option<SecondFactorCode>,
    ctx: RequestContext,
) -> Result<(), AppError> {
    let email_key = validate::email_key(email);
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let user = accounts::reload_row(state, principal.user_id).await?;
        if user.email != email_key {
            return Err(AppError::Forbidden);
        }
        accounts::confirm_password(state, &user, &password, &ctx).await?;
        let now = state.now();
        if enable {
            let mut tx = state.db.begin().await?;
            let confirmed = db::totp::find(&mut tx, user.id)
                .await?
                .is_some_and(|t| t.secret_enc.is_some());
            if !confirmed {
                return Err(AppError::NoAuthenticator);
            }
            if db::users::set_two_factor_enabled(&mut tx, user.id, true, now).await? {
                let on = events::Occasion::new(user.id, now, Some(&ctx));
                record_enabled(state, &mut tx, on, "totp").await?;
            }
            return tx.commit().await;
        }
        if !user.two_factor_enabled {
            return Ok(());
        }
        let tx = state.db.begin().await?;
        let mut tx =
            second_factor::require_fresh(state, tx, &principal, code.as_ref(), &ctx).await?;
        if !db::users::set_two_factor_enabled(&mut tx, user.id, false, now).await? {
            return Ok(());
        }
        let kept = json!({"authenticatorKept": true});
        let on = events::Occasion::new(principal.user_id, now, Some(&ctx));
        turned_off(state, &mut tx, on, principal.session_id, kept).await?;
        tx.commit().await
    })
    .await
}
