//! Accounts: registration, the password step of login (with throttling per account and
//! per client IP), and password changes.

use secrecy::SecretString;
use uuid::Uuid;

use super::sessions::{self, IssuedTokens};
use super::{Principal, RequestContext, devices, events};
use crate::crypto;
use crate::db::{self, users::UserRow};
use crate::domain::lockout::password_delay;
use crate::domain::validate;
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::amr;

pub struct Registration {
    pub email: String,
    pub password: SecretString,
    pub user_name: Option<String>,
    pub phone_number: Option<String>,
}

pub async fn register(state: &AppState, input: Registration) -> Result<UserRow, AppError> {
    if !state.config.allow_registration {
        return Err(AppError::RegistrationClosed);
    }
    create_user(state, input).await
}

/// Creates an account whatever the registration setting (the admin CLI uses this too).
pub async fn create_user(state: &AppState, input: Registration) -> Result<UserRow, AppError> {
    let password_hash = state.hasher.hash(&input.password).await?;
    let user_name = input.user_name.unwrap_or_else(|| input.email.clone());
    let user_name_key = validate::user_name_key(&user_name);
    let id = Uuid::new_v4();
    let mut conn = state.db.conn().await?;
    let inserted = db::users::insert(
        &mut conn,
        &db::users::NewUser {
            id,
            email: &input.email,
            user_name: &user_name,
            user_name_key: &user_name_key,
            phone_number: input.phone_number.as_deref(),
            password_hash: &password_hash,
            created_at: state.now(),
        },
    )
    .await;
    if let Err(err) = inserted {
        if db::is_unique_violation(&err) {
            // Tell which field clashes, as the registering user needs to know.
            return Err(
                if db::users::find_by_email(&mut conn, &input.email)
                    .await?
                    .is_some()
                {
                    AppError::AlreadyExists("email")
                } else {
                    AppError::AlreadyExists("userName")
                },
            );
        }
        return Err(err.into());
    }
    db::users::find_by_id(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::internal("user vanished after insert"))
}

pub enum Identifier {
    Email(String),
    UserName(String),
}

pub struct Login {
    pub identifier: Identifier,
    pub password: SecretString,
    pub device_token: Option<String>,
    pub device_fingerprint: Option<String>,
}

pub enum LoginOutcome {
    /// Signed in; no second factor needed (or a trusted device stood in for it).
    SignedIn(IssuedTokens, Box<UserRow>),
    /// The password was right; the second factor is next.
    SecondFactorRequired { token: String, expires_at: i64 },
}

/// The password step. Wrong password, unknown account and a throttled account all answer
/// `InvalidCredentials` after the same Argon2 work, so none can be told apart.
pub async fn login(
    state: &AppState,
    input: Login,
    ctx: &RequestContext,
) -> Result<LoginOutcome, AppError> {
    let now = state.now();
    let config = &state.config;
    let mut conn = state.db.conn().await?;
    let user = match &input.identifier {
        Identifier::Email(email) => db::users::find_by_email(&mut conn, email).await?,
        Identifier::UserName(name) => {
            db::users::find_by_user_name(&mut conn, &validate::user_name_key(name)).await?
        }
    };
    drop(conn);
    let check = check_password(state, user.as_ref(), &input.password, ctx).await?;
    let mut conn = state.db.conn().await?;
    let user = match (user, check) {
        (Some(user), PasswordCheck::Right) => user,
        (Some(user), check) => {
            let reason = if check == PasswordCheck::Throttled {
                "throttled"
            } else {
                "wrong_password"
            };
            state
                .metrics
                .increment("tessera_logins_total", &[("outcome", reason)]);
            events::record(
                &mut conn,
                now,
                user.id,
                events::LOGIN_FAILED,
                Some(ctx),
                serde_json::json!({"reason": reason}),
            )
            .await?;
            return Err(AppError::InvalidCredentials);
        }
        (None, _) => {
            state
                .metrics
                .increment("tessera_logins_total", &[("outcome", "unknown_account")]);
            return Err(AppError::InvalidCredentials);
        }
    };

    if !user.two_factor_enabled {
        state
            .metrics
            .increment("tessera_logins_total", &[("outcome", "success")]);
        let tokens = sign_in(
            state,
            user.id,
            vec![amr::PASSWORD.into()],
            serde_json::json!({"method": "password"}),
            ctx,
        )
        .await?;
        let user = reload(state, user.id).await?;
        return Ok(LoginOutcome::SignedIn(tokens, Box::new(user)));
    }
    if let (Some(token), Some(fingerprint)) = (&input.device_token, &input.device_fingerprint)
        && let Some(device_id) =
            devices::recognise(state, &mut conn, user.id, token, fingerprint).await?
    {
        state
            .metrics
            .increment("tessera_logins_total", &[("outcome", "trusted_device")]);
        let details = serde_json::json!({"method": "trusted_device", "deviceId": device_id});
        let tokens = sign_in(
            state,
            user.id,
            vec![amr::PASSWORD.into(), amr::TRUSTED_DEVICE.into()],
            details,
            ctx,
        )
        .await?;
        let user = reload(state, user.id).await?;
        return Ok(LoginOutcome::SignedIn(tokens, Box::new(user)));
    }
    state.metrics.increment(
        "tessera_logins_total",
        &[("outcome", "second_factor_required")],
    );
    let token = crypto::random_token();
    let expires_at = now + config.two_factor_token_ttl_secs;
    db::challenges::insert(
        &mut conn,
        &crypto::token_hash(&token),
        user.id,
        now,
        expires_at,
        &ctx.ip,
        ctx.user_agent.as_deref(),
    )
    .await?;
    Ok(LoginOutcome::SecondFactorRequired { token, expires_at })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Right,
    Wrong,
    /// Right or not, the account or the client IP is in a delay: treated as wrong.
    Throttled,
}

