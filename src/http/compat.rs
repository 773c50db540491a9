//! The Sapfiai compatibility surface under `/authentication`: the same core as `/v1`,
//! answered in Sapfiai's envelopes field for field, so its clients work unchanged.
//! Unknown request fields are ignored here, as the original API did.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto;
use super::extract::{Client, Fields, JsonBody, bearer_token};
use super::problem::Problem;
use super::ratelimit::{RateLimit, limit_account_write};
use super::responses::RateLimited;
use crate::clock::rfc3339;
use crate::domain::second_factor::SecondFactorCode;
use crate::domain::validate;
use crate::error::AppError;
use crate::service::accounts::{self, Account, LoginOutcome};
use crate::service::sessions::{self, IssuedTokens};
use crate::service::two_factor;
use crate::state::AppState;

const LENIENT: bool = false;

/// The `/authentication` routes, each registered with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(verify_2fa))
        .routes(routes!(refresh_token))
        .routes(routes!(enable_2fa))
}

/// Sapfiai's `user`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CompatUser)]
struct CompatUser {
    id: Uuid,
    #[schema(format = Email, example = "ada@example.com")]
    email: String,
    user_name: String,
    #[schema(required = true)]
    phone_number: Option<String>,
    two_factor_enabled: bool,
    #[schema(required = true, format = DateTime)]
    last_login_date: Option<String>,
    #[schema(required = true, example = "203.0.113.7")]
    last_login_ip: Option<String>,
}

impl From<&Account> for CompatUser {
    fn from(u: &Account) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            user_name: u.user_name.clone(),
            phone_number: u.phone_number.clone(),
            two_factor_enabled: u.two_factor_enabled,
            last_login_date: u.last_login_at.map(rfc3339),
            last_login_ip: u.last_login_ip.clone(),
        }
    }
}

/// Sapfiai's answer of `login`, `verify-2fa` and `refresh-token` when they succeed. While
/// `requires2FA` is true (login only), `token` is the temporary token for `verify-2fa` and
/// `refreshToken`, `refreshTokenExpiry` and `user` are null.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SignInEnvelope {
    /// Always true here.
    success: bool,
    /// Present on `login` only.
    #[serde(rename = "requires2FA", skip_serializing_if = "Option::is_none")]
    requires_2fa: Option<bool>,
    /// The access token (a JWT), or the temporary token while `requires2FA` is true.
    #[schema(example = "eyJhbGciOiJFZERTQSIs...")]
    token: String,
    #[schema(required = true, example = "m2Vb7c...")]
    refresh_token: Option<String>,
    #[schema(required = true, format = DateTime)]
    refresh_token_expiry: Option<String>,
    #[schema(required = true)]
    user: Option<CompatUser>,
    #[schema(example = "Login successful")]
    message: String,
    /// Always null here.
    #[schema(required = true, value_type = Option<Vec<String>>)]
    errors: Option<Vec<String>>,
}

/// Sapfiai's failure answer of `login`, `verify-2fa` and `refresh-token`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"success": false, "token": null, "refreshToken": null, "user": null,
    "message": "2FA verification failed", "errors": ["Invalid two-factor authentication code"]}))]
struct FailureEnvelope {
    /// Always false.
    success: bool,
    /// Always null.
    #[schema(required = true)]
    token: Option<String>,
    /// Always null.
    #[schema(required = true)]
    refresh_token: Option<String>,
    /// Always null.
    #[schema(required = true, value_type = Option<CompatUser>)]
    user: Option<()>,
    /// Names the operation that failed: `Login failed`, `2FA verification failed`, `Token refresh failed`.
    message: String,
    /// Why.
    errors: Vec<String>,
}

/// `{success: false, token: null, refreshToken: null, user: null, message, errors}`.
fn failure(status: StatusCode, message: &str, errors: Vec<String>) -> Response {
    let body = FailureEnvelope {
        success: false,
        token: None,
        refresh_token: None,
        user: None,
        message: message.to_owned(),
        errors,
    };
    (status, Json(body)).into_response()
}

