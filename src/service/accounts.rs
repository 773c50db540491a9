//! Accounts: registration, the password step of login (with throttling per account and
//! per client IP), and password changes.

use secrecy::SecretString;
use uuid::Uuid;

use super::sessions::{self, IssuedTokens};
use super::{Principal, RequestContext, ThrottleClient, devices, events};
use crate::crypto;
use crate::db::{self, Conn, throttles::Counted, users::UserRow};
use crate::domain::lockout::{PasswordThrottle, Standing};
use crate::domain::validate;
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::amr;

/// An account as the rest of the server sees it: who it is and when it last signed in.
/// No password hash and no throttle counters: those never leave the service layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    /// The user name; the email when none was chosen.
    pub user_name: String,
    pub phone_number: Option<String>,
    pub two_factor_enabled: bool,
    /// Unix seconds.
    pub last_login_at: Option<i64>,
    pub last_login_ip: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<UserRow> for Account {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            user_name: row.user_name,
            phone_number: row.phone_number,
            two_factor_enabled: row.two_factor_enabled,
            last_login_at: row.last_login_at,
            last_login_ip: row.last_login_ip,
            created_at: row.created_at,
        }
    }
}

pub struct Registration {
    pub email: String,
    pub password: SecretString,
    pub user_name: Option<String>,
    pub phone_number: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn register(state: &AppState, input: Registration) -> Result<Account, AppError> {
    if !state.config.allow_registration {
        return Err(AppError::RegistrationClosed);
    }
    create_user(state, input, None).await
}

/// Who created an account on someone's behalf (the admin CLI or API): recorded as an
/// `account_created` event in the transaction that creates it.
pub type CreatedBy = super::operator::Actor;

/// Creates an account whatever the registration setting (the admin CLI uses this too).
#[tracing::instrument(skip_all)]
pub async fn create_user(
    state: &AppState,
    input: Registration,
    created_by: Option<CreatedBy>,
) -> Result<Account, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        create_user_unit(state, input, created_by, false)
            .await
            .map(|(user, _)| Account::from(user))
    })
    .await
}

/// An account made without a password, and the single-use link token that sets one.
pub struct CreatedWithLink {
    pub account: Account,
    /// Shown once; only its hash is stored.
    pub set_password_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Creates an account with no usable password (the hash of 256 random bits nobody ever
/// sees, so a login tries it like any other and always fails) and a set-password token
/// valid for `set_password_token_ttl_secs`, in one transaction.
#[tracing::instrument(skip_all)]
pub async fn create_user_without_password(
    state: &AppState,
    email: String,
    user_name: Option<String>,
    phone_number: Option<String>,
    created_by: CreatedBy,
) -> Result<CreatedWithLink, AppError> {
    let input = Registration {
        email,
        password: SecretString::from(crypto::random_token()),
        user_name,
        phone_number,
    };
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let (user, link) = create_user_unit(state, input, Some(created_by), true).await?;
        let (set_password_token, expires_at) =
            link.ok_or_else(|| AppError::internal("set-password link missing"))?;
        Ok(CreatedWithLink {
            account: user.into(),
            set_password_token,
            expires_at,
        })
    })
    .await
}

