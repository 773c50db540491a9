//! One error type for the Sapfiai surface: every failure of its routes, answered in the
//! envelope that route's clients expect.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{BearerProblem, FailureEnvelope, result};
use crate::error::AppError;
use crate::http::problem::{PROBLEM_JSON, status_of};

/// A failed Sapfiai request.
#[derive(Debug)]
pub enum CompatError {
    /// `login`, `verify-2fa` or `refresh-token` failed: the failure envelope, whose
    /// `message` names the operation.
    Failed {
        message: &'static str,
        error: AppError,
    },
    /// `enable-2fa` failed: Sapfiai's `Result` with an error code.
    Result {
        status: StatusCode,
        code: &'static str,
        description: &'static str,
        errors: Vec<String>,
        retry_after_secs: Option<i64>,
    },
    /// A missing or bad bearer token on `enable-2fa`: the problem document the contract
    /// fixes (no `code` member).
    Unauthorized,
    /// Answered as on `/v1`, with a problem document (the per-session write limit).
    Problem(AppError),
}

impl CompatError {
    /// `Validation.Failed` with the field messages, on `enable-2fa`.
    pub fn invalid_fields(errors: Vec<String>) -> Self {
        CompatError::Result {
            status: StatusCode::BAD_REQUEST,
            code: "Validation.Failed",
            description: "One or more fields are invalid.",
            errors,
            retry_after_secs: None,
        }
    }
}

impl IntoResponse for CompatError {
    fn into_response(self) -> Response {
        match self {
            CompatError::Failed { message, error } => failed(error, message),
            CompatError::Result {
                status,
                code,
                description,
                errors,
                retry_after_secs,
            } => {
                let mut response = result(status, Some((code, description)), errors);
                if let Some(secs) = retry_after_secs {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
            CompatError::Unauthorized => unauthorized(),
            CompatError::Problem(error) => error.into_response(),
        }
    }
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

/// Maps a core error to the failure envelope, under `message` for the operation that failed.
fn failed(err: AppError, message: &str) -> Response {
    let status = status_of(&err);
    let errors: Vec<String> = match &err {
        AppError::Validation(fields) => fields
            .iter()
            .flat_map(|(field, msgs)| msgs.iter().map(move |m| format!("{field} {m}")))
            .collect(),
        AppError::InvalidCode => vec!["Invalid two-factor authentication code".into()],
        AppError::InvalidTwoFactorToken => vec!["Invalid or expired two-factor token".into()],
        AppError::InvalidCredentials => vec!["Invalid email or password".into()],
        AppError::InvalidRefreshToken => vec!["Invalid or expired refresh token".into()],
        AppError::AccountDisabled => vec!["This account has been disabled".into()],
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
            (header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)),
            (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
        ],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}
