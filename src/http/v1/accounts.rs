//! `/v1/auth`: registration, sign-in, tokens, the account and its security events
//! (OpenAPI tag `accounts`).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::STRICT;
use crate::clock::rfc3339;
use crate::domain::validate;
use crate::error::AppError;
use crate::http::dto::{self, Tokens, User};
use crate::http::extract::{Auth, Client, JsonBody, OptionalJsonBody};
use crate::http::problem::Problem;
use crate::http::ratelimit::RateLimit;
use crate::http::responses::{
    AccountRateLimited, BodyErrors, RateLimited, Unauthorized, Unavailable,
};
use crate::service::accounts::{self, LoginOutcome, Registration};
use crate::service::{events, sessions};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(security_events))
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
    /// Second factors accepted: `totp` (with an authenticator app), `passkey` (with a
    /// passkey: `POST /v1/auth/passkeys/verify/start`) and `backup_code`.
    #[schema(example = json!(["totp", "passkey", "backup_code"]))]
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
    let identifier = dto::identifier(&mut f);
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
        LoginOutcome::SecondFactorRequired {
            token,
            expires_at,
            methods,
        } => LoginResult::SecondFactorRequired(SecondFactorRequired {
            requires_2fa: true,
            two_factor_token: token,
            two_factor_token_expiry: rfc3339(expires_at),
            methods,
        }),
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
