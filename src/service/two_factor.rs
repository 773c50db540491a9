//! TOTP two-factor authentication: enrolment, the second step of login, backup codes,
//! turning it off, and the compatibility surface's on/off switch.

use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use super::devices::{self, DeviceInput, TrustedDevice};
use super::second_factor::{self, BACKUP_CODE_PURPOSE, totp_aad};
use super::sessions::{self, IssuedTokens};
use super::{Principal, RequestContext, accounts, events};
use crate::clock::rfc3339;
use crate::crypto;
use crate::db::{self, Conn, users::UserRow};
use crate::domain::backup_code;
use crate::domain::second_factor::SecondFactorCode;
use crate::domain::totp::{self, Totp};
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::amr;

/// `TwoFactorStatus`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub enabled: bool,
    /// `totp` while two-factor authentication is on, else null.
    #[schema(value_type = Option<String>, required = true, pattern = "^totp$", example = "totp")]
    pub method: Option<&'static str>,
    #[schema(required = true, format = DateTime)]
    pub enabled_at: Option<String>,
    /// An unconfirmed setup is waiting for `verify-setup`.
    pub setup_pending: bool,
    #[schema(minimum = 0, example = 10)]
    pub backup_codes_remaining: i64,
    /// How many trusted devices are live.
    #[schema(minimum = 0, example = 1)]
    pub trusted_devices: i64,
}

pub async fn status(state: &AppState, user_id: Uuid) -> Result<Status, AppError> {
    let now = state.now();
    let mut conn = state.db.conn().await?;
    let summary = db::users::two_factor_summary(&mut conn, user_id, now)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let enabled = summary.two_factor_enabled;
    Ok(Status {
        enabled,
        method: enabled.then_some("totp"),
        enabled_at: summary.two_factor_enabled_at.map(rfc3339),
        setup_pending: summary.setup_pending == 1,
        backup_codes_remaining: if enabled {
            summary.backup_codes_unused
        } else {
            0
        },
        trusted_devices: summary.trusted_devices,
    })
}

/// A new pending authenticator secret, to scan or type into an authenticator app.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Setup {
    /// The shared secret, base32 without padding.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    #[schema(
        example = "otpauth://totp/Tessera:ann%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Tessera&algorithm=SHA1&digits=6&period=30"
    )]
    pub otpauth_url: String,
    /// A PNG of `otpauthUrl` as a data URI.
    #[schema(example = "data:image/png;base64,iVBORw0KGgo...")]
    pub qr_code: String,
    #[schema(example = "Tessera")]
    pub issuer: String,
    #[schema(example = "ann@example.com")]
    pub account_name: String,
    #[schema(value_type = String, example = "SHA1")]
    pub algorithm: &'static str,
    #[schema(example = 6)]
    pub digits: u32,
    /// Seconds per code.
    #[schema(example = 30)]
    pub period: i64,
    /// When the unconfirmed setup lapses.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("account_name", &self.account_name)
            .finish_non_exhaustive()
    }
}

/// Makes a new pending secret (replacing an unconfirmed one) and its QR code.
pub async fn setup(state: &AppState, principal: &Principal) -> Result<Setup, AppError> {
    let now = state.now();
    let mut conn = state.db.conn().await?;
    let user = db::users::find_by_id(&mut conn, principal.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if user.two_factor_enabled {
        return Err(AppError::TwoFactorAlreadyEnabled);
    }
    let secret = totp::generate_secret();
    let sealed = crypto::seal(&state.keys.master, &totp_aad(user.id), &secret)?;
    let expires_at = now + state.config.totp_setup_ttl_secs;
    db::totp::put_pending(&mut conn, user.id, &sealed, expires_at).await?;
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
        expires_at: rfc3339(expires_at),
    })
}

