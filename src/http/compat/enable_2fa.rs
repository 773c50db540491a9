//! Sapfiai's switch for two-factor authentication, answered in its `Result` envelope. The
//! handler only reads the request and shapes the answer: the rules (the email must be the
//! caller's own, the password right, turning it off needs a fresh second factor, on needs
//! a confirmed authenticator) are in [`two_factor::set_enabled`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use garde::Validate;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::CompatError;
use super::extract::{CompatAuth, CompatBody, Enable2fa, Operation};
use super::{BearerProblem, ResultEnvelope, result};
use crate::domain::validate;
use crate::http::body::{BodyContext, Code, Field, Flag, Optional, Text};
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

/// Sapfiai's rule for a password field: at least 6 characters.
fn password_long_enough(password: &Field<Text<{ validate::PASSWORD_MAX_BYTES }>>) -> garde::Result {
    match password.get() {
        Some(p) if p.0.chars().count() < MIN_PASSWORD_CHARS => Err(garde::Error::new(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters"
        ))),
        _ => Ok(()),
    }
}

/// Body of `POST /authentication/enable-2fa`. Unknown fields are ignored.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
#[garde(context(BodyContext))]
struct Enable2faRequest {
    /// The caller's own email.
    #[garde(dive)]
    #[schema(value_type = String, format = Email, max_length = 300, example = "ada@example.com")]
    email: Field<Text<MAX_EMAIL>>,
    #[garde(dive, custom(|p, _| password_long_enough(p)))]
    #[schema(value_type = String, format = Password, min_length = 6, max_length = 1024, example = "correct horse battery staple")]
    password: Field<Text<{ validate::PASSWORD_MAX_BYTES }>>,
    /// true turns two-factor authentication on (needs a confirmed authenticator); false
    /// turns it off and keeps the authenticator.
    #[garde(dive)]
    #[schema(value_type = bool, example = false)]
    enable: Field<Flag>,
    /// A TOTP or backup code: turning it off needs a second factor from the last 10 minutes.
    #[garde(dive)]
    #[schema(
        value_type = Option<String>,
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9]{8}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Optional<Code>,
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
        (status = 429, description = "The second factor is locked (`TwoFactor.Locked`, the envelope), or too many requests from this address or writes by this session (a problem document, `rate_limited`).",
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
    CompatBody(body, _): CompatBody<Enable2fa, Enable2faRequest>,
) -> Result<Response, CompatError> {
    let set = async {
        let email = body.email.into_valid()?.0;
        let password = SecretString::from(body.password.into_valid()?.0);
        let enable = body.enable.into_valid()?.0;
        let code = body.code.into_option().map(Code::into_inner);
        two_factor::set_enabled(&state, principal, &email, password, enable, code, ctx).await
    };
    set.await.map_err(Enable2fa::fail)?;
    Ok(result(StatusCode::OK, None, vec![]))
}