/// Maps a core error to the envelope, under `message` for the operation that failed.
fn envelope_error(err: AppError, message: &str) -> Response {
    let status = super::problem::status_of(&err);
    let errors: Vec<String> = match &err {
        AppError::Validation(fields) => fields
            .iter()
            .flat_map(|(field, msgs)| msgs.iter().map(move |m| format!("{field} {m}")))
            .collect(),
        AppError::InvalidCode => vec!["Invalid two-factor authentication code".into()],
        AppError::InvalidTwoFactorToken => vec!["Invalid or expired two-factor token".into()],
        AppError::InvalidCredentials => vec!["Invalid email or password".into()],
        AppError::InvalidRefreshToken => vec!["Invalid or expired refresh token".into()],
        AppError::SecondFactorLocked { retry_after_secs } => {
            vec![format!(
                "Too many failed attempts. Try again in {retry_after_secs} seconds."
            )]
        }
        AppError::TotpSuspended => {
            vec!["Authenticator codes are suspended after too many failures".into()]
        }
        AppError::MalformedJson(_) => vec!["The request body is not valid JSON".into()],
        AppError::UnsupportedMediaType => vec!["Send the body as application/json".into()],
        AppError::PayloadTooLarge => vec!["The request body must be at most 64 KiB".into()],
        AppError::Unavailable => vec!["Service temporarily unavailable".into()],
        AppError::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            vec!["An unexpected error occurred".into()]
        }
        other => vec![other.to_string()],
    };
    let mut response = failure(status, message, errors);
    if let AppError::SecondFactorLocked { retry_after_secs } = err {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

/// A JSON body, with body-level failures answered in the envelope.
async fn body(req: Request, state: &AppState, message: &str) -> Result<Fields, Response> {
    JsonBody::from_request(req, state)
        .await
        .map(|JsonBody(f)| f)
        .map_err(|e| envelope_error(e, message))
}

fn signed_in(
    tokens: IssuedTokens,
    user: &Account,
    message: &str,
    with_requires_2fa: bool,
) -> Response {
    Json(SignInEnvelope {
        success: true,
        requires_2fa: with_requires_2fa.then_some(false),
        token: tokens.access_token,
        refresh_token: Some(tokens.refresh_token),
        refresh_token_expiry: Some(rfc3339(tokens.refresh_token_expires_at)),
        user: Some(CompatUser::from(user)),
        message: message.to_owned(),
        errors: None,
    })
    .into_response()
}

/// Body of `POST /authentication/login`: `email` or `userName`, and `password`. Unknown
/// fields are ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct CompatLoginRequest {
    #[schema(format = Email, max_length = 264, example = "ada@example.com")]
    email: Option<String>,
    #[schema(max_length = 264)]
    user_name: Option<String>,
    #[schema(format = Password, max_length = 1024, example = "correct horse battery staple")]
    password: String,
}

/// What a Sapfiai route that reads a body may answer before its handler runs: the
/// failure envelope (the timeout layer answers with a problem document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum EnvelopeBodyErrors {
    #[response(
        status = 408,
        description = "The request did not complete in time.",
        content_type = "application/problem+json"
    )]
    Timeout(Problem),
    #[response(status = 413, description = "The body is over 64 KiB.")]
    TooLarge(FailureEnvelope),
    #[response(status = 415, description = "The body is not `application/json`.")]
    NotJson(FailureEnvelope),
}

/// 503 in the failure envelope.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum EnvelopeUnavailable {
    #[response(status = 503, description = "The database is unreachable.")]
    Unavailable(FailureEnvelope),
}

/// Sapfiai's login: signs in, or answers `requires2FA: true` with a temporary token.
#[utoipa::path(
    post,
    path = "/authentication/login",
    operation_id = "compat_login",
    tag = "sapfiai",
    request_body = CompatLoginRequest,
    responses(
        (status = 200, description = "Signed in, or `requires2FA: true`.", body = SignInEnvelope),
        (status = 400, description = "A missing or invalid field, or malformed JSON.", body = FailureEnvelope),
        (status = 401, description = "Wrong email, user name or password.", body = FailureEnvelope),
        EnvelopeBodyErrors,
        RateLimited,
        EnvelopeUnavailable,
    )
)]
async fn login(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    req: Request,
) -> Response {
    const FAILED: &str = "Login failed";
    let mut f = match body(req, &state, FAILED).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let identifier = dto::identifier(&mut f);
    let password = dto::password(&mut f, "password");
    if let Err(e) = f.finish(LENIENT) {
        return envelope_error(e, FAILED);
    }
    let (Some(identifier), Some(password)) = (identifier, password) else {
        return envelope_error(AppError::internal("validated fields missing"), FAILED);
    };
    let login = accounts::Login {
        identifier,
        password,
        device_token: None,
        device_fingerprint: None,
    };
    match accounts::login(&state, login, ctx).await {
        Ok(LoginOutcome::SignedIn(tokens, user)) => {
            signed_in(tokens, &user, "Login successful", true)
        }
        Ok(LoginOutcome::SecondFactorRequired { token, .. }) => Json(SignInEnvelope {
            success: true,
            requires_2fa: Some(true),
            token,
            refresh_token: None,
            refresh_token_expiry: None,
            user: None,
            message: "Two-factor authentication required".to_owned(),
            errors: None,
        })
        .into_response(),
        Err(e) => envelope_error(e, FAILED),
    }
}