async fn create_user_unit(
    state: &AppState,
    input: Registration,
    created_by: Option<CreatedBy>,
    with_link: bool,
) -> Result<(UserRow, Option<(String, i64)>), AppError> {
    let password_hash = state.hasher.hash(&input.password).await?;
    let user_name = input.user_name.unwrap_or_else(|| input.email.clone());
    let user_name_key = validate::user_name_key(&user_name);
    let mut tx = state.db.begin().await?;
    let inserted = db::users::insert(
        &mut tx,
        &db::users::NewUser {
            id: Uuid::new_v4(),
            email: &input.email,
            user_name: &user_name,
            user_name_key: &user_name_key,
            phone_number: input.phone_number.as_deref(),
            password_hash: &password_hash,
            created_at: state.now(),
        },
    )
    .await;
    match inserted {
        Ok(user) => {
            let mut link = None;
            if let Some(by) = created_by {
                let extra = if with_link {
                    serde_json::json!({"withPassword": false})
                } else {
                    serde_json::json!({})
                };
                by.on(user.id, user.created_at)
                    .record(state, &mut tx, events::ACCOUNT_CREATED, extra)
                    .await?;
                if with_link {
                    let ttl = state.config.set_password_token_ttl_secs;
                    let purpose = db::challenges::SET_PASSWORD;
                    link =
                        new_token(&mut tx, &user, purpose, user.created_at, ttl, &by.ctx).await?;
                }
            }
            tx.commit().await?;
            Ok((user, link))
        }
        Err(err) if db::is_unique_violation(&err) => {
            // Tell which field clashes, as the registering user needs to know. The failed
            // transaction goes first: a read must not wait on a held writer.
            drop(tx);
            let mut conn = state.db.read().await?;
            let email_taken = db::users::find_by_email(&mut conn, &input.email)
                .await?
                .is_some();
            Err(AppError::AlreadyExists(if email_taken {
                "email"
            } else {
                "userName"
            }))
        }
        Err(err) => Err(err.into()),
    }
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
    SignedIn(IssuedTokens, Box<Account>),
    /// The password was right; the second factor is next.
    SecondFactorRequired {
        token: String,
        expires_at: i64,
        /// The second factors the account can answer with: `totp`, `passkey`,
        /// `backup_code`.
        methods: Vec<&'static str>,
    },
    /// The password was right, but the account must have a second factor and has none:
    /// `token` allows TOTP enrolment only, and confirming it signs in.
    EnrolmentRequired { token: String, expires_at: i64 },
}

/// Whether the account must have a second factor: by `require_second_factor = "all"`,
/// or because an operator marked it.
fn second_factor_required(state: &AppState, user: &UserRow) -> bool {
    state.config.require_second_factor == crate::config::SecondFactorPolicy::All
        || user.second_factor_required
}

/// The password step. Wrong password, unknown account and a throttled account all answer
/// `InvalidCredentials` after the same Argon2 work, so none can be told apart. Whatever
/// it decides is written in one transaction that runs to its end.
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    input: Login,
    ctx: RequestContext,
) -> Result<LoginOutcome, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        login_unit(state, input, &ctx).await
    })
    .await
}

/// A login that needs no second step (2FA off, or a recognised trusted device): signs in
/// within the login's transaction `tx`, commits it, counts the login by `outcome` and
/// issues the tokens.
async fn signed_in_by_login(
    state: &AppState,
    mut tx: Conn,
    user: &UserRow,
    amr: Vec<String>,
    details: serde_json::Value,
    outcome: &'static str,
    ctx: &RequestContext,
) -> Result<LoginOutcome, AppError> {
    let signed_in = sign_in_in(
        state,
        &mut tx,
        user.id,
        amr,
        details,
        None,
        Some(&user.password_hash),
        ctx,
    )
    .await?;
    tx.commit().await?;
    state
        .metrics
        .increment("tessera_logins_total", &[("outcome", outcome)]);
    let (tokens, user) = signed_in.issue(state)?;
    Ok(LoginOutcome::SignedIn(tokens, Box::new(user)))
}

