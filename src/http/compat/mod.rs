//! The Sapfiai compatibility surface under `/authentication`: the same core as `/v1`,
//! answered in Sapfiai's envelopes field for field, so its clients work unchanged.
//! Unknown request fields are ignored here, as the original API did.
//!
//! Failures are one type, [`error::CompatError`], which answers in the envelope the route's
//! clients expect; handlers return it with `?`. The extractors in [`extract`] reject in the
//! same envelopes.

mod enable_2fa;
mod error;
mod extract;
mod sign_in;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::dto::User;
use super::problem::Problem;
use crate::clock::rfc3339;
use crate::service::accounts::Account;
use crate::service::sessions::IssuedTokens;
use crate::state::AppState;

/// The `/authentication` routes, each registered with its OpenAPI description. The order
/// is the document's order.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(sign_in::router())
        .merge(enable_2fa::router())
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

/// `/v1`'s [`User`] without `createdAt`, which Sapfiai's `user` does not have: the
/// account reaches the wire through one conversion.
impl From<&Account> for CompatUser {
    fn from(account: &Account) -> Self {
        let user = User::from(account);
        Self {
            id: user.id,
            email: user.email,
            user_name: user.user_name,
            phone_number: user.phone_number,
            two_factor_enabled: user.two_factor_enabled,
            last_login_date: user.last_login_date,
            last_login_ip: user.last_login_ip,
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
    /// Present (true) on a login of an account that must have a second factor and has
    /// none: `token` is then an enrolment token for `POST /v1/auth/2fa/setup` and
    /// `POST /v1/auth/2fa/verify-setup` (as bearer), whose confirmation signs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    requires_enrollment: Option<bool>,
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

pub(super) fn signed_in(
    tokens: IssuedTokens,
    user: &Account,
    message: &str,
    with_requires_2fa: bool,
) -> Response {
    Json(SignInEnvelope {
        success: true,
        requires_2fa: with_requires_2fa.then_some(false),
        requires_enrollment: None,
        token: tokens.access_token,
        refresh_token: Some(tokens.refresh_token),
        refresh_token_expiry: Some(rfc3339(tokens.refresh_token_expires_at)),
        user: Some(CompatUser::from(user)),
        message: message.to_owned(),
        errors: None,
    })
    .into_response()
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

/// 400 in the failure envelope, for a route whose fields have no rule worth naming here.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum EnvelopeInvalid {
    #[response(
        status = 400,
        description = "A missing or invalid field, or malformed JSON."
    )]
    Invalid(FailureEnvelope),
}

/// 503 in the failure envelope.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum EnvelopeUnavailable {
    #[response(status = 503, description = "The database is unreachable.")]
    Unavailable(FailureEnvelope),
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
pub(super) fn result(
    status: StatusCode,
    error: Option<(&str, &str)>,
    errors: Vec<String>,
) -> Response {
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
