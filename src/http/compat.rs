//! The Sapfiai compatibility surface under `/authentication`: the same core as `/v1`,
//! answered in Sapfiai's envelopes field for field, so its clients work unchanged.
//! Unknown request fields are ignored here, as the original API did.

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::extract::{Client, Fields, JsonBody, bearer_token};
use super::{dto, v1};
use crate::clock::rfc3339;
use crate::db::users::UserRow;
use crate::domain::second_factor::SecondFactorCode;
use crate::error::AppError;
use crate::service::accounts::{self, LoginOutcome};
use crate::service::sessions::{self, IssuedTokens};
use crate::service::two_factor;
use crate::state::AppState;

const LENIENT: bool = false;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authentication/login", post(login))
        .route("/authentication/verify-2fa", post(verify_2fa))
        .route("/authentication/refresh-token", post(refresh_token))
        .route("/authentication/enable-2fa", post(enable_2fa))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompatUser {
    id: Uuid,
    email: String,
    user_name: String,
    phone_number: Option<String>,
    two_factor_enabled: bool,
    last_login_date: Option<String>,
    last_login_ip: Option<String>,
}

impl From<&UserRow> for CompatUser {
    fn from(u: &UserRow) -> Self {
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

/// `{success: false, token: null, refreshToken: null, user: null, message, errors}`.
fn failure(status: StatusCode, message: &str, errors: Vec<String>) -> Response {
    (
        status,
        Json(json!({
            "success": false,
            "token": null,
            "refreshToken": null,
            "user": null,
            "message": message,
            "errors": errors,
        })),
    )
        .into_response()
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
            vec![format!("Too many failed attempts. Try again in {retry_after_secs} seconds.")]
        }
        AppError::TotpSuspended => vec!["Authenticator codes are suspended after too many failures".into()],
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
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
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

fn signed_in(tokens: IssuedTokens, user: &UserRow, message: &str, with_requires_2fa: bool) -> Response {
    let mut body = json!({
        "success": true,
        "token": tokens.access_token,
        "refreshToken": tokens.refresh_token,
        "refreshTokenExpiry": rfc3339(tokens.refresh_token_expires_at),
        "user": CompatUser::from(user),
        "message": message,
        "errors": null,
    });
    if with_requires_2fa {
        body["requires2FA"] = json!(false);
    }
    Json(body).into_response()
}

async fn login(State(state): State<AppState>, Client(ctx): Client, req: Request) -> Response {
    const FAILED: &str = "Login failed";
    let mut f = match body(req, &state, FAILED).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let identifier = v1::identifier(&mut f);
    let password = dto::password(&mut f, "password");
    if let Err(e) = f.finish(LENIENT) {
        return envelope_error(e, FAILED);
    }
    let (Some(identifier), Some(password)) = (identifier, password) else {
        return envelope_error(AppError::internal("validated fields missing"), FAILED);
    };
    let login = accounts::Login { identifier, password, device_token: None, device_fingerprint: None };
    match accounts::login(&state, login, &ctx).await {
        Ok(LoginOutcome::SignedIn(tokens, user)) => signed_in(tokens, &user, "Login successful", true),
        Ok(LoginOutcome::SecondFactorRequired { token, .. }) => Json(json!({
            "success": true,
            "requires2FA": true,
            "token": token,
            "refreshToken": null,
            "refreshTokenExpiry": null,
            "user": null,
            "message": "Two-factor authentication required",
            "errors": null,
        }))
        .into_response(),
        Err(e) => envelope_error(e, FAILED),
    }
}

async fn verify_2fa(State(state): State<AppState>, Client(ctx): Client, req: Request) -> Response {
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
        && let Err(e) = f.finish(LENIENT) {
            return envelope_error(e, FAILED);
        }
    let (Some(code), Some(token)) = (code, token) else {
        return envelope_error(AppError::internal("validated fields missing"), FAILED);
    };
    match two_factor::verify_login(&state, &token, &SecondFactorCode::Totp(code), None, &ctx).await {
        Ok(verified) => signed_in(verified.tokens, &verified.user, "2FA verification successful", false),
        Err(e) => envelope_error(e, FAILED),
    }
}

async fn refresh_token(State(state): State<AppState>, Client(ctx): Client, req: Request) -> Response {
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
    match sessions::refresh(&state, &token, &ctx).await {
        Ok((tokens, user)) => signed_in(tokens, &user, "Token refreshed successfully", false),
        Err(e) => envelope_error(e, FAILED),
    }
}

/// `{isSuccess, succeeded, error: {code, description}, errors}`; success carries the
/// empty error, as Sapfiai's `Error.None`.
fn result(status: StatusCode, error: Option<(&str, &str)>, errors: Vec<String>) -> Response {
    let (code, description) = error.unwrap_or(("", ""));
    let ok = error.is_none();
    (
        status,
        Json(json!({
            "isSuccess": ok,
            "succeeded": ok,
            "error": {"code": code, "description": description},
            "errors": errors,
        })),
    )
        .into_response()
}

/// The problem document the contract fixes for a missing or bad bearer token here.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(super::problem::PROBLEM_JSON)),
            (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
        ],
        json!({
            "type": "https://tools.ietf.org/html/rfc7235#section-3.1",
            "title": "Unauthorized",
            "status": 401,
            "detail": "Authorization token is missing or invalid",
        })
        .to_string(),
    )
        .into_response()
}