async fn login_unit(
    state: &AppState,
    input: Login,
    ctx: &RequestContext,
) -> Result<LoginOutcome, AppError> {
    let now = state.now();
    let mut conn = state.db.read().await?;
    let user = match &input.identifier {
        Identifier::Email(email) => db::users::find_by_email(&mut conn, email).await?,
        Identifier::UserName(name) => {
            db::users::find_by_user_name(&mut conn, &validate::user_name_key(name)).await?
        }
    };
    drop(conn);
    let check = check_password(state, user.as_ref(), &input.password, ctx, now).await?;
    let Some(user) = user else {
        // Counted against the client IP like a wrong password.
        record_password_failure(state, None, check, events::LOGIN_FAILED, ctx, now).await?;
        return Err(AppError::InvalidCredentials);
    };
    if check != PasswordCheck::Right {
        record_password_failure(state, Some(user.id), check, events::LOGIN_FAILED, ctx, now)
            .await?;
        return Err(AppError::InvalidCredentials);
    }

    if user.disabled_at.is_some() {
        // Told only after the right password: nobody else learns the account exists.
        state
            .metrics
            .increment("tessera_logins_total", &[("outcome", "account_disabled")]);
        return Err(AppError::AccountDisabled);
    }

    let mut tx = state.db.begin().await?;
    if !user.two_factor_enabled && second_factor_required(state, &user) {
        // As long as a pending setup lives: the enrolment is a setup and its confirmation.
        let ttl = state.config.totp_setup_ttl_secs;
        let purpose = db::challenges::ENROLMENT;
        let Some((token, expires_at)) = new_token(&mut tx, &user, purpose, now, ttl, ctx).await?
        else {
            return Err(AppError::InvalidCredentials);
        };
        tx.commit().await?;
        state
            .metrics
            .increment("tessera_logins_total", &[("outcome", "enrolment_required")]);
        return Ok(LoginOutcome::EnrolmentRequired { token, expires_at });
    }
    if !user.two_factor_enabled {
        let amr = vec![amr::PASSWORD.into()];
        let details = serde_json::json!({"method": "password"});
        return signed_in_by_login(state, tx, &user, amr, details, "success", ctx).await;
    }
    if let (Some(token), Some(fingerprint)) = (&input.device_token, &input.device_fingerprint)
        && let Some(device_id) =
            devices::recognise(state, &mut tx, user.id, token, fingerprint).await?
    {
        let amr = vec![amr::PASSWORD.into(), amr::TRUSTED_DEVICE.into()];
        let details = serde_json::json!({"method": "trusted_device", "deviceId": device_id});
        return signed_in_by_login(state, tx, &user, amr, details, "trusted_device", ctx).await;
    }
    let ttl = state.config.two_factor_token_ttl_secs;
    let purpose = db::challenges::SECOND_FACTOR;
    let Some((token, expires_at)) = new_token(&mut tx, &user, purpose, now, ttl, ctx).await? else {
        return Err(AppError::InvalidCredentials);
    };
    let summary = db::users::two_factor_summary(&mut tx, user.id, None, now).await?;
    // Not `TwoFactorStatus::methods`: the login always offers `backup_code` (API.md's
    // login shape), so its answer does not tell whoever holds the password whether any
    // backup codes remain.
    let mut methods = Vec::with_capacity(3);
    if summary.as_ref().is_none_or(|s| s.totp_confirmed == 1) {
        methods.push("totp");
    }
    if summary.as_ref().is_some_and(|s| s.passkeys > 0) {
        methods.push("passkey");
    }
    methods.push("backup_code");
    tx.commit().await?;
    state.metrics.increment(
        "tessera_logins_total",
        &[("outcome", "second_factor_required")],
    );
    Ok(LoginOutcome::SecondFactorRequired {
        token,
        expires_at,
        methods,
    })
}

