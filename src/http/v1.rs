//! The primary API: accounts and tokens under `/v1/auth`, and the SalesOS two-factor API
//! under `/v1/auth/2fa`. Handlers parse, call one service function, and shape the answer.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::{self, Tokens, TrustedDeviceInput, User};
use super::extract::{Auth, Bearer, Client, JsonBody, OptionalJsonBody, bearer_token};
use super::problem::Problem;
use super::ratelimit::RateLimit;
use super::responses::{AccountRateLimited, BodyErrors, RateLimited, Unauthorized, Unavailable};
use crate::clock::rfc3339;
use crate::domain::validate;
use crate::error::AppError;
use crate::service::accounts::{self, Identifier, LoginOutcome, Registration};
use crate::service::{devices, events, sessions, two_factor};
use crate::state::AppState;

/// `/v1` refuses unknown fields.
const STRICT: bool = true;

/// The `/v1` routes, each registered with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(security_events))
        .routes(routes!(status))
        .routes(routes!(setup))
        .routes(routes!(verify_setup))
        .routes(routes!(verify))
        .routes(routes!(disable))
        .routes(routes!(backup_codes))
        .routes(routes!(regenerate_backup_codes))
        .routes(routes!(list_devices, add_device, remove_all_devices))
        .routes(routes!(remove_device))
}

/// Body of `POST /v1/auth/register`, as [`register`] reads it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct RegisterRequest {
    #[schema(format = Email, max_length = 254, example = "ann@example.com")]
    email: String,
    /// At least 8 characters (after NFKC), at most 1024 bytes; anything else is allowed, but
    /// not a commonly used or breached password, nor one built on the email, the user name
    /// or the service's name.
    #[schema(format = Password, min_length = 8, max_length = 1024, example = "correct horse battery staple")]
    password: String,
    /// 3 to 254 of letters, digits and `. _ - +`, and not a UUID (a user name must not be
    /// mistaken for an email or an account id); defaults to the email.
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = "^[A-Za-z0-9._+-]+$",
        example = "ann"
    )]
    user_name: Option<String>,
    /// Digits with `+ - ( ) .` and spaces; at least 5 digits.
    #[schema(
        max_length = 32,
        pattern = "^[0-9+() .-]+$",
        example = "+1 555 010 9999"
    )]
    phone_number: Option<String>,
}

/// Creates an account.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    operation_id = "register",
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new account.", body = User),
        BodyErrors,
        (status = 403, description = "Registration is closed on this server (`registration_closed`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email (`email_taken`) or user name (`user_name_taken`) is in use.", body = Problem, content_type = "application/problem+json"),
        RateLimited,
        Unavailable,
    )
)]
async fn register(
    State(state): State<AppState>,
    _limit: RateLimit,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let email = f
        .required_string("email", validate::EMAIL_MAX + 10)
        .and_then(|e| match validate::email(&e) {
            Ok(v) => Some(v),
            Err(msg) => {
                f.error("email", msg);
                None
            }
        });
    let password = dto::password(&mut f, "password");
    let user_name = f
        .optional_string("userName", validate::USER_NAME_MAX + 10)
        .and_then(|n| match validate::user_name(&n) {
            Ok(v) => Some(v),
            Err(msg) => {
                f.error("userName", msg);
                None
            }
        });
    let phone_number = f
        .optional_string("phoneNumber", validate::PHONE_MAX + 10)
        .and_then(|p| match validate::phone_number(&p) {
            Ok(v) => Some(v),
            Err(msg) => {
                f.error("phoneNumber", msg);
                None
            }
        });
    if let (Some(p), Some(email)) = (&password, &email) {
        let context = validate::password_context(email, user_name.as_deref(), &state.config.issuer);
        if let Err(msg) = validate::new_password(secrecy::ExposeSecret::expose_secret(p), &context)
        {
            f.error("password", msg);
        }
    } else if let Some(p) = &password
        && let Err(msg) = validate::new_password(secrecy::ExposeSecret::expose_secret(p), &[])
    {
        // The email is wrong too: still say what is wrong with the password.
        f.error("password", msg);
    }
    f.finish(STRICT)?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let user = accounts::register(
        &state,
        Registration {
            email,
            password,
            user_name,
            phone_number,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(User::from(&user))).into_response())
}

