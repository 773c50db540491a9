//! `/v1/auth`: registration, sign-in, tokens, the account and its security events
//! (OpenAPI tag `accounts`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::rfc3339;
use crate::domain::validate;
use crate::error::AppError;
use crate::http::body::{
    self, BodyContext, Email, Field, Optional, Password, PhoneNumber, UserName,
};
use crate::http::dto::{self, Tokens, User};
use crate::http::extract::{
    Auth, Body, Client, OptionalBody, Page, Paging, SigningOut, UncheckedBody, strict_context,
};
use crate::http::problem::Problem;
use crate::http::ratelimit::RateLimit;
use crate::http::responses::{
    AccountNameTaken, BodyErrors, PagingErrors, RateLimited, SessionRateLimited, Unauthorized,
    Unavailable,
};
use crate::service::accounts::{self, LoginOutcome, Registration};
use crate::service::{events, sessions};
use crate::state::AppState;
use garde::Validate;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(set_password))
        .routes(routes!(security_events))
}

/// Body of `POST /v1/auth/register`, as [`register`] reads it.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RegisterRequest {
    #[garde(dive)]
    #[schema(value_type = String, format = Email, max_length = 254, example = "ann@example.com")]
    email: Field<Email>,
    /// At least 8 characters (after NFKC), at most 1024 bytes; anything else is allowed, but
    /// not a commonly used or breached password, nor one built on the email, the user name
    /// or the service's name.
    #[garde(dive, custom(|p, ctx| body::new_password_rule(p, self.email.get(), self.user_name.get(), ctx)))]
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024, example = "correct horse battery staple")]
    password: Field<Password>,
    /// 3 to 254 of letters, digits and `. _ - +`, and not a UUID (a user name must not be
    /// mistaken for an email or an account id); defaults to the email.
    #[garde(dive)]
    #[schema(
        value_type = Option<String>,
        min_length = 3,
        max_length = 254,
        pattern = "^[A-Za-z0-9._+-]+$",
        example = "ann"
    )]
    user_name: Optional<UserName>,
    /// Digits with `+ - ( ) .` and spaces; at least 5 digits.
    #[garde(dive)]
    #[schema(
        value_type = Option<String>,
        max_length = 32,
        pattern = "^[0-9+() .-]+$",
        example = "+1 555 010 9999"
    )]
    phone_number: Optional<PhoneNumber>,
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
        AccountNameTaken,
        RateLimited,
        Unavailable,
    )
)]
async fn register(
    State(state): State<AppState>,
    _limit: RateLimit,
    Body(body): Body<RegisterRequest>,
) -> Result<Response, AppError> {
    let user = accounts::register(
        &state,
        Registration {
            email: body.email.into_valid()?.into_string(),
            password: body.password.into_valid()?.into_secret(),
            user_name: body.user_name.into_option().map(UserName::into_string),
            phone_number: body
                .phone_number
                .into_option()
                .map(PhoneNumber::into_string),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(User::from(&user))).into_response())
}

/// Body of `POST /v1/auth/login`, as [`login`] reads it. One of `email` and `userName` is
/// required.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct LoginRequest {
    /// The account's email (or give `userName`).
    #[garde(dive, custom(|_, _| dto::identifier_rule(&self.email, &self.user_name)))]
    #[schema(value_type = Option<String>, format = Email, max_length = 264, example = "ann@example.com")]
    email: Optional<dto::LoginName>,
    /// The account's user name (or give `email`).
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 264, example = "ann")]
    user_name: Optional<dto::LoginName>,
    #[garde(dive)]
    #[schema(value_type = String, format = Password, max_length = 1024, example = "correct horse battery staple")]
    password: Field<Password>,
    /// A trusted device's token: with its `deviceFingerprint`, skips the second factor.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 512)]
    device_token: Optional<dto::Token>,
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 512, example = "fp-1f2e3d")]
    device_fingerprint: Optional<dto::Token>,
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

/// A login of an account that must have a second factor and has none: enrol an
/// authenticator with `POST /v1/auth/2fa/setup` and `POST /v1/auth/2fa/verify-setup`, with
/// the `enrollmentToken` as bearer; the confirmation signs in.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EnrollmentRequired {
    /// Always true here: not signed in yet.
    #[serde(rename = "requires2FA")]
    requires_2fa: bool,
    /// Always true here.
    requires_enrollment: bool,
    /// Opaque, valid for `totp_setup_ttl_secs` (10 minutes); allows TOTP enrolment only.
    #[schema(example = "Zt4pW1sQ...")]
    enrollment_token: String,
    #[schema(format = DateTime)]
    enrollment_token_expiry: String,
    /// Second factors that may be enrolled: `totp`, `passkey`.
    #[schema(example = json!(["totp", "passkey"]))]
    methods: Vec<&'static str>,
}

/// `LoginResult`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum LoginResult {
    SignedIn(SignedIn),
    SecondFactorRequired(SecondFactorRequired),
    EnrollmentRequired(EnrollmentRequired),
}