/// A new single-use token of `purpose` for `user` (a second step, an enrolment, a
/// set-password link), live for `ttl` seconds from `now`: the token (shown once; only its
/// hash is stored) and when it expires. Only while the password the caller read is still
/// the account's: a password change that committed in between ends every pending token,
/// this one included, so `None` then.
async fn new_token(
    tx: &mut Conn,
    user: &UserRow,
    purpose: &str,
    now: i64,
    ttl: i64,
    ctx: &RequestContext,
) -> Result<Option<(String, i64)>, AppError> {
    let token = crypto::random_token();
    let expires_at = now + ttl;
    let challenge = db::challenges::NewChallenge {
        hash: &crypto::token_hash(&token),
        user_id: user.id,
        now,
        expires_at,
        ip: &ctx.ip,
        user_agent: ctx.user_agent.as_deref(),
    };
    let created =
        db::challenges::insert_for_password(tx, &challenge, purpose, &user.password_hash).await?;
    Ok(created.then_some((token, expires_at)))
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
/// guessing. The attempt is counted against the client's network and the account before
/// the hash is checked, in a transaction that commits first: attempts sent at the same
/// moment each see the ones counted before them, so a burst cannot all be judged against
/// the same count and pass the hourly limits together. A right password gives its count
/// back; a wrong one keeps it and earns its delay, and the caller records the event with
/// [`record_password_failure`]. The Argon2 work
/// is done whatever the throttle says (against a dummy hash when there is no account), so
/// timing tells nothing.
pub(super) async fn check_password(
    state: &AppState,
    user: Option<&UserRow>,
    password: &SecretString,
    ctx: &RequestContext,
    now: i64,
) -> Result<PasswordCheck, AppError> {
    let attempt = count_password_attempt(state, user.map(|u| u.id), ctx, now).await?;
    let matched = state
        .hasher
        .verify(password, user.map(|u| u.password_hash.as_str()))
        .await?;
    settle_password_attempt(state, &attempt, matched).await?;
    Ok(match (matched, attempt.throttled()) {
        (true, false) => PasswordCheck::Right,
        (true, true) => PasswordCheck::Throttled,
        (false, _) => PasswordCheck::Wrong,
    })
}

/// A password attempt as [`count_password_attempt`] counted it: against the client's
/// network, and against the account when there is one.
struct CountedAttempt {
    client: ThrottleClient,
    ip: (Counted, Standing),
    account: Option<(Uuid, Counted, Standing)>,
}

impl CountedAttempt {
    fn throttled(&self) -> bool {
        self.ip.1.throttled
            || self
                .account
                .is_some_and(|(_, _, standing)| standing.throttled)
    }
}

/// Counts a password attempt before its hash is checked, in one transaction, against the
/// hourly limits. The delays are left to [`settle_password_attempt`]: they follow
/// failures, and an attempt in flight is not one yet (many right logins of one account at
/// once must not delay each other).
async fn count_password_attempt(
    state: &AppState,
    user_id: Option<Uuid>,
    ctx: &RequestContext,
    now: i64,
) -> Result<CountedAttempt, AppError> {
    let config = &state.config;
    let client = ctx.throttle_client(); // counted by network: an IPv6 client by its /64
    let per_ip = PasswordThrottle {
        max_per_hour: config.ip_max_failures_per_hour,
        delay_after: config.ip_delay_after,
    };
    let per_account = PasswordThrottle {
        max_per_hour: config.password_max_failures_per_hour,
        delay_after: config.password_delay_after,
    };
    let mut tx = state.db.begin().await?;
    let ip = db::throttles::count_attempt(&mut tx, &client.ip, now).await?;
    let ip_standing = per_ip.judge(ip.failures, ip.blocked_until, now);
    let mut account = None;
    if let Some(id) = user_id
        && let Some(counted) = db::users::count_password_attempt(&mut tx, id, now).await?
    {
        let standing = per_account.judge(counted.failures, counted.blocked_until, now);
        account = Some((id, counted, standing));
    }
    tx.commit().await?;
    Ok(CountedAttempt {
        client,
        ip: (ip, ip_standing),
        account,
    })
}

/// Settles a counted attempt once its hash is checked, in one transaction: a right
/// password (throttled or not) gives its counts back; a wrong one keeps them and pushes
/// out the delay its failure earns.
async fn settle_password_attempt(
    state: &AppState,
    attempt: &CountedAttempt,
    matched: bool,
) -> Result<(), AppError> {
    let mut tx = state.db.begin().await?;
    let (ip, ip_standing) = attempt.ip;
    if matched {
        db::throttles::give_back(&mut tx, &attempt.client.ip, ip.window_start).await?;
    } else if let Some(until) = ip_standing.delay_until {
        db::throttles::block_until(&mut tx, &attempt.client.ip, until).await?;
    }
    if let Some((id, counted, standing)) = attempt.account {
        if matched {
            db::users::give_back_password_attempt(&mut tx, id, counted.window_start).await?;
        } else if let Some(until) = standing.delay_until {
            db::users::block_password_until(&mut tx, id, until).await?;
        }
    }
    tx.commit().await
}

/// Records a password step that failed: the metric, and the event the account's owner
/// sees (its reason is `throttled` for the right password during a delay). The attempt
/// itself was counted before its hash was checked. The metric says `wrong_password` for
/// a throttled right password too, so nothing the guesser sees tells a right guess during
/// a delay from a wrong one.
async fn record_password_failure(
    state: &AppState,
    user_id: Option<Uuid>,
    check: PasswordCheck,
    event: &'static str,
    ctx: &RequestContext,
    now: i64,
) -> Result<(), AppError> {
    if event == events::LOGIN_FAILED {
        let outcome = if user_id.is_some() {
            "wrong_password"
        } else {
            "unknown_account"
        };
        state
            .metrics
            .increment("tessera_logins_total", &[("outcome", outcome)]);
    }
    let Some(user_id) = user_id else {
        return Ok(());
    };
    let reason = if check == PasswordCheck::Throttled {
        "throttled"
    } else {
        "wrong_password"
    };
    let why = serde_json::json!({"reason": reason});
    let mut tx = state.db.begin().await?;
    events::Occasion::new(user_id, now, Some(ctx))
        .record(state, &mut tx, event, why)
        .await?;
    tx.commit().await
}

/// A password confirmation for a change to an account already signed in to: anything but
/// the right, unthrottled password is `InvalidCredentials` and a security event.
pub(super) async fn confirm_password(
    state: &AppState,
    user: &UserRow,
    password: &SecretString,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let now = state.now();
    let check = check_password(state, Some(user), password, ctx, now).await?;
    if check == PasswordCheck::Right {
        return Ok(());
    }
    record_password_failure(
        state,
        Some(user.id),
        check,
        events::PASSWORD_CONFIRMATION_FAILED,
        ctx,
        now,
    )
    .await?;
    Err(AppError::InvalidCredentials)
}

/// A sign-in written to the database, whose access token is yet to be signed.
pub struct SignedIn {
    pub started: sessions::Started,
    pub user: Account,
    pub device: Option<(devices::TrustedDevice, String)>,
}

impl SignedIn {
    /// Signs the access token: after the commit, so the writer is not held for it.
    pub fn issue(self, state: &AppState) -> Result<(IssuedTokens, Account), AppError> {
        Ok((self.started.issue(state, self.user.id)?, self.user))
    }
}

/// Records a completed sign-in in the caller's write transaction: the login on the
/// account, a new session, the event and, when asked, a trusted device, so a failure
/// leaves none of them behind. With `password_hash`, only while the account still has
/// that password (a change that committed since it was checked wins).
#[allow(clippy::too_many_arguments)]
pub async fn sign_in_in(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    amr: Vec<String>,
    details: serde_json::Value,
    trust_device: Option<&devices::DeviceInput>,
    password_hash: Option<&str>,
    ctx: &RequestContext,
) -> Result<SignedIn, AppError> {
    let now = state.now();
    // A sign-in with a second factor is that factor's success: its counters start over.
    let second_factor = amr.iter().any(|m| m == amr::MFA);
    let user = db::users::record_login(tx, user_id, now, &ctx.ip, password_hash, second_factor)
        .await?
        .ok_or(AppError::InvalidCredentials)?;
    let started = sessions::start(state, tx, user_id, amr, ctx).await?;
    let trusted_device = details
        .get("deviceId")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    events::Occasion::new(user_id, now, Some(ctx))
        .record(state, tx, events::LOGIN_SUCCEEDED, details)
        .await?;
    note_device(state, tx, user_id, trusted_device.as_deref(), ctx).await?;
    let device = match trust_device {
        Some(input) => {
            let (device, token) = devices::trust(state, tx, user_id, input, ctx).await?;
            // The device being trusted is the one signing in now: not new next time.
            let key = crate::domain::device::trusted_device_key(&device.id.to_string());
            db::known_devices::seen(tx, user_id, &[key], now).await?;
            Some((device, token))
        }
        None => None,
    };
    Ok(SignedIn {
        started,
        user: user.into(),
        device,
    })
}

/// Notes the device of a sign-in (its trusted device, and its user agent's family on its
/// network) and records `new_device_sign_in` when none of them was seen on the account
/// within `new_device_window_days`. An account's very first sign-in is not news.
async fn note_device(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    trusted_device: Option<&str>,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    use crate::domain::device;
    let now = state.now();
    let mut keys = vec![device::device_key(ctx.user_agent.as_deref(), &ctx.ip)];
    if let Some(id) = trusted_device {
        keys.push(device::trusted_device_key(id));
    }
    let before = db::known_devices::seen(tx, user_id, &keys, now).await?;
    let known_before = before.other_devices || before.last_seen.iter().any(Option::is_some);
    let since = now - state.config.new_device_window_days * 86_400;
    let recent = before.last_seen.iter().flatten().any(|&t| t >= since);
    if known_before && !recent {
        let seen_from = serde_json::json!({
            "device": device::user_agent_family(ctx.user_agent.as_deref()),
            "network": crate::domain::network::throttle_key(&ctx.ip),
        });
        events::Occasion::new(user_id, now, Some(ctx))
            .record(state, tx, events::NEW_DEVICE_SIGN_IN, seen_from)
            .await?;
    }
    Ok(())
}

/// The signed-in account, as it is now.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn reload(state: &AppState, user_id: Uuid) -> Result<Account, AppError> {
    reload_row(state, user_id).await.map(Account::from)
}