/// Reads `email` or `userName` (exactly one is needed) for the login routes.
pub fn identifier(f: &mut super::extract::Fields) -> Option<Identifier> {
    let email = f.optional_string("email", validate::EMAIL_MAX + 10);
    let user_name = f.optional_string("userName", validate::USER_NAME_MAX + 10);
    match (email, user_name) {
        (Some(email), _) => Some(Identifier::Email(validate::email_key(&email))),
        (None, Some(name)) => Some(Identifier::UserName(name.trim().to_owned())),
        (None, None) => {
            f.error("email", "email or userName is required");
            None
        }
    }
}

/// Body of `POST /v1/auth/login`, as [`login`] reads it. One of `email` and `userName` is
/// required.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct LoginRequest {
    /// The account's email (or give `userName`).
    #[schema(format = Email, max_length = 264, example = "ann@example.com")]
    email: Option<String>,
    /// The account's user name (or give `email`).
    #[schema(max_length = 264, example = "ann")]
    user_name: Option<String>,
    #[schema(format = Password, max_length = 1024, example = "correct horse battery staple")]
    password: String,
    /// A trusted device's token: with its `deviceFingerprint`, skips the second factor.
    #[schema(max_length = 512)]
    device_token: Option<String>,
    #[schema(max_length = 512, example = "fp-1f2e3d")]
    device_fingerprint: Option<String>,
}

/// A login that is complete: the tokens, and `requires2FA: false`.
#[derive(Serialize, ToSchema)]
struct SignedIn {
    #[serde(flatten)]
    tokens: Tokens,
    /// Always false here.
    #[serde(rename = "requires2FA")]
    requires_2fa: bool,
}

/// A login that needs its second factor: send a code to `POST /v1/auth/2fa/verify` with the
/// `twoFactorToken` as bearer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SecondFactorRequired {
    /// Always true here.
    #[serde(rename = "requires2FA")]
    requires_2fa: bool,
    /// Opaque, single use, valid for `two_factor_token_ttl_secs` (5 minutes).
    #[schema(example = "q8Jx0tN3...")]
    two_factor_token: String,
    #[schema(format = DateTime)]
    two_factor_token_expiry: String,
    /// Second factors accepted: `totp` and `backup_code`.
    #[schema(example = json!(["totp", "backup_code"]))]
    methods: Vec<&'static str>,
}

/// `LoginResult`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum LoginResult {
    SignedIn(SignedIn),
    SecondFactorRequired(SecondFactorRequired),
}

/// Checks a password: signs in, or asks for the second factor.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    operation_id = "login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in, or `requires2FA: true` with a `twoFactorToken`.", body = LoginResult),
        BodyErrors,
        (status = 401, description = "Unknown account, wrong password or throttled account: all `invalid_credentials`.", body = Problem, content_type = "application/problem+json"),
        RateLimited,
        Unavailable,
    )
)]
async fn login(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Json<LoginResult>, AppError> {
    let identifier = identifier(&mut f);
    let password = dto::password(&mut f, "password");
    let device_token = f.optional_string("deviceToken", dto::MAX_TOKEN);
    let device_fingerprint = f.optional_string("deviceFingerprint", dto::MAX_FINGERPRINT);
    f.finish(STRICT)?;
    let (Some(identifier), Some(password)) = (identifier, password) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let outcome = accounts::login(
        &state,
        accounts::Login {
            identifier,
            password,
            device_token,
            device_fingerprint,
        },
        ctx,
    )
    .await?;
    Ok(Json(match outcome {
        LoginOutcome::SignedIn(tokens, user) => LoginResult::SignedIn(SignedIn {
            tokens: Tokens::new(tokens, &user),
            requires_2fa: false,
        }),
        LoginOutcome::SecondFactorRequired { token, expires_at } => {
            LoginResult::SecondFactorRequired(SecondFactorRequired {
                requires_2fa: true,
                two_factor_token: token,
                two_factor_token_expiry: rfc3339(expires_at),
                methods: vec!["totp", "backup_code"],
            })
        }
    }))
}

/// Body of `POST /v1/auth/refresh`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct RefreshRequest {
    #[schema(max_length = 512, example = "m2Vb7cQx...")]
    refresh_token: String,
}

