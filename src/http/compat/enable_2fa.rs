//! Sapfiai's switch for two-factor authentication, answered in its `Result` envelope. The
//! handler only reads the request and shapes the answer: the rules (the email must be the
//! caller's own, the password right, turning it off needs a fresh second factor, on needs
//! a confirmed authenticator) are in [`two_factor::set_enabled`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::SecretString;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::CompatError;
use super::extract::{CompatAuth, CompatJson, Enable2fa, Operation};
use super::{BearerProblem, LENIENT, ResultEnvelope, result};
use crate::error::AppError;
use crate::http::dto;
use crate::http::extract::Client;
use crate::http::problem::Problem;
use crate::http::ratelimit::RateLimit;
use crate::service::two_factor;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(enable_2fa))
}

/// Longest `email` read.
const MAX_EMAIL: usize = 300;

/// Sapfiai's own minimum for a password field.
const MIN_PASSWORD_CHARS: usize = 6;

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
    CompatAuth(principal): CompatAuth,
    CompatJson(mut f, _): CompatJson<Enable2fa>,
) -> Result<Response, CompatError> {
    let email = f.required_string("email", MAX_EMAIL);
    let password = f.required_string("password", dto::MAX_PASSWORD);
    let enable = f.required_bool("enable");
    let code = dto::optional_code(&mut f, "code");
    let mut problems: Vec<String> = Vec::new();
    if let Some(p) = &password
        && p.chars().count() < MIN_PASSWORD_CHARS
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
        return Err(CompatError::invalid_fields(problems));
    };
    if !problems.is_empty() {
        return Err(CompatError::invalid_fields(problems));
    }
    let password = SecretString::from(password);
    two_factor::set_enabled(&state, principal, &email, password, enable, code, ctx)
        .await
        .map_err(Enable2fa::fail)?;
    Ok(result(StatusCode::OK, None, vec![]))
}