/// The account's row, hash and counters included, for the rules that need them.
pub(super) async fn reload_row(state: &AppState, user_id: Uuid) -> Result<UserRow, AppError> {
    let mut conn = state.db.read().await?;
    db::users::find_by_id(&mut conn, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)
}

/// Changes the password. Everything granted under the old password dies with it, in the
/// same transaction: every other session, every trusted device and every pending second
/// step (on both surfaces); the caller's own session stays.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn change_password(
    state: &AppState,
    principal: Principal,
    current: SecretString,
    new: SecretString,
    ctx: RequestContext,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let user = reload_row(state, principal.user_id).await?;
        confirm_password(state, &user, &current, &ctx).await?;
        let new_hash = state.hasher.hash(&new).await?;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        if !db::users::replace_password_hash(&mut tx, user.id, &user.password_hash, &new_hash)
            .await?
        {
            // Another change won since this one read the account.
            return Err(AppError::InvalidCredentials);
        }
        let on = events::Occasion::new(user.id, now, Some(&ctx));
        let keep = Some(principal.session_id);
        password_replaced(state, &mut tx, on, events::PASSWORD_CHANGED, keep).await?;
        tx.commit().await
    })
    .await
}

/// Sets the password of an account created without one, with its single-use link token.
/// The new password is checked like a registration's (`Validation` on `newPassword`);
/// the token is spent, the event recorded and anything granted before ended, in one
/// transaction that runs to its end.
#[tracing::instrument(skip_all)]
pub async fn set_password_with_link(
    state: &AppState,
    token: String,
    new_password: SecretString,
    ctx: RequestContext,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let hash = crypto::token_hash(&token);
        let mut conn = state.db.read().await?;
        // A set-password link takes no codes, so it never has a failure to count.
        let max_failures = state.config.two_factor_token_max_failures;
        let purpose = db::challenges::SET_PASSWORD;
        let user_id =
            db::challenges::find_live(&mut conn, &hash, purpose, state.now(), max_failures)
                .await?
                .ok_or(AppError::InvalidSetPasswordToken)?
                .user_id;
        let user = db::users::find_by_id(&mut conn, user_id)
            .await?
            .ok_or(AppError::InvalidSetPasswordToken)?;
        drop(conn);
        let words =
            validate::password_context(&user.email, Some(&user.user_name), &state.config.issuer);
        validate::new_password(secrecy::ExposeSecret::expose_secret(&new_password), &words)
            .map_err(|msg| AppError::field("newPassword", msg))?;
        let new_hash = state.hasher.hash(&new_password).await?;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        if db::challenges::spend(&mut tx, &hash, purpose, now, max_failures).await? != Some(user_id)
        {
            return Err(AppError::InvalidSetPasswordToken);
        }
        db::users::set_password_hash(&mut tx, user_id, &new_hash).await?;
        let on = events::Occasion::new(user_id, now, Some(&ctx));
        password_replaced(state, &mut tx, on, events::PASSWORD_SET, None).await?;
        tx.commit().await
    })
    .await
}

/// A new password is in place (`kind`: [`events::PASSWORD_CHANGED`] by its owner,
/// [`events::PASSWORD_SET`] by a set-password link): recorded, and everything granted
/// before it ends, for that reason, but the session `keep` that changed it.
async fn password_replaced(
    state: &AppState,
    tx: &mut Conn,
    on: events::Occasion<'_>,
    kind: &str,
    keep: Option<Uuid>,
) -> Result<(), AppError> {
    on.record(state, tx, kind, serde_json::json!({})).await?;
    sessions::revoke_granted(state, tx, on, keep, kind).await?;
    Ok(())
}