/// Rotates a refresh token: a new pair; the one sent is retired. A retired token sent again
/// revokes its whole session.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    operation_id = "refresh",
    tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair.", body = Tokens),
        BodyErrors,
        (status = 401, description = "Unknown, expired, retired or revoked refresh token (`invalid_refresh_token`).", body = Problem, content_type = "application/problem+json"),
        RateLimited,
        Unavailable,
    )
)]
async fn refresh(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Json<Tokens>, AppError> {
    let token = f.required_string("refreshToken", dto::MAX_TOKEN);
    f.finish(STRICT)?;
    let token = token.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let (tokens, user) = sessions::refresh(&state, token, ctx).await?;
    Ok(Json(Tokens::new(tokens, &user)))
}

/// Body of `POST /v1/auth/logout` (optional, as is the body itself).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct LogoutRequest {
    /// The session's refresh token; the session of the access token is ended either way.
    #[schema(max_length = 512)]
    refresh_token: Option<String>,
}

/// Ends the caller's session.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    operation_id = "logout",
    tag = "accounts",
    security(("bearerAuth" = [])),
    request_body(content = Option<LogoutRequest>, description = "May be left out.", content_type = "application/json"),
    responses(
        (status = 204, description = "Logged out."),
        BodyErrors,
        Unauthorized,
        AccountRateLimited,
        Unavailable,
    )
)]
async fn logout(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    OptionalJsonBody(mut f): OptionalJsonBody,
) -> Result<StatusCode, AppError> {
    let token = f.optional_string("refreshToken", dto::MAX_TOKEN);
    f.finish(STRICT)?;
    sessions::logout(&state, principal, token, ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in account.
#[utoipa::path(
    get,
    path = "/v1/auth/me",
    operation_id = "me",
    tag = "accounts",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The account.", body = User), Unauthorized, Unavailable)
)]
async fn me(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<User>, AppError> {
    let user = accounts::reload(&state, principal.user_id).await?;
    Ok(Json(User::from(&user)))
}

/// Body of `POST /v1/auth/password`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct ChangePasswordRequest {
    #[schema(format = Password, max_length = 1024, example = "correct horse battery staple")]
    current_password: String,
    /// At least 8 characters (after NFKC), at most 1024 bytes; not a commonly used or
    /// breached password, nor one built on the email, the user name or the service's name.
    #[schema(format = Password, min_length = 8, max_length = 1024, example = "staple battery horse correct")]
    new_password: String,
}

/// Changes the password; revokes every other session and every trusted device.
#[utoipa::path(
    post,
    path = "/v1/auth/password",
    operation_id = "change_password",
    tag = "accounts",
    security(("bearerAuth" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed."),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`) or wrong current password (`invalid_credentials`).", body = Problem, content_type = "application/problem+json"),
        AccountRateLimited,
        Unavailable,
    )
)]
async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<StatusCode, AppError> {
    let current = dto::password(&mut f, "currentPassword");
    let new = dto::password(&mut f, "newPassword");
    if let Some(p) = &new {
        let user = accounts::reload(&state, principal.user_id).await?;
        let context =
            validate::password_context(&user.email, Some(&user.user_name), &state.config.issuer);
        if let Err(msg) = validate::new_password(secrecy::ExposeSecret::expose_secret(p), &context)
        {
            f.error("newPassword", msg);
        }
    }
    f.finish(STRICT)?;
    let (Some(current), Some(new)) = (current, new) else {
        return Err(AppError::internal("validated fields missing"));
    };
    accounts::change_password(&state, principal, current, new, ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct Page {
    /// Events per page.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    /// Events to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// The account's security events, newest first.
#[utoipa::path(
    get,
    path = "/v1/auth/security-events",
    operation_id = "security_events",
    tag = "accounts",
    security(("bearerAuth" = [])),
    params(Page),
    responses(
        (status = 200, description = "One page of events, newest first.", body = Vec<dto::SecurityEvent>),
        (status = 400, description = "`limit` or `offset` out of range or not a whole number (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
        Unavailable,
    )
)]
async fn security_events(
    State(state): State<AppState>,
    Auth(principal): Auth,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<dto::SecurityEvent>>, AppError> {
    let Query(page) =
        page.map_err(|_| AppError::field("limit", "limit and offset must be whole numbers"))?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=events::MAX_PAGE_SIZE).contains(&limit) {
        return Err(AppError::field("limit", "must be between 1 and 100"));
    }
    let offset = page.offset.unwrap_or(0);
    if offset < 0 {
        return Err(AppError::field("offset", "must not be negative"));
    }
    let events = events::list(&state, principal.user_id, limit, offset).await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// Whether two-factor authentication is on, and counts of backup codes and devices.
#[utoipa::path(
    get,
    path = "/v1/auth/2fa/status",
    operation_id = "two_factor_status",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "`TwoFactorStatus`.", body = dto::Status), Unauthorized, Unavailable)
)]
async fn status(
    State(state): State<AppState>,
    Bearer(principal): Bearer,
) -> Result<Json<dto::Status>, AppError> {
    Ok(Json(two_factor::status(&state, &principal).await?.into()))
}

