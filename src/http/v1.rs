//! The primary API: accounts and tokens under `/v1/auth`, and the SalesOS two-factor API
//! under `/v1/auth/2fa`. Handlers parse, call one service function, and shape the answer.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::dto::{self, Tokens, User};
use super::extract::{Auth, Client, JsonBody, OptionalJsonBody, bearer_token};
use crate::clock::rfc3339;
use crate::domain::validate;
use crate::error::AppError;
use crate::service::accounts::{self, Identifier, LoginOutcome, Registration};
use crate::service::{devices, events, sessions, two_factor};
use crate::state::AppState;

/// `/v1` refuses unknown fields.
const STRICT: bool = true;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/me", get(me))
        .route("/v1/auth/password", post(change_password))
        .route("/v1/auth/security-events", get(security_events))
        .route("/v1/auth/2fa/status", get(status))
        .route("/v1/auth/2fa/setup", post(setup))
        .route("/v1/auth/2fa/verify-setup", post(verify_setup))
        .route("/v1/auth/2fa/verify", post(verify))
        .route("/v1/auth/2fa/disable", post(disable))
        .route("/v1/auth/2fa/backup-codes", get(backup_codes))
        .route("/v1/auth/2fa/regenerate-backup-codes", post(regenerate_backup_codes))
        .route(
            "/v1/auth/2fa/trusted-devices",
            get(list_devices).post(add_device).delete(remove_all_devices),
        )
        .route("/v1/auth/2fa/trusted-devices/{device_id}", delete(remove_device))
}

async fn register(State(state): State<AppState>, JsonBody(mut f): JsonBody) -> Result<Response, AppError> {
    let email = f.required_string("email", validate::EMAIL_MAX + 10).and_then(|e| match validate::email(&e) {
        Ok(v) => Some(v),
        Err(msg) => {
            f.error("email", msg);
            None
        }
    });
    let password = dto::password(&mut f, "password");
    if let Some(p) = &password
        && let Err(msg) = validate::new_password(secrecy::ExposeSecret::expose_secret(p)) {
            f.error("password", msg);
        }
    let user_name = f.optional_string("userName", validate::USER_NAME_MAX + 10).and_then(|n| match validate::user_name(&n) {
        Ok(v) => Some(v),
        Err(msg) => {
            f.error("userName", msg);
            None
        }
    });
    let phone_number = f.optional_string("phoneNumber", validate::PHONE_MAX + 10).and_then(|p| match validate::phone_number(&p) {
        Ok(v) => Some(v),
        Err(msg) => {
            f.error("phoneNumber", msg);
            None
        }
    });
    f.finish(STRICT)?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let user = accounts::register(&state, Registration { email, password, user_name, phone_number }).await?;
    Ok((StatusCode::CREATED, Json(User::from(&user))).into_response())
}

/// Reads `email` or `userName` (exactly one is needed) for the login routes.
pub fn identifier(f: &mut super::extract::Fields) -> Option<Identifier> {
    let email = f.optional_string("email", validate::EMAIL_MAX + 10);
    let user_name = f.optional_string("userName", validate::USER_NAME_MAX + 10);
    match (email, user_name) {
        (Some(email), _) => Some(Identifier::Email(email.trim().to_lowercase())),
        (None, Some(name)) => Some(Identifier::UserName(name.trim().to_owned())),
        (None, None) => {
            f.error("email", "email or userName is required");
            None
        }
    }
}

async fn login(State(state): State<AppState>, Client(ctx): Client, JsonBody(mut f): JsonBody) -> Result<Response, AppError> {
    let identifier = identifier(&mut f);
    let password = dto::password(&mut f, "password");
    let device_token = f.optional_string("deviceToken", dto::MAX_TOKEN);
    let device_fingerprint = f.optional_string("deviceFingerprint", dto::MAX_FINGERPRINT);
    f.finish(STRICT)?;
    let (Some(identifier), Some(password)) = (identifier, password) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let outcome = accounts::login(
        &state,
        accounts::Login { identifier, password, device_token, device_fingerprint },
        &ctx,
    )
    .await?;
    Ok(match outcome {
        LoginOutcome::SignedIn(tokens, user) => {
            let mut body = serde_json::to_value(Tokens::new(tokens, &user)).map_err(AppError::internal)?;
            body["requires2FA"] = json!(false);
            Json(body).into_response()
        }
        LoginOutcome::SecondFactorRequired { token, expires_at } => Json(json!({
            "requires2FA": true,
            "twoFactorToken": token,
            "twoFactorTokenExpiry": rfc3339(expires_at),
            "methods": ["totp", "backup_code"],
        }))
        .into_response(),
    })
}

async fn refresh(State(state): State<AppState>, Client(ctx): Client, JsonBody(mut f): JsonBody) -> Result<Json<Tokens>, AppError> {
    let token = f.required_string("refreshToken", dto::MAX_TOKEN);
    f.finish(STRICT)?;
    let token = token.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let (tokens, user) = sessions::refresh(&state, &token, &ctx).await?;
    Ok(Json(Tokens::new(tokens, &user)))
}

