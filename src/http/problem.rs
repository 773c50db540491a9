//! RFC 9457 problem documents: how every failure on `/v1` and the operational routes is
//! answered. Internal errors are logged here, once, and answered without detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document, as every failure on `/v1` and the operational routes is
/// answered (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/validation-failed", "title": "Validation failed", "status": 400,
    "detail": "One or more fields are invalid.", "code": "validation_failed",
    "errors": {"email": ["must be an email address"]}
}))]
pub struct Problem {
    /// A URI reference naming the kind of problem: `/problems/<code with dashes>`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/invalid-code")]
    pub problem_type: String,
    /// A short, human-readable summary of the kind of problem.
    #[schema(example = "Invalid code")]
    pub title: String,
    /// The HTTP status code, repeated.
    #[schema(example = 401, minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// A stable machine-readable name of the problem, in snake_case.
    #[schema(example = "invalid_code", pattern = "^[a-z][a-z0-9_]*$")]
    pub code: String,
    /// Field name -> messages; present on validation failures only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
}

pub fn status_of(err: &AppError) -> StatusCode {
    match err {
        AppError::Validation(_) | AppError::MalformedJson(_) => StatusCode::BAD_REQUEST,
        AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        AppError::AlreadyExists(_)
        | AppError::TwoFactorAlreadyEnabled
        | AppError::TwoFactorNotEnabled
        | AppError::NoPendingSetup
        | AppError::NoAuthenticator
        | AppError::NoPasskey
        | AppError::InvalidCeremony
        | AppError::NotificationBusy => StatusCode::CONFLICT,
        AppError::InvalidPasskey => StatusCode::UNAUTHORIZED,
        AppError::AuthenticatorNotAllowed => StatusCode::FORBIDDEN,
        AppError::InvalidCredentials
        | AppError::Unauthenticated
        | AppError::InvalidRefreshToken
        | AppError::InvalidTwoFactorToken
        | AppError::InvalidCode
        | AppError::InvalidApiKey
        | AppError::InvalidSetPasswordToken => StatusCode::UNAUTHORIZED,
        AppError::SecondFactorLocked { .. } | AppError::RateLimited { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        AppError::TotpSuspended
        | AppError::ReauthenticationRequired
        | AppError::Forbidden
        | AppError::InsufficientScope(_)
        | AppError::AccountDisabled
        | AppError::RegistrationClosed => StatusCode::FORBIDDEN,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Timeout => StatusCode::REQUEST_TIMEOUT,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn title_and_detail(err: &AppError) -> (&'static str, String) {
    match err {
        AppError::Validation(_) => ("Validation failed", "One or more fields are invalid.".into()),
        AppError::MalformedJson(reason) => ("Malformed JSON", format!("The request body is not valid JSON: {reason}.")),
        AppError::UnsupportedMediaType => ("Unsupported media type", "Send the body as application/json.".into()),
        AppError::PayloadTooLarge => ("Payload too large", "The request body must be at most 64 KiB.".into()),
        AppError::NotFound => ("Not found", "There is nothing here.".into()),
        AppError::MethodNotAllowed => ("Method not allowed", "This route does not accept that method.".into()),
        AppError::AlreadyExists(field) => ("Already exists", format!("An account with this {field} already exists.")),
        AppError::RegistrationClosed => ("Registration closed", "This server does not accept new accounts.".into()),
        AppError::InvalidCredentials => ("Invalid credentials", "The account or password is not correct.".into()),
        AppError::Unauthenticated => ("Unauthorized", "A valid access token is required.".into()),
        AppError::InvalidRefreshToken => ("Invalid refresh token", "The refresh token is not valid.".into()),
        AppError::InvalidTwoFactorToken => (
            "Invalid two-factor token",
            "The two-factor token is missing, expired, used, or has had too many wrong codes. Log in again.".into(),
        ),
        AppError::InvalidCode => ("Invalid code", "The code is not valid for this account.".into()),
        AppError::SecondFactorLocked { retry_after_secs } => (
            "Too many failed codes",
            format!("The second factor is locked for {retry_after_secs} more seconds."),
        ),
        AppError::RateLimited { retry_after_secs } => (
            "Too many requests",
            format!("Too many requests; try again in {retry_after_secs} seconds."),
        ),
        AppError::TotpSuspended => (
            "Authenticator codes suspended",
            "After too many failed codes, authenticator codes are suspended. Use a backup code or ask an administrator.".into(),
        ),
        AppError::ReauthenticationRequired => (
            "Reauthentication required",
            "This change needs a second factor from the last 10 minutes: send a `code`, or log in again with your authenticator.".into(),
        ),
        AppError::TwoFactorAlreadyEnabled => ("Two-factor already enabled", "Two-factor authentication is already on.".into()),
        AppError::TwoFactorNotEnabled => ("Two-factor not enabled", "Two-factor authentication is not on for this account.".into()),
        AppError::NoPendingSetup => ("No pending setup", "Start with POST /v1/auth/2fa/setup; a setup expires if not confirmed.".into()),
        AppError::NoAuthenticator => ("No authenticator", "This account has no confirmed authenticator; set one up first.".into()),
        AppError::Forbidden => ("Forbidden", "You may not do this.".into()),
        AppError::InvalidApiKey => ("Invalid admin API key", "A valid admin API key is required: `Authorization: Bearer <key>`.".into()),
        AppError::InsufficientScope(scope) => ("Insufficient scope", format!("This admin API key lacks the `{scope}` scope.")),
        AppError::AccountDisabled => ("Account disabled", "This account has been disabled by an administrator.".into()),
        AppError::InvalidSetPasswordToken => (
            "Invalid set-password token",
            "The set-password token is unknown, expired or already used. Ask an administrator for a new one.".into(),
        ),
        AppError::InvalidCeremony => ("Invalid passkey ceremony", "The passkey ceremony is unknown, expired or already finished; start again.".into()),
        AppError::InvalidPasskey => ("Passkey refused", "The passkey's answer could not be verified for this site.".into()),
        AppError::NoPasskey => ("No passkey", "This account has no passkey that can be used.".into()),
        AppError::AuthenticatorNotAllowed => ("Authenticator not allowed", "This server does not accept passkeys from this kind of authenticator.".into()),
        AppError::NotificationBusy => ("Notification being sent", "The message is being sent right now; try again in a minute.".into()),
        AppError::Unavailable => ("Service unavailable", "The database is unreachable; try again shortly.".into()),
        AppError::Timeout => ("Request timeout", "The request took too long.".into()),
        AppError::Internal(_) => ("Internal error", "Something went wrong on our side.".into()),
    }
}

/// The problem document for `err`, with `Retry-After` or `WWW-Authenticate` where apt.
pub fn problem_response(err: &AppError) -> Response {
    if let AppError::Internal(detail) = err {
        tracing::error!(error = %detail, "internal error");
    }
    let status = status_of(err);
    let (title, detail) = title_and_detail(err);
    let code = err.code();
    let body = Problem {
        problem_type: format!("/problems/{}", code.replace('_', "-")),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
        errors: match err {
            AppError::Validation(errors) => Some(errors.clone()),
            _ => None,
        },
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body,
    )
        .into_response();
    match err {
        AppError::SecondFactorLocked { retry_after_secs } => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        AppError::RateLimited { retry_after_secs } => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        AppError::Unauthenticated | AppError::InvalidApiKey => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        AppError::Unavailable => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        _ => {}
    }
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        problem_response(&self)
    }
}

/// The error a bare status (from a layer or axum itself) stands for, so that even those
/// are answered with a problem document.
pub fn error_for_status(status: StatusCode) -> AppError {
    match status {
        StatusCode::NOT_FOUND => AppError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType,
        StatusCode::REQUEST_TIMEOUT => AppError::Timeout,
        StatusCode::SERVICE_UNAVAILABLE => AppError::Unavailable,
        StatusCode::UNAUTHORIZED => AppError::Unauthenticated,
        s if s.is_client_error() => AppError::field("request", "is not valid"),
        _ => AppError::Internal(format!("bare {status} response")),
    }
}