/// Checks a password: signs in, or asks for the second factor.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    operation_id = "login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; or `requires2FA: true` with a `twoFactorToken`; or, for an account that must have a second factor and has none, `requiresEnrollment: true` with an `enrollmentToken`.", body = LoginResult),
        BodyErrors,
        (status = 401, description = "Unknown account, wrong password or throttled account: all `invalid_credentials`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The right password of an account an administrator disabled (`account_disabled`).", body = Problem, content_type = "application/problem+json"),
        RateLimited,
        Unavailable,
    )
)]
async fn login(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    Body(body): Body<LoginRequest>,
) -> Result<Json<LoginResult>, AppError> {
    let outcome = accounts::login(
        &state,
        accounts::Login {
            identifier: dto::identifier(body.email, body.user_name)?,
            password: body.password.into_valid()?.into_secret(),
            device_token: body.device_token.into_option().map(|t| t.0),
            device_fingerprint: body.device_fingerprint.into_option().map(|t| t.0),
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
        LoginOutcome::EnrolmentRequired { token, expires_at } => {
            LoginResult::EnrollmentRequired(EnrollmentRequired {
                requires_2fa: true,
                requires_enrollment: true,
                enrollment_token: token,
                enrollment_token_expiry: rfc3339(expires_at),
                methods: vec!["totp", "passkey"],
            })
        }
    }))
}

/// Body of `POST /v1/auth/refresh`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RefreshRequest {
    #[garde(dive)]
    #[schema(value_type = String, max_length = 512, example = "m2Vb7cQx...")]
    refresh_token: Field<dto::Token>,
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
    Body(body): Body<RefreshRequest>,
) -> Result<Json<Tokens>, AppError> {
    let token = body.refresh_token.into_valid()?.0;
    let (tokens, user) = sessions::refresh(&state, token, ctx).await?;
    Ok(Json(Tokens::new(tokens, &user)))
}

/// Body of `POST /v1/auth/logout` (optional, as is the body itself).
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct LogoutRequest {
    /// The session's refresh token; the session of the access token is ended either way.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 512)]
    refresh_token: Optional<dto::Token>,
}

/// Ends the caller's session. Not subject to the write limit (see [`SigningOut`]).
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
        Unavailable,
    )
)]
async fn logout(
    State(state): State<AppState>,
    SigningOut(principal): SigningOut,
    Client(ctx): Client,
    Body(body): OptionalBody<LogoutRequest>,
) -> Result<StatusCode, AppError> {
    let token = body.refresh_token.into_option().map(|t| t.0);
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
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct ChangePasswordRequest {
    #[garde(dive)]
    #[schema(value_type = String, format = Password, max_length = 1024, example = "correct horse battery staple")]
    current_password: Field<Password>,
    /// At least 8 characters (after NFKC), at most 1024 bytes; not a commonly used or
    /// breached password, nor one built on the email, the user name or the service's name.
    #[garde(dive, custom(|p, ctx| body::new_password_rule(p, None, None, ctx)))]
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024, example = "staple battery horse correct")]
    new_password: Field<Password>,
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
        SessionRateLimited,
        Unavailable,
    )
)]
async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    UncheckedBody(body): UncheckedBody<ChangePasswordRequest>,
) -> Result<StatusCode, AppError> {
    // The new password must not be built on the account's own email or user name.
    let user = accounts::reload(&state, principal.user_id).await?;
    let rules = BodyContext {
        account_words: validate::password_context(
            &user.email,
            Some(&user.user_name),
            &state.config.issuer,
        ),
        ..strict_context(&state)
    };
    let body = body.check(&rules)?;
    let current = body.current_password.into_valid()?.into_secret();
    let new = body.new_password.into_valid()?.into_secret();
    accounts::change_password(&state, principal, current, new, ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/auth/set-password`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct SetPasswordRequest {
    /// The `setPasswordToken` an administrator received when creating the account without
    /// a password (single use).
    #[garde(dive)]
    #[schema(value_type = String, max_length = 512, example = "Xb3kq9...")]
    token: Field<dto::Token>,
    /// At least 8 characters (after NFKC), at most 1024 bytes; not a commonly used or
    /// breached password, nor one built on the email, the user name or the service's name.
    #[garde(dive, custom(|p, ctx| body::new_password_rule(p, None, None, ctx)))]
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024, example = "staple battery horse correct")]
    new_password: Field<Password>,
}

/// Sets the password of an account created without one, with its single-use link token.
#[utoipa::path(
    post,
    path = "/v1/auth/set-password",
    operation_id = "set_password",
    tag = "accounts",
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "The password is set; sign in with it."),
        BodyErrors,
        (status = 401, description = "Unknown, expired or used token (`invalid_set_password_token`).", body = Problem, content_type = "application/problem+json"),
        RateLimited,
        Unavailable,
    )
)]
async fn set_password(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    Body(body): Body<SetPasswordRequest>,
) -> Result<StatusCode, AppError> {
    let token = body.token.into_valid()?.0;
    let new = body.new_password.into_valid()?.into_secret();
    accounts::set_password_with_link(&state, token, new, ctx).await?;
    Ok(StatusCode::NO_CONTENT)
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
        PagingErrors,
        Unauthorized,
        Unavailable,
    )
)]
async fn security_events(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Paging { limit, offset }: Paging,
) -> Result<Json<Vec<dto::SecurityEvent>>, AppError> {
    let events = events::list(&state, principal.user_id, limit, offset).await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}
