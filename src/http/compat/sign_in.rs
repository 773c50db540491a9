//! Sapfiai's sign-in: `login`, `verify-2fa` and `refresh-token`, answered in its sign-in
//! and failure envelopes.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use garde::Validate;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::CompatError;
use super::extract::{CompatBody, Login, Operation, RefreshToken, Verify2fa};
use super::{
    EnvelopeBodyErrors, EnvelopeInvalid, EnvelopeUnavailable, FailureEnvelope, SignInEnvelope,
    signed_in,
};
use crate::domain::second_factor::SecondFactorCode;
use crate::http::body::{BodyContext, ExactTotpCode, Field, Optional, Password};
use crate::http::dto;
use crate::http::extract::Client;
use crate::http::problem::Problem;
use crate::http::ratelimit::RateLimit;
use crate::http::responses::RateLimited;
use crate::service::accounts::{self, LoginOutcome};
use crate::service::{sessions, two_factor};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(verify_2fa))
        .routes(routes!(refresh_token))
}

/// Body of `POST /authentication/login`: `email` or `userName`, and `password`. Unknown
/// fields are ignored.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
#[garde(context(BodyContext))]
struct CompatLoginRequest {
    #[garde(dive, custom(|_, _| dto::identifier_rule(&self.email, &self.user_name)))]
    #[schema(value_type = Option<String>, format = Email, max_length = 264, example = "ada@example.com")]
    email: Optional<dto::LoginName>,
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 264)]
    user_name: Optional<dto::LoginName>,
    #[garde(dive)]
    #[schema(value_type = String, format = Password, max_length = 1024, example = "correct horse battery staple")]
    password: Field<Password>,
}

/// Sapfiai's login: signs in, or answers `requires2FA: true` with a temporary token.
#[utoipa::path(
    post,
    path = "/authentication/login",
    operation_id = "compat_login",
    tag = "sapfiai",
    request_body = CompatLoginRequest,
    responses(
        (status = 200, description = "Signed in, or `requires2FA: true`; with `requiresEnrollment: true` too, `token` is an enrolment token for `/v1/auth/2fa/setup` and `verify-setup`.", body = SignInEnvelope),
        EnvelopeInvalid,
        (status = 401, description = "Wrong email, user name or password.", body = FailureEnvelope),
        (status = 403, description = "The right password of an account an administrator disabled.", body = FailureEnvelope),
        EnvelopeBodyErrors,
        RateLimited,
        EnvelopeUnavailable,
    )
)]
async fn login(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    CompatBody(body, _): CompatBody<Login, CompatLoginRequest>,
) -> Result<Response, CompatError> {
    let login = async {
        let login = accounts::Login {
            identifier: dto::identifier(body.email, body.user_name)?,
            password: body.password.into_valid()?.into_secret(),
            device_token: None,
            device_fingerprint: None,
        };
        accounts::login(&state, login, ctx).await
    };
    Ok(match login.await.map_err(Login::fail)? {
        LoginOutcome::SignedIn(tokens, user) => signed_in(tokens, &user, "Login successful", true),
        LoginOutcome::SecondFactorRequired { token, .. } => {
            not_signed_in_yet(token, false, "Two-factor authentication required")
        }
        LoginOutcome::EnrolmentRequired { token, .. } => {
            not_signed_in_yet(token, true, "Two-factor enrolment required")
        }
    })
}

/// A login that needs a second step first: `requires2FA: true` with the temporary token,
/// or (`enrolment`) with `requiresEnrollment: true` and the enrolment token; no session yet.
fn not_signed_in_yet(token: String, enrolment: bool, message: &str) -> Response {
    Json(SignInEnvelope {
        success: true,
        requires_2fa: Some(true),
        requires_enrollment: enrolment.then_some(true),
        token,
        refresh_token: None,
        refresh_token_expiry: None,
        user: None,
        message: message.to_owned(),
        errors: None,
    })
    .into_response()
}

/// Body of `POST /authentication/verify-2fa`. Unknown fields are ignored.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
#[garde(context(BodyContext))]
struct CompatVerifyRequest {
    /// Exactly 6 digits (backup codes are accepted on `/v1/auth/2fa/verify`).
    #[garde(dive)]
    #[schema(value_type = String, max_length = 32, pattern = "^[0-9]{6}$", example = "123456")]
    code: Field<ExactTotpCode>,
    /// The temporary token from a login that answered `requires2FA: true`.
    #[garde(dive)]
    #[schema(value_type = String, max_length = 512, example = "q8Jx0tN3...")]
    token: Field<dto::Token>,
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
    CompatBody(body, _): CompatBody<Verify2fa, CompatVerifyRequest>,
) -> Result<Response, CompatError> {
    let verify = async {
        let code = SecondFactorCode::Totp(body.code.into_valid()?.into_string());
        let token = body.token.into_valid()?.0;
        two_factor::verify_login(&state, token, code, None, ctx).await
    };
    let verified = verify.await.map_err(Verify2fa::fail)?;
    Ok(signed_in(
        verified.tokens,
        &verified.user,
        "2FA verification successful",
        false,
    ))
}

/// Body of `POST /authentication/refresh-token`. Unknown fields are ignored.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
#[garde(context(BodyContext))]
struct CompatRefreshRequest {
    #[garde(dive)]
    #[schema(value_type = String, max_length = 512, example = "m2Vb7c...")]
    refresh_token: Field<dto::Token>,
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
        EnvelopeInvalid,
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
    CompatBody(body, _): CompatBody<RefreshToken, CompatRefreshRequest>,
) -> Result<Response, CompatError> {
    let refresh = async {
        let token = body.refresh_token.into_valid()?.0;
        sessions::refresh(&state, token, ctx).await
    };
    let (tokens, user) = refresh.await.map_err(RefreshToken::fail)?;
    Ok(signed_in(
        tokens,
        &user,
        "Token refreshed successfully",
        false,
    ))
}