/// Body of `POST /v1/auth/2fa/setup`; the body may be left out or be `{}`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct SetupRequest {
    /// The account's password, when the sign-in is older than `fresh_second_factor_secs`:
    /// enrolment needs a recent authentication.
    #[schema(max_length = 1024, format = Password)]
    password: Option<String>,
}

/// Starts enrolment: a new pending secret (replacing an unconfirmed one) and its QR code.
/// Needs a recent authentication: a sign-in at most `fresh_second_factor_secs` ago, or the
/// `password`. The body may be left out; many clients send `{}` with every POST, so one is
/// read (all of it, so the connection stays usable) and, like every `/v1` body, may hold no
/// unknown field.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/setup",
    operation_id = "two_factor_setup",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body(content = Option<SetupRequest>, description = "May be left out, or `{}`.", content_type = "application/json"),
    responses(
        (status = 200, description = "The pending secret; confirm it with `verify-setup`.", body = dto::Setup),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`) or a wrong `password` (`invalid_credentials`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The sign-in is not recent and no `password` was sent (`reauthentication_required`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor authentication is already on (`two_factor_already_enabled`).", body = Problem, content_type = "application/problem+json"),
        AccountRateLimited,
        Unavailable,
    )
)]
async fn setup(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    OptionalJsonBody(mut f): OptionalJsonBody,
) -> Result<Json<dto::Setup>, AppError> {
    let password = dto::optional_password(&mut f, "password");
    f.finish(STRICT)?;
    Ok(Json(
        two_factor::setup(&state, principal, password, ctx)
            .await?
            .into(),
    ))
}

/// Body of `POST /v1/auth/2fa/verify-setup`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct VerifySetupRequest {
    /// A 6-digit code from the pending secret (spaces are ignored).
    #[schema(max_length = 32, pattern = "^[0-9]{6}$", example = "123456")]
    code: String,
    /// The account's password, when the sign-in is older than `fresh_second_factor_secs`.
    #[schema(max_length = 1024, format = Password)]
    password: Option<String>,
}

/// Two-factor authentication is on; the backup codes are shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TwoFactorEnabled {
    /// Always true.
    enabled: bool,
    /// 10 single-use codes, `xxxxx-xxxxx`.
    #[schema(example = json!(["7kq2m-x9d4p", "..."]))]
    backup_codes: Vec<String>,
}

/// Confirms the pending secret with a code, turns two-factor authentication on and returns
/// the backup codes once. Needs a recent authentication, as `setup` does.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/verify-setup",
    operation_id = "two_factor_verify_setup",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body = VerifySetupRequest,
    responses(
        (status = 200, description = "On, with the backup codes.", body = TwoFactorEnabled),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`), a wrong code (`invalid_code`) or a wrong `password` (`invalid_credentials`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The sign-in is not recent and no `password` was sent (`reauthentication_required`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already on (`two_factor_already_enabled`) or no pending setup (`no_pending_setup`).", body = Problem, content_type = "application/problem+json"),
        AccountRateLimited,
        Unavailable,
    )
)]
async fn verify_setup(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let code = dto::totp_code(&mut f, "code");
    let password = dto::optional_password(&mut f, "password");
    f.finish(STRICT)?;
    let code = code.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let codes = two_factor::verify_setup(&state, principal, code, password, ctx).await?;
    Ok(Json(TwoFactorEnabled {
        enabled: true,
        backup_codes: codes,
    })
    .into_response())
}

/// Body of `POST /v1/auth/2fa/verify`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct VerifyRequest {
    /// A 6-digit TOTP code or a backup code (`xxxxx-xxxxx`, case and dash insensitive).
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: String,
    /// Remember this device: later logins from it skip the second factor.
    trust_device: Option<TrustedDeviceInput>,
}

/// Signed in after the second factor; with `deviceToken` (shown once) and `trustedDevice`
/// when the device was trusted.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct VerifiedTokens {
    #[serde(flatten)]
    tokens: Tokens,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_device: Option<dto::TrustedDevice>,
}