async fn enable_2fa(State(state): State<AppState>, Client(ctx): Client, headers: HeaderMap, req: Request) -> Response {
    let principal = match bearer_token(&headers) {
        Some(token) => match sessions::authenticate(&state, token).await {
            Ok(p) => p,
            Err(AppError::Unavailable) => return result(StatusCode::SERVICE_UNAVAILABLE, Some(("Service.Unavailable", "The database is unreachable; try again shortly.")), vec![]),
            Err(_) => return unauthorized(),
        },
        None => return unauthorized(),
    };
    let mut f = match JsonBody::from_request(req, &state).await {
        Ok(JsonBody(f)) => f,
        Err(e) => {
            let status = super::problem::status_of(&e);
            return result(status, Some(("Request.Invalid", "The request body must be a JSON object.")), vec![e.to_string()]);
        }
    };
    let email = f.required_string("email", 300);
    let password = f.required_string("password", dto::MAX_PASSWORD);
    let enable = f.required_bool("enable");
    let code = dto::optional_code(&mut f, "code");
    let mut problems: Vec<String> = Vec::new();
    if let Some(p) = &password
        && p.chars().count() < 6 {
            problems.push("Password must be at least 6 characters.".into());
        }
    if let Err(AppError::Validation(fields)) = f.finish(LENIENT) {
        problems.extend(fields.iter().flat_map(|(k, v)| v.iter().map(move |m| format!("{k} {m}"))));
    }
    let (Some(email), Some(password), Some(enable)) = (email, password, enable) else {
        return result(StatusCode::BAD_REQUEST, Some(("Validation.Failed", "One or more fields are invalid.")), problems);
    };
    if !problems.is_empty() {
        return result(StatusCode::BAD_REQUEST, Some(("Validation.Failed", "One or more fields are invalid.")), problems);
    }
    let user = match accounts::reload(&state, principal.user_id).await {
        Ok(u) => u,
        Err(_) => return unauthorized(),
    };
    if user.email != email.trim().to_lowercase() {
        return result(StatusCode::FORBIDDEN, Some(("User.EmailMismatch", "The email does not belong to the signed-in user.")), vec![]);
    }
    let password = secrecy::SecretString::from(password);
    match two_factor::set_enabled(&state, &principal, &password, enable, code.as_ref(), &ctx).await {
        Ok(()) => result(StatusCode::OK, None, vec![]),
        Err(e) => {
            let (code, description) = match &e {
                AppError::InvalidCredentials => ("User.InvalidPassword", "The password is not correct."),
                AppError::NoAuthenticator => ("TwoFactor.NoAuthenticator", "No authenticator has been confirmed for this account; set one up first."),
                AppError::ReauthenticationRequired => (
                    "TwoFactor.ReauthenticationRequired",
                    "Turning two-factor authentication off needs a second factor from the last 10 minutes: send a `code`.",
                ),
                AppError::InvalidCode => ("TwoFactor.InvalidCode", "The code is not valid for this account."),
                AppError::SecondFactorLocked { .. } => ("TwoFactor.Locked", "Too many failed codes; try again later."),
                AppError::TotpSuspended => ("TwoFactor.Suspended", "Authenticator codes are suspended; use a backup code."),
                AppError::Unavailable => ("Service.Unavailable", "The database is unreachable; try again shortly."),
                _ => {
                    if let AppError::Internal(detail) = &e {
                        tracing::error!(error = %detail, "internal error");
                    }
                    ("Server.Error", "An unexpected error occurred.")
                }
            };
            let status = match &e {
                AppError::InvalidCredentials | AppError::InvalidCode | AppError::NoAuthenticator => StatusCode::BAD_REQUEST,
                other => super::problem::status_of(other),
            };
            let mut response = result(status, Some((code, description)), vec![]);
            if let AppError::SecondFactorLocked { retry_after_secs } = e {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            response
        }
    }
}