async fn logout(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    OptionalJsonBody(mut f): OptionalJsonBody,
) -> Result<StatusCode, AppError> {
    let token = f.optional_string("refreshToken", dto::MAX_TOKEN);
    f.finish(STRICT)?;
    sessions::logout(&state, &principal, token.as_deref(), &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<User>, AppError> {
    let user = accounts::reload(&state, principal.user_id).await?;
    Ok(Json(User::from(&user)))
}

async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<StatusCode, AppError> {
    let current = dto::password(&mut f, "currentPassword");
    let new = dto::password(&mut f, "newPassword");
    if let Some(p) = &new
        && let Err(msg) = validate::new_password(secrecy::ExposeSecret::expose_secret(p)) {
            f.error("newPassword", msg);
        }
    f.finish(STRICT)?;
    let (Some(current), Some(new)) = (current, new) else {
        return Err(AppError::internal("validated fields missing"));
    };
    accounts::change_password(&state, &principal, &current, &new, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn security_events(
    State(state): State<AppState>,
    Auth(principal): Auth,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<events::SecurityEvent>>, AppError> {
    let Query(page) = page.map_err(|_| AppError::field("limit", "limit and offset must be whole numbers"))?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=events::MAX_PAGE_SIZE).contains(&limit) {
        return Err(AppError::field("limit", "must be between 1 and 100"));
    }
    let offset = page.offset.unwrap_or(0);
    if offset < 0 {
        return Err(AppError::field("offset", "must not be negative"));
    }
    Ok(Json(events::list(&state, principal.user_id, limit, offset).await?))
}

async fn status(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<two_factor::Status>, AppError> {
    Ok(Json(two_factor::status(&state, principal.user_id).await?))
}

async fn setup(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<two_factor::Setup>, AppError> {
    Ok(Json(two_factor::setup(&state, &principal).await?))
}

async fn verify_setup(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let code = dto::totp_code(&mut f, "code");
    f.finish(STRICT)?;
    let code = code.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let codes = two_factor::verify_setup(&state, &principal, &code, &ctx).await?;
    Ok(Json(json!({"enabled": true, "backupCodes": codes})).into_response())
}

/// The second step of login; its bearer is the `twoFactorToken`, not an access token.
async fn verify(
    State(state): State<AppState>,
    Client(ctx): Client,
    headers: HeaderMap,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let challenge = bearer_token(&headers).map(str::to_owned);
    let code = dto::code(&mut f, "code");
    let trust = f.optional_object("trustDevice").map(|mut nested| {
        let input = dto::device_input(&mut nested);
        f.absorb(nested, STRICT);
        input
    });
    f.finish(STRICT)?;
    let challenge = challenge.ok_or(AppError::InvalidTwoFactorToken)?;
    let code = code.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let trust = trust.flatten();
    let verified = two_factor::verify_login(&state, &challenge, &code, trust.as_ref(), &ctx).await?;
    let mut body = serde_json::to_value(Tokens::new(verified.tokens, &verified.user)).map_err(AppError::internal)?;
    if let Some((device, token)) = verified.device {
        body["deviceToken"] = json!(token);
        body["trustedDevice"] = serde_json::to_value(device).map_err(AppError::internal)?;
    }
    Ok(Json(body).into_response())
}

async fn disable(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let password = dto::password(&mut f, "password");
    let code = dto::optional_code(&mut f, "code");
    f.finish(STRICT)?;
    let password = password.ok_or_else(|| AppError::internal("validated fields missing"))?;
    two_factor::disable(&state, &principal, &password, code.as_ref(), &ctx).await?;
    Ok(Json(json!({"enabled": false})).into_response())
}

async fn backup_codes(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<two_factor::BackupCodesSummary>, AppError> {
    Ok(Json(two_factor::backup_codes_summary(&state, principal.user_id).await?))
}

async fn regenerate_backup_codes(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    OptionalJsonBody(mut f): OptionalJsonBody,
) -> Result<Response, AppError> {
    let code = dto::optional_code(&mut f, "code");
    f.finish(STRICT)?;
    let (codes, at) = two_factor::regenerate_backup_codes(&state, &principal, code.as_ref(), &ctx).await?;
    Ok(Json(json!({"backupCodes": codes, "generatedAt": rfc3339(at)})).into_response())
}

async fn list_devices(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<Vec<devices::TrustedDevice>>, AppError> {
    Ok(Json(devices::list(&state, principal.user_id).await?))
}

async fn add_device(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let input = dto::device_input(&mut f);
    let code = dto::optional_code(&mut f, "code");
    f.finish(STRICT)?;
    let input = input.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let (device, token) = devices::add(&state, &principal, &input, code.as_ref(), &ctx).await?;
    let mut body = serde_json::to_value(device).map_err(AppError::internal)?;
    body["deviceToken"] = json!(token);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn remove_all_devices(State(state): State<AppState>, Auth(principal): Auth, Client(ctx): Client) -> Result<Response, AppError> {
    let removed = devices::remove_all(&state, principal.user_id, &ctx).await?;
    Ok(Json(json!({"removed": removed})).into_response())
}

async fn remove_device(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    Path(device_id): Path<String>,
) -> Result<StatusCode, AppError> {
    // An id that is not a UUID cannot be this user's device: the same 404.
    let device_id = Uuid::parse_str(&device_id).map_err(|_| AppError::NotFound)?;
    devices::remove_one(&state, principal.user_id, device_id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