/// Checks a password with the throttles of the contract applied, wherever a password is
/// checked (login, password change, turning 2FA off), so no route is a free oracle for
/// guessing. A wrong password counts toward the account's and the client IP's delays. The
/// Argon2 work is done whatever the throttle says (against a dummy hash when there is no
/// account), so timing tells nothing.
pub async fn check_password(
    state: &AppState,
    user: Option<&UserRow>,
    password: &SecretString,
    ctx: &RequestContext,
) -> Result<PasswordCheck, AppError> {
    let ctx = ctx.throttle_client(); // counted by network: an IPv6 client by its /64
    let now = state.now();
    let config = &state.config;
    let mut conn = state.db.conn().await?;
    let ip_throttled = db::throttles::find(&mut conn, &ctx.ip)
        .await?
        .is_some_and(|t| {
            t.blocked_until > now
                || (t.window_start > now - 3600 && t.failures >= config.ip_max_failures_per_hour)
        });
    let account_throttled = user.is_some_and(|u| {
        u.pw_blocked_until > now
            || (u.pw_window_start > now - 3600
                && u.pw_failures >= config.password_max_failures_per_hour)
    });
    // Release the connection while hashing: the hash takes far longer than any query.
    drop(conn);
    let matched = state
        .hasher
        .verify(password, user.map(|u| u.password_hash.as_str()))
        .await?;
    if matched && !ip_throttled && !account_throttled {
        return Ok(PasswordCheck::Right);
    }
    if matched {
        return Ok(PasswordCheck::Throttled);
    }
    let mut conn = state.db.conn().await?;
    let ip_failures = db::throttles::count_failure(&mut conn, &ctx.ip, now).await?;
    let delay = password_delay(ip_failures, config.ip_delay_after);
    if delay > 0 {
        db::throttles::block_until(&mut conn, &ctx.ip, now + delay).await?;
    }
    if let Some(user) = user {
        let failures = db::users::count_password_failure(&mut conn, user.id, now).await?;
        let delay = password_delay(failures, config.password_delay_after);
        if delay > 0 {
            db::users::block_password_until(&mut conn, user.id, now + delay).await?;
        }
    }
    Ok(PasswordCheck::Wrong)
}

/// A password confirmation for a change to an account already signed in to: anything but
/// the right, unthrottled password is `InvalidCredentials` and a security event.
pub async fn confirm_password(
    state: &AppState,
    user: &UserRow,
    password: &SecretString,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let check = check_password(state, Some(user), password, ctx).await?;
    if check == PasswordCheck::Right {
        return Ok(());
    }
    let mut conn = state.db.conn().await?;
    let reason = if check == PasswordCheck::Throttled {
        "throttled"
    } else {
        "wrong_password"
    };
    events::record(
        &mut conn,
        state.now(),
        user.id,
        events::PASSWORD_CONFIRMATION_FAILED,
        Some(ctx),
        serde_json::json!({"reason": reason}),
    )
    .await?;
    Err(AppError::InvalidCredentials)
}

/// Records a completed sign-in and starts its session, in one transaction.
pub async fn sign_in(
    state: &AppState,
    user_id: Uuid,
    amr: Vec<String>,
    details: serde_json::Value,
    ctx: &RequestContext,
) -> Result<IssuedTokens, AppError> {
    sign_in_trusting(state, user_id, amr, details, None, ctx)
        .await
        .map(|(tokens, _)| tokens)
}

/// As [`sign_in`], also trusting the device when asked: session and device land in the
/// same transaction, so a failure leaves neither behind.
pub async fn sign_in_trusting(
    state: &AppState,
    user_id: Uuid,
    amr: Vec<String>,
    details: serde_json::Value,
    trust_device: Option<&devices::DeviceInput>,
    ctx: &RequestContext,
) -> Result<(IssuedTokens, Option<(devices::TrustedDevice, String)>), AppError> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db::users::record_login(&mut tx, user_id, now, &ctx.ip).await?;
    let tokens = sessions::start(state, &mut tx, user_id, amr, ctx).await?;
    events::record(
        &mut tx,
        now,
        user_id,
        events::LOGIN_SUCCEEDED,
        Some(ctx),
        details,
    )
    .await?;
    let device = match trust_device {
        Some(input) => Some(devices::trust(state, &mut tx, user_id, input, ctx).await?),
        None => None,
    };
    tx.commit().await?;
    Ok((tokens, device))
}

pub async fn reload(state: &AppState, user_id: Uuid) -> Result<UserRow, AppError> {
    let mut conn = state.db.conn().await?;
    db::users::find_by_id(&mut conn, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)
}

/// Changes the password. Every other session and every trusted device, granted under
/// the old password, is revoked; the caller's own session stays.
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    current: &SecretString,
    new: &SecretString,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let user = reload(state, principal.user_id).await?;
    confirm_password(state, &user, current, ctx).await?;
    let new_hash = state.hasher.hash(new).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db::users::set_password_hash(&mut tx, user.id, &new_hash).await?;
    events::record(
        &mut tx,
        now,
        user.id,
        events::PASSWORD_CHANGED,
        Some(ctx),
        serde_json::json!({}),
    )
    .await?;
    sessions::revoke_others(
        &mut tx,
        now,
        user.id,
        Some(principal.session_id),
        "password_changed",
        Some(ctx),
    )
    .await?;
    devices::revoke_all(&mut tx, now, user.id, "password_changed", Some(ctx)).await?;
    tx.commit().await
}