/// Fresh backup codes: the display forms (shown once) and their keyed hashes (stored).
fn new_backup_codes(state: &AppState) -> (Vec<String>, Vec<Vec<u8>>) {
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

/// Confirms the pending secret with a code from it, turns 2FA on and returns the backup
/// codes: the only time they are ever shown.
pub async fn verify_setup(
    state: &AppState,
    principal: &Principal,
    code: &str,
    ctx: &RequestContext,
) -> Result<Vec<String>, AppError> {
    let now = state.now();
    let mut conn = state.db.conn().await?;
    let user = db::users::find_by_id(&mut conn, principal.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if user.two_factor_enabled {
        return Err(AppError::TwoFactorAlreadyEnabled);
    }
    let pending = db::totp::find(&mut conn, user.id)
        .await?
        .and_then(|t| {
            t.pending_secret_enc
                .filter(|_| t.pending_expires_at.is_some_and(|at| at > now))
        })
        .ok_or(AppError::NoPendingSetup)?;
    let secret = crypto::open(&state.keys.master, &totp_aad(user.id), &pending)?;
    let Some(step) = Totp::standard(&secret).matching_step(code, now, state.config.totp_skew_steps)
    else {
        return Err(AppError::InvalidCode);
    };
    drop(conn);
    let (codes, hashes) = new_backup_codes(state);
    let mut tx = state.db.begin().await?;
    if !db::totp::confirm_pending(&mut tx, user.id, &pending, step, now).await? {
        // Replaced or expired between our read and this write.
        return Err(AppError::NoPendingSetup);
    }
    db::users::set_two_factor_enabled(&mut tx, user.id, true, now).await?;
    db::users::reset_second_factor_counters(&mut tx, user.id).await?;
    db::backup_codes::replace_all(&mut tx, user.id, &hashes, now).await?;
    db::users::set_backup_codes_generated_at(&mut tx, user.id, Some(now)).await?;
    events::record(
        &mut tx,
        now,
        user.id,
        events::TWO_FACTOR_ENABLED,
        Some(ctx),
        serde_json::json!({"method": "totp"}),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

pub struct VerifiedLogin {
    pub tokens: IssuedTokens,
    pub user: UserRow,
    pub device: Option<(TrustedDevice, String)>,
}

/// The second step of login: the `twoFactorToken` from the password step and a code.
pub async fn verify_login(
    state: &AppState,
    challenge_token: &str,
    code: &SecondFactorCode,
    trust_device: Option<&DeviceInput>,
    ctx: &RequestContext,
) -> Result<VerifiedLogin, AppError> {
    let now = state.now();
    let max_failures = state.config.two_factor_token_max_failures;
    let hash = crypto::token_hash(challenge_token);
    let mut conn = state.db.conn().await?;
    // One of the token's attempts, then one of the account's, both taken before the check
    // so that concurrent guesses cannot exceed either limit.
    let challenge = db::challenges::reserve_attempt(&mut conn, &hash, now, max_failures)
        .await?
        .ok_or(AppError::InvalidTwoFactorToken)?;
    let user_id = challenge.user_id;
    let checked = match second_factor::reserve_attempt(state, &mut conn, user_id).await {
        Ok(()) => second_factor::check_reserved(state, &mut conn, user_id, code, ctx).await,
        Err(locked) => Err(locked),
    };
    let method = match checked {
        Ok(method) => method,
        // A wrong code keeps the token's attempt spent: that is its failure.
        Err(AppError::InvalidCode) => return Err(AppError::InvalidCode),
        Err(other) => {
            db::challenges::release_attempt(&mut conn, &hash).await?;
            return Err(other);
        }
    };
    if !db::challenges::consume(&mut conn, &hash, now, max_failures).await? {
        return Err(AppError::InvalidTwoFactorToken);
    }
    drop(conn);
    let details = serde_json::json!({"method": "second_factor", "secondFactor": method.name()});
    let amr = vec![amr::PASSWORD.into(), amr::OTP.into(), amr::MFA.into()];
    let (tokens, device) =
        accounts::sign_in_trusting(state, user_id, amr, details, trust_device, ctx).await?;
    let user = accounts::reload(state, user_id).await?;
    Ok(VerifiedLogin {
        tokens,
        user,
        device,
    })
}

/// Turns 2FA off and deletes the secret, the backup codes and the trusted devices; every
/// other session is revoked. Needs the password and a fresh second factor.
pub async fn disable(
    state: &AppState,
    principal: &Principal,
    password: &SecretString,
    code: Option<&SecondFactorCode>,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let user = accounts::reload(state, principal.user_id).await?;
    if !user.two_factor_enabled {
        return Err(AppError::TwoFactorNotEnabled);
    }
    accounts::confirm_password(state, &user, password, ctx).await?;
    let mut conn = state.db.conn().await?;
    second_factor::require_fresh(state, &mut conn, principal, code, ctx).await?;
    drop(conn);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    remove_second_factor(
        &mut tx,
        now,
        user.id,
        Some(principal.session_id),
        "two_factor_disabled",
        ctx,
    )
    .await?;
    events::record(
        &mut tx,
        now,
        user.id,
        events::TWO_FACTOR_DISABLED,
        Some(ctx),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await
}

/// Deletes secret, codes, devices and pending second steps, and revokes sessions but
/// `keep`: what turning 2FA off and an admin reset share.
async fn remove_second_factor(
    conn: &mut Conn,
    now: i64,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    db::totp::delete(conn, user_id).await?;
    db::backup_codes::delete_all(conn, user_id).await?;
    db::challenges::delete_for_user(conn, user_id).await?;
    db::users::set_two_factor_enabled(conn, user_id, false, now).await?;
    db::users::set_backup_codes_generated_at(conn, user_id, None).await?;
    db::users::reset_second_factor_counters(conn, user_id).await?;
    devices::revoke_all(conn, now, user_id, reason, Some(ctx)).await?;
    sessions::revoke_others(conn, now, user_id, keep, reason, Some(ctx)).await?;
    Ok(())
}

/// Operator reset (admin CLI): as `disable`, revoking every session.
pub async fn admin_reset(state: &AppState, user_id: Uuid) -> Result<(), AppError> {
    let now = state.now();
    let ctx = RequestContext {
        ip: "admin".into(),
        user_agent: Some("tessera admin".into()),
    };
    let mut tx = state.db.begin().await?;
    remove_second_factor(&mut tx, now, user_id, None, "admin_reset", &ctx).await?;
    events::record(
        &mut tx,
        now,
        user_id,
        events::TWO_FACTOR_RESET,
        Some(&ctx),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await
}

/// Counts of the account's backup codes (never the codes themselves).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCodesSummary {
    #[schema(minimum = 0, example = 10)]
    pub total: i64,
    #[schema(minimum = 0, example = 9)]
    pub remaining: i64,
    #[schema(minimum = 0, example = 1)]
    pub used: i64,
    #[schema(required = true, format = DateTime)]
    pub generated_at: Option<String>,
}

pub async fn backup_codes_summary(
    state: &AppState,
    user_id: Uuid,
) -> Result<BackupCodesSummary, AppError> {
    let mut conn = state.db.conn().await?;
    let user = db::users::find_by_id(&mut conn, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (total, used) = db::backup_codes::counts(&mut conn, user_id).await?;
    Ok(BackupCodesSummary {
        total,
        remaining: total - used,
        used,
        generated_at: user.backup_codes_generated_at.map(rfc3339),
    })
}

/// Replaces every backup code with 10 new ones (shown once). A sensitive change.
pub async fn regenerate_backup_codes(
    state: &AppState,
    principal: &Principal,
    code: Option<&SecondFactorCode>,
    ctx: &RequestContext,
) -> Result<(Vec<String>, i64), AppError> {
    let user = second_factor::require_enabled_and_fresh(state, principal, code, ctx).await?;
    let now = state.now();
    let (codes, hashes) = new_backup_codes(state);
    let mut tx = state.db.begin().await?;
    db::backup_codes::replace_all(&mut tx, user.id, &hashes, now).await?;
    db::users::set_backup_codes_generated_at(&mut tx, user.id, Some(now)).await?;
    events::record(
        &mut tx,
        now,
        user.id,
        events::BACKUP_CODES_REGENERATED,
        Some(ctx),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok((codes, now))
}

/// The compatibility surface's switch. Off keeps the authenticator (and backup codes) so
/// it can be switched on again; it needs a fresh second factor and revokes devices and
/// other sessions. On needs an authenticator confirmed before.
pub async fn set_enabled(
    state: &AppState,
    principal: &Principal,
    password: &SecretString,
    enable: bool,
    code: Option<&SecondFactorCode>,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let user = accounts::reload(state, principal.user_id).await?;
    accounts::confirm_password(state, &user, password, ctx).await?;
    let now = state.now();
    let mut conn = state.db.conn().await?;
    if enable {
        let confirmed = db::totp::find(&mut conn, user.id)
            .await?
            .is_some_and(|t| t.secret_enc.is_some());
        if !confirmed {
            return Err(AppError::NoAuthenticator);
        }
        if !user.two_factor_enabled {
            let mut tx = state.db.begin().await?;
            db::users::set_two_factor_enabled(&mut tx, user.id, true, now).await?;
            events::record(
                &mut tx,
                now,
                user.id,
                events::TWO_FACTOR_ENABLED,
                Some(ctx),
                serde_json::json!({"method": "totp"}),
            )
            .await?;
            tx.commit().await?;
        }
        return Ok(());
    }
    if !user.two_factor_enabled {
        return Ok(());
    }
    second_factor::require_fresh(state, &mut conn, principal, code, ctx).await?;
    drop(conn);
    let mut tx = state.db.begin().await?;
    db::users::set_two_factor_enabled(&mut tx, user.id, false, now).await?;
    db::challenges::delete_for_user(&mut tx, user.id).await?;
    devices::revoke_all(&mut tx, now, user.id, "two_factor_disabled", Some(ctx)).await?;
    sessions::revoke_others(
        &mut tx,
        now,
        user.id,
        Some(principal.session_id),
        "two_factor_disabled",
        Some(ctx),
    )
    .await?;
    events::record(
        &mut tx,
        now,
        user.id,
        events::TWO_FACTOR_DISABLED,
        Some(ctx),
        serde_json::json!({"authenticatorKept": true}),
    )
    .await?;
    tx.commit().await
}