/// The second step of login; its bearer is the `twoFactorToken`, not an access token.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/verify",
    operation_id = "two_factor_verify",
    tag = "two-factor",
    security(("twoFactorToken" = [])),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in.", body = VerifiedTokens),
        BodyErrors,
        (status = 401, description = "Missing, expired, used or dead `twoFactorToken` (`invalid_two_factor_token`) or a wrong code (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Authenticator codes are suspended after too many failures (`totp_suspended`); use a backup code.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The second factor is locked after repeated failures (`second_factor_locked`), or too many requests from this address (`rate_limited`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        Unavailable,
    )
)]
async fn verify(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    headers: HeaderMap,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let challenge = bearer_token(&headers).map(str::to_owned);
    let code = dto::code(&mut f, "code");
    let trust = f.optional_object("trustDevice").map(|mut nested| {
        let input = dto::device_input(&mut nested);
        f.absorb(nested, STRICT);
        input
    });
    f.finish(STRICT)?;
    let challenge = challenge.ok_or(AppError::InvalidTwoFactorToken)?;
    let code = code.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let trust = trust.flatten();
    let verified = two_factor::verify_login(&state, challenge, code, trust, ctx).await?;
    let (device_token, trusted_device) = match verified.device {
        Some((device, token)) => (Some(token), Some(device.into())),
        None => (None, None),
    };
    let body = VerifiedTokens {
        tokens: Tokens::new(verified.tokens, &verified.user),
        device_token,
        trusted_device,
    };
    Ok(Json(body).into_response())
}

/// Body of `POST /v1/auth/2fa/disable`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct DisableRequest {
    #[schema(format = Password, max_length = 1024, example = "correct horse battery staple")]
    password: String,
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Option<String>,
}

/// `{enabled: false}`.
#[derive(Serialize, ToSchema)]
struct TwoFactorDisabled {
    /// Always false.
    enabled: bool,
}

/// What a sensitive change to the second factor (turning it off, new backup codes, a new
/// trusted device) may answer besides its own errors.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum SensitiveChangeErrors {
    #[response(
        status = 403,
        description = "No fresh second factor (`reauthentication_required`) or authenticator codes suspended (`totp_suspended`).",
        content_type = "application/problem+json"
    )]
    NotFresh(Problem),
    #[response(
        status = 409,
        description = "Two-factor authentication is not on (`two_factor_not_enabled`).",
        content_type = "application/problem+json"
    )]
    NotEnabled(Problem),
    #[response(
        status = 429,
        description = "The second factor is locked (`second_factor_locked`), or too many writes by this account in a short time (`rate_limited`).",
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait."))
    )]
    Locked(Problem),
}

/// Turns two-factor authentication off: deletes the secret, the backup codes and the trusted
/// devices, and revokes the other sessions. A sensitive change.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/disable",
    operation_id = "two_factor_disable",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body = DisableRequest,
    responses(
        (status = 200, description = "Off.", body = TwoFactorDisabled),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`), wrong password (`invalid_credentials`) or wrong code (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        SensitiveChangeErrors,
        Unavailable,
    )
)]
async fn disable(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let password = dto::password(&mut f, "password");
    let code = dto::optional_code(&mut f, "code");
    f.finish(STRICT)?;
    let password = password.ok_or_else(|| AppError::internal("validated fields missing"))?;
    two_factor::disable(&state, principal, password, code, ctx).await?;
    Ok(Json(TwoFactorDisabled { enabled: false }).into_response())
}

/// How many backup codes are left.
#[utoipa::path(
    get,
    path = "/v1/auth/2fa/backup-codes",
    operation_id = "backup_codes",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Counts.", body = dto::BackupCodesSummary), Unauthorized, Unavailable)
)]
async fn backup_codes(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<dto::BackupCodesSummary>, AppError> {
    Ok(Json(
        two_factor::backup_codes_summary(&state, principal.user_id)
            .await?
            .into(),
    ))
}

/// Body of `POST /v1/auth/2fa/regenerate-backup-codes` (optional, as is the body itself).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct RegenerateRequest {
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Option<String>,
}

/// New backup codes, shown this once; the old ones stop working.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewBackupCodes {
    /// 10 single-use codes, `xxxxx-xxxxx`.
    backup_codes: Vec<String>,
    #[schema(format = DateTime)]
    generated_at: String,
}

/// Replaces the backup codes. A sensitive change.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/regenerate-backup-codes",
    operation_id = "regenerate_backup_codes",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body(content = Option<RegenerateRequest>, description = "May be left out.", content_type = "application/json"),
    responses(
        (status = 200, description = "The new codes.", body = NewBackupCodes),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`) or wrong code (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        SensitiveChangeErrors,
        Unavailable,
    )
)]
async fn regenerate_backup_codes(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    OptionalJsonBody(mut f): OptionalJsonBody,
) -> Result<Response, AppError> {
    let code = dto::optional_code(&mut f, "code");
    f.finish(STRICT)?;
    let (codes, at) = two_factor::regenerate_backup_codes(&state, principal, code, ctx).await?;
    Ok(Json(NewBackupCodes {
        backup_codes: codes,
        generated_at: rfc3339(at),
    })
    .into_response())
}