/// Body of `POST /authentication/verify-2fa`. Unknown fields are ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct CompatVerifyRequest {
    /// Exactly 6 digits (backup codes are accepted on `/v1/auth/2fa/verify`).
    #[schema(max_length = 32, pattern = "^[0-9]{6}$", example = "123456")]
    code: String,
    /// The temporary token from a login that answered `requires2FA: true`.
    #[schema(max_length = 512, example = "q8Jx0tN3...")]
    token: String,
}

/// Sapfiai's second step: the temporary token and a 6-digit code.
#[utoipa::path(
    post,
    path = "/authentication/verify-2fa",
    operation_id = "compat_verify_2fa",
    tag = "sapfiai",
    request_body = CompatVerifyRequest,
    responses(
        (status = 200, description = "Signed in.", body = SignInEnvelope),
        (status = 400, description = "A missing or invalid field (`code` must be exactly 6 digits), or malformed JSON; not counted as a try.", body = FailureEnvelope),
        (status = 401, description = "Wrong code, or an expired, used or dead temporary token.", body = FailureEnvelope),
        (status = 403, description = "Authenticator codes are suspended after too many failures.", body = FailureEnvelope),
        EnvelopeBodyErrors,
        (status = 429, description = "The second factor is locked (the envelope), or too many requests from this address (a problem document, `rate_limited`).",
            content((FailureEnvelope = "application/json"), (Problem = "application/problem+json")),
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        EnvelopeUnavailable,
    )
)]
async fn verify_2fa(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    req: Request,
) -> Response {
    const FAILED: &str = "2FA verification failed";
    let mut f = match body(req, &state, FAILED).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let code = f.required_string("code", dto::MAX_CODE);
    let token = f.required_string("token", dto::MAX_TOKEN);
    let code = code.and_then(|c| {
        let exact = c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit());
        if !exact {
            f.error("code", "must be exactly 6 digits");
        }
        exact.then_some(c)
    });
    if f.has_errors()
        && let Err(e) = f.finish(LENIENT)
    {
        return envelope_error(e, FAILED);
    }
    let (Some(code), Some(token)) = (code, token) else {
        return envelope_error(AppError::internal("validated fields missing"), FAILED);
    };
    match two_factor::verify_login(&state, token, SecondFactorCode::Totp(code), None, ctx).await {
        Ok(verified) => signed_in(
            verified.tokens,
            &verified.user,
            "2FA verification successful",
            false,
        ),
        Err(e) => envelope_error(e, FAILED),
    }
}

/// Body of `POST /authentication/refresh-token`. Unknown fields are ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct CompatRefreshRequest {
    #[schema(max_length = 512, example = "m2Vb7c...")]
    refresh_token: String,
}

/// Sapfiai's refresh: a new pair; the refresh token sent is retired.
#[utoipa::path(
    post,
    path = "/authentication/refresh-token",
    operation_id = "compat_refresh_token",
    tag = "sapfiai",
    request_body = CompatRefreshRequest,
    responses(
        (status = 200, description = "A new token pair.", body = SignInEnvelope),
        (status = 400, description = "A missing or invalid field, or malformed JSON.", body = FailureEnvelope),
        (status = 401, description = "Unknown, expired, retired or revoked refresh token.", body = FailureEnvelope),
        EnvelopeBodyErrors,
        RateLimited,
        EnvelopeUnavailable,
    )
)]
async fn refresh_token(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    req: Request,
) -> Response {
    const FAILED: &str = "Token refresh failed";
    let mut f = match body(req, &state, FAILED).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let token = f.required_string("refreshToken", dto::MAX_TOKEN);
    if let Err(e) = f.finish(LENIENT) {
        return envelope_error(e, FAILED);
    }
    let Some(token) = token else {
        return envelope_error(AppError::internal("validated fields missing"), FAILED);
    };
    match sessions::refresh(&state, token, ctx).await {
        Ok((tokens, user)) => signed_in(tokens, &user, "Token refreshed successfully", false),
        Err(e) => envelope_error(e, FAILED),
    }
}