/// The account's live trusted devices.
#[utoipa::path(
    get,
    path = "/v1/auth/2fa/trusted-devices",
    operation_id = "list_trusted_devices",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "`[TrustedDevice]`.", body = Vec<dto::TrustedDevice>), Unauthorized, Unavailable)
)]
async fn list_devices(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<dto::TrustedDevice>>, AppError> {
    let devices = devices::list(&state, principal.user_id).await?;
    Ok(Json(devices.into_iter().map(Into::into).collect()))
}

/// Body of `POST /v1/auth/2fa/trusted-devices`: a `TrustedDeviceInput` and an optional code.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct AddDeviceRequest {
    #[schema(max_length = 200, example = "Ann laptop")]
    device_name: String,
    #[schema(max_length = 200, example = "desktop")]
    device_type: String,
    /// Free text describing the browser, stored as sent.
    #[schema(max_length = 200, example = "Firefox 128 on Linux")]
    browser_info: Option<String>,
    /// Accepted for compatibility and ignored: the device is recorded with the address
    /// the request comes from (see `TrustedDevice.ipAddress`). Any text, not checked.
    #[schema(max_length = 64, example = "203.0.113.7")]
    ip_address: Option<String>,
    /// Free text describing where the device is, stored as sent.
    #[schema(max_length = 200, example = "Berlin")]
    location: Option<String>,
    #[schema(max_length = 512, example = "fp-1f2e3d")]
    device_fingerprint: String,
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Option<String>,
}

/// A newly trusted device and its `deviceToken`, shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewTrustedDevice {
    #[serde(flatten)]
    device: dto::TrustedDevice,
    device_token: String,
}

/// Trusts the current device. A sensitive change.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/trusted-devices",
    operation_id = "add_trusted_device",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body = AddDeviceRequest,
    responses(
        (status = 201, description = "Trusted; present `deviceToken` with `deviceFingerprint` at login.", body = NewTrustedDevice),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`) or wrong code (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        SensitiveChangeErrors,
        Unavailable,
    )
)]
async fn add_device(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let input = dto::device_input(&mut f);
    let code = dto::optional_code(&mut f, "code");
    f.finish(STRICT)?;
    let input = input.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let (device, token) = devices::add(&state, principal, input, code, ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewTrustedDevice {
            device: device.into(),
            device_token: token,
        }),
    )
        .into_response())
}

/// `{removed: n}`.
#[derive(Serialize, ToSchema)]
struct RemovedDevices {
    #[schema(minimum = 0, example = 2)]
    removed: u64,
}

/// Removes every trusted device of the account.
#[utoipa::path(
    delete,
    path = "/v1/auth/2fa/trusted-devices",
    operation_id = "remove_all_trusted_devices",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "How many were removed.", body = RemovedDevices), Unauthorized, AccountRateLimited, Unavailable)
)]
async fn remove_all_devices(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
) -> Result<Response, AppError> {
    let removed = devices::remove_all(&state, principal.user_id, ctx).await?;
    Ok(Json(RemovedDevices { removed }).into_response())
}

/// Removes one trusted device.
#[utoipa::path(
    delete,
    path = "/v1/auth/2fa/trusted-devices/{deviceId}",
    operation_id = "remove_trusted_device",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    params(("deviceId" = Uuid, Path, description = "The device's `id`.")),
    responses(
        (status = 204, description = "Removed."),
        Unauthorized,
        (status = 404, description = "No such device of this account (`not_found`).", body = Problem, content_type = "application/problem+json"),
        AccountRateLimited,
        Unavailable,
    )
)]
async fn remove_device(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    Path(device_id): Path<String>,
) -> Result<StatusCode, AppError> {
    // An id that is not a UUID cannot be this user's device: the same 404.
    let device_id = Uuid::parse_str(&device_id).map_err(|_| AppError::NotFound)?;
    devices::remove_one(&state, principal.user_id, device_id, ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