/// Sapfiai's `Result`: `{isSuccess, succeeded, error: {code, description}, errors}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"isSuccess": true, "succeeded": true, "error": {"code": "", "description": ""}, "errors": []}))]
struct ResultEnvelope {
    is_success: bool,
    /// The same as `isSuccess`.
    succeeded: bool,
    error: ResultError,
    /// Field messages on `Validation.Failed`; otherwise empty.
    errors: Vec<String>,
}

/// Empty strings on success (Sapfiai's `Error.None`).
#[derive(Serialize, ToSchema)]
struct ResultError {
    /// `Validation.Failed`, `User.EmailMismatch`, `User.InvalidPassword`, `TwoFactor.NoAuthenticator`,
    /// `TwoFactor.ReauthenticationRequired`, `TwoFactor.InvalidCode`, `TwoFactor.Locked`,
    /// `TwoFactor.Suspended`, `Request.Invalid`, `Service.Unavailable`, or empty.
    #[schema(example = "TwoFactor.NoAuthenticator")]
    code: String,
    description: String,
}

/// `{isSuccess, succeeded, error: {code, description}, errors}`; success carries the
/// empty error, as Sapfiai's `Error.None`.
fn result(status: StatusCode, error: Option<(&str, &str)>, errors: Vec<String>) -> Response {
    let (code, description) = error.unwrap_or(("", ""));
    let ok = error.is_none();
    let body = ResultEnvelope {
        is_success: ok,
        succeeded: ok,
        error: ResultError {
            code: code.to_owned(),
            description: description.to_owned(),
        },
        errors,
    };
    (status, Json(body)).into_response()
}

/// The problem document the contract fixes for a missing or bad bearer token on
/// `/authentication/enable-2fa` (no `code` member).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "https://tools.ietf.org/html/rfc7235#section-3.1", "title": "Unauthorized",
    "status": 401, "detail": "Authorization token is missing or invalid"}))]
struct BearerProblem {
    #[serde(rename = "type")]
    problem_type: &'static str,
    title: &'static str,
    status: u16,
    detail: &'static str,
}

/// The problem document the contract fixes for a missing or bad bearer token here.
fn unauthorized() -> Response {
    let body = BearerProblem {
        problem_type: "https://tools.ietf.org/html/rfc7235#section-3.1",
        title: "Unauthorized",
        status: 401,
        detail: "Authorization token is missing or invalid",
    };
    (
        StatusCode::UNAUTHORIZED,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(super::problem::PROBLEM_JSON),
            ),
            (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
        ],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}

/// Body of `POST /authentication/enable-2fa`. Unknown fields are ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Enable2faRequest {
    /// The caller's own email.
    #[schema(format = Email, max_length = 300, example = "ada@example.com")]
    email: String,
    #[schema(format = Password, min_length = 6, max_length = 1024, example = "correct horse battery staple")]
    password: String,
    /// true turns two-factor authentication on (needs a confirmed authenticator); false
    /// turns it off and keeps the authenticator.
    #[schema(example = false)]
    enable: bool,
    /// A TOTP or backup code: turning it off needs a second factor from the last 10 minutes.
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Option<String>,
}

/// Sapfiai's switch for two-factor authentication.
#[utoipa::path(
    post,
    path = "/authentication/enable-2fa",
    operation_id = "compat_enable_2fa",
    tag = "sapfiai",
    security(("bearerAuth" = [])),
    request_body = Enable2faRequest,
    responses(
        (status = 200, description = "Done.", body = ResultEnvelope),
        (status = 400, description = "`Validation.Failed`, `Request.Invalid`, `User.InvalidPassword`, `TwoFactor.NoAuthenticator` or `TwoFactor.InvalidCode`.", body = ResultEnvelope),
        (status = 401, description = "A missing or invalid bearer token.", body = BearerProblem, content_type = "application/problem+json"),
        (status = 403, description = "`User.EmailMismatch`, `TwoFactor.ReauthenticationRequired` or `TwoFactor.Suspended`.", body = ResultEnvelope),
        (status = 408, description = "The request did not complete in time.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB (`Request.Invalid`).", body = ResultEnvelope),
        (status = 415, description = "The body is not `application/json` (`Request.Invalid`).", body = ResultEnvelope),
        (status = 429, description = "The second factor is locked (`TwoFactor.Locked`, the envelope), or too many requests from this address or writes by this account (a problem document, `rate_limited`).",
            content((ResultEnvelope = "application/json"), (Problem = "application/problem+json")),
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The database is unreachable (`Service.Unavailable`).", body = ResultEnvelope),
    )
)]
async fn enable_2fa(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let principal = match bearer_token(&headers) {
        Some(token) => match sessions::authenticate(&state, token).await {
            Ok(p) => match limit_account_write(req.method(), req.extensions(), p.user_id) {
                Ok(()) => p,
                Err(limited) => return limited.into_response(),
            },
            Err(AppError::Unavailable) => {
                return result(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some((
                        "Service.Unavailable",
                        "The database is unreachable; try again shortly.",
                    )),
                    vec![],
                );
            }
            Err(_) => return unauthorized(),
        },
        None => return unauthorized(),
    };
    let mut f = match JsonBody::from_request(req, &state).await {
        Ok(JsonBody(f)) => f,
        Err(e) => {
            let status = super::problem::status_of(&e);
            return result(
                status,
                Some(("Request.Invalid", "The request body must be a JSON object.")),
                vec![e.to_string()],
            );
        }
    };
    let email = f.required_string("email", 300);
    let password = f.required_string("password", dto::MAX_PASSWORD);
    let enable = f.required_bool("enable");
    let code = dto::optional_code(&mut f, "code");
    let mut problems: Vec<String> = Vec::new();
    if let Some(p) = &password
        && p.chars().count() < 6
    {
        problems.push("Password must be at least 6 characters.".into());
    }
    if let Err(AppError::Validation(fields)) = f.finish(LENIENT) {
        problems.extend(
            fields
                .iter()
                .flat_map(|(k, v)| v.iter().map(move |m| format!("{k} {m}"))),
        );
    }
    let (Some(email), Some(password), Some(enable)) = (email, password, enable) else {
        return result(
            StatusCode::BAD_REQUEST,
            Some(("Validation.Failed", "One or more fields are invalid.")),
            problems,
        );
    };
    if !problems.is_empty() {
        return result(
            StatusCode::BAD_REQUEST,
            Some(("Validation.Failed", "One or more fields are invalid.")),
            problems,
        );
    }
    let user = match accounts::reload(&state, principal.user_id).await {
        Ok(u) => u,
        Err(_) => return unauthorized(),
    };
    if user.email != validate::email_key(&email) {
        return result(
            StatusCode::FORBIDDEN,
            Some((
                "User.EmailMismatch",
                "The email does not belong to the signed-in user.",
            )),
            vec![],
        );
    }
    let password = secrecy::SecretString::from(password);
    match two_factor::set_enabled(&state, principal, password, enable, code, ctx).await {
        Ok(()) => result(StatusCode::OK, None, vec![]),
        Err(e) => {
            let (code, description) = match &e {
                AppError::InvalidCredentials => {
                    ("User.InvalidPassword", "The password is not correct.")
                }
                AppError::NoAuthenticator => (
                    "TwoFactor.NoAuthenticator",
                    "No authenticator has been confirmed for this account; set one up first.",
                ),
                AppError::ReauthenticationRequired => (
                    "TwoFactor.ReauthenticationRequired",
                    "Turning two-factor authentication off needs a second factor from the last 10 minutes: send a `code`.",
                ),
                AppError::InvalidCode => (
                    "TwoFactor.InvalidCode",
                    "The code is not valid for this account.",
                ),
                AppError::SecondFactorLocked { .. } => (
                    "TwoFactor.Locked",
                    "Too many failed codes; try again later.",
                ),
                AppError::TotpSuspended => (
                    "TwoFactor.Suspended",
                    "Authenticator codes are suspended; use a backup code.",
                ),
                AppError::Unavailable => (
                    "Service.Unavailable",
                    "The database is unreachable; try again shortly.",
                ),
                _ => {
                    if let AppError::Internal(detail) = &e {
                        tracing::error!(error = %detail, "internal error");
                    }
                    ("Server.Error", "An unexpected error occurred.")
                }
            };
            let status = match &e {
                AppError::InvalidCredentials
                | AppError::InvalidCode
                | AppError::NoAuthenticator => StatusCode::BAD_REQUEST,
                other => super::problem::status_of(other),
            };
            let mut response = result(status, Some((code, description)), vec![]);
            if let AppError::SecondFactorLocked { retry_after_secs } = e {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            response
        }
    }
}
