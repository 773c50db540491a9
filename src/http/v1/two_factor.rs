//! `/v1/auth/2fa`: the SalesOS two-factor API: status, enrolment, the second step of
//! login, turning it off and backup codes (OpenAPI tag `two-factor`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{STRICT, SensitiveChangeErrors};
use crate::clock::rfc3339;
use crate::error::AppError;
use crate::http::dto::{self, Tokens, TrustedDeviceInput};
use crate::http::extract::{Auth, Bearer, Client, JsonBody, OptionalJsonBody, bearer_token};
use crate::http::problem::Problem;
use crate::http::ratelimit::RateLimit;
use crate::http::responses::{AccountRateLimited, BodyErrors, Unauthorized, Unavailable};
use crate::service::two_factor;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(setup))
        .routes(routes!(verify_setup))
        .routes(routes!(verify))
        .routes(routes!(disable))
        .routes(routes!(backup_codes))
        .routes(routes!(regenerate_backup_codes))
}

/// Whether two-factor authentication is on, and counts of backup codes and devices.
#[utoipa::path(
    get,
    path = "/v1/auth/2fa/status",
    operation_id = "two_factor_status",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "`TwoFactorStatus`.", body = dto::Status), Unauthorized, Unavailable)
)]
async fn status(
    State(state): State<AppState>,
    Bearer(principal): Bearer,
) -> Result<Json<dto::Status>, AppError> {
    Ok(Json(two_factor::status(&state, &principal).await?.into()))
}

/// Body of `POST /v1/auth/2fa/setup`; the body may be left out or be `{}`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct SetupRequest {
    /// The account's password, when the sign-in is older than `fresh_second_factor_secs`:
    /// enrolment needs a recent authentication.
    #[schema(max_length = 1024, format = Password)]
    password: Option<String>,
}

/// Starts enrolment: a new pending secret (replacing an unconfirmed one) and its QR code.
/// Needs a recent authentication: a sign-in at most `fresh_second_factor_secs` ago, or the
/// `password`. The body may be left out; many clients send `{}` with every POST, so one is
/// read (all of it, so the connection stays usable) and, like every `/v1` body, may hold no
/// unknown field.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/setup",
    operation_id = "two_factor_setup",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body(content = Option<SetupRequest>, description = "May be left out, or `{}`.", content_type = "application/json"),
    responses(
        (status = 200, description = "The pending secret; confirm it with `verify-setup`.", body = dto::Setup),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`) or a wrong `password` (`invalid_credentials`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The sign-in is not recent and no `password` was sent (`reauthentication_required`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor authentication is already on (`two_factor_already_enabled`).", body = Problem, content_type = "application/problem+json"),
        AccountRateLimited,
        Unavailable,
    )
)]
async fn setup(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    OptionalJsonBody(mut f): OptionalJsonBody,
) -> Result<Json<dto::Setup>, AppError> {
    let password = dto::optional_password(&mut f, "password");
    f.finish(STRICT)?;
    Ok(Json(
        two_factor::setup(&state, principal, password, ctx)
            .await?
            .into(),
    ))
}

/// Body of `POST /v1/auth/2fa/verify-setup`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct VerifySetupRequest {
    /// A 6-digit code from the pending secret (spaces are ignored).
    #[schema(max_length = 32, pattern = "^[0-9]{6}$", example = "123456")]
    code: String,
    /// The account's password, when the sign-in is older than `fresh_second_factor_secs`.
    #[schema(max_length = 1024, format = Password)]
    password: Option<String>,
}

/// Two-factor authentication is on; the backup codes are shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TwoFactorEnabled {
    /// Always true.
    enabled: bool,
    /// 10 single-use codes, `xxxxx-xxxxx`.
    #[schema(example = json!(["7kq2m-x9d4p", "..."]))]
    backup_codes: Vec<String>,
}

/// Confirms the pending secret with a code, turns two-factor authentication on and returns
/// the backup codes once. Needs a recent authentication, as `setup` does.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/verify-setup",
    operation_id = "two_factor_verify_setup",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body = VerifySetupRequest,
    responses(
        (status = 200, description = "On, with the backup codes.", body = TwoFactorEnabled),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`), a wrong code (`invalid_code`) or a wrong `password` (`invalid_credentials`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The sign-in is not recent and no `password` was sent (`reauthentication_required`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already on (`two_factor_already_enabled`) or no pending setup (`no_pending_setup`).", body = Problem, content_type = "application/problem+json"),
        AccountRateLimited,
        Unavailable,
    )
)]
async fn verify_setup(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    JsonBody(mut f): JsonBody,
) -> Result<Response, AppError> {
    let code = dto::totp_code(&mut f, "code");
    let password = dto::optional_password(&mut f, "password");
    f.finish(STRICT)?;
    let code = code.ok_or_else(|| AppError::internal("validated fields missing"))?;
    let codes = two_factor::verify_setup(&state, principal, code, password, ctx).await?;
    Ok(Json(TwoFactorEnabled {
        enabled: true,
        backup_codes: codes,
    })
    .into_response())
}

/// Body of `POST /v1/auth/2fa/verify`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct VerifyRequest {
    /// A 6-digit TOTP code or a backup code (`xxxxx-xxxxx`, case and dash insensitive).
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: String,
    /// Remember this device: later logins from it skip the second factor.
    trust_device: Option<TrustedDeviceInput>,
}

/// Signed in after the second factor; with `deviceToken` (shown once) and `trustedDevice`
/// when the device was trusted.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct VerifiedTokens {
    #[serde(flatten)]
    tokens: Tokens,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_device: Option<dto::TrustedDevice>,
}

impl From<two_factor::VerifiedLogin> for VerifiedTokens {
    fn from(verified: two_factor::VerifiedLogin) -> Self {
        let (device_token, trusted_device) = match verified.device {
            Some((device, token)) => (Some(token), Some(device.into())),
            None => (None, None),
        };
        Self {
            tokens: Tokens::new(verified.tokens, &verified.user),
            device_token,
            trusted_device,
        }
    }
}

/// The second step of login; its bearer is the `twoFactorToken`, not an access token.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/verify",
    operation_id = "two_factor_verify",
    tag = "two-factor",
    security(("twoFactorToken" = [])),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in.", body = VerifiedTokens),
        BodyErrors,
        (status = 401, description = "Missing, expired, used or dead `twoFactorToken` (`invalid_two_factor_token`) or a wrong code (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Authenticator codes are suspended after too many failures (`totp_suspended`); use a backup code.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The second factor is locked after repeated failures (`second_factor_locked`), or too many requests from this address (`rate_limited`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        Unavailable,
    )
)]
async fn verify(
    State(state): State<AppState>,
    _limit: RateLimit,
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
    let verified = two_factor::verify_login(&state, challenge, code, trust, ctx).await?;
    Ok(Json(VerifiedTokens::from(verified)).into_response())
}

/// Body of `POST /v1/auth/2fa/disable`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct DisableRequest {
    #[schema(format = Password, max_length = 1024, example = "correct horse battery staple")]
    password: String,
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Option<String>,
}

/// `{enabled: false}`.
#[derive(Serialize, ToSchema)]
struct TwoFactorDisabled {
    /// Always false.
    enabled: bool,
}

/// Turns two-factor authentication off: deletes the secret, the backup codes and the trusted
/// devices, and revokes the other sessions. A sensitive change.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/disable",
    operation_id = "two_factor_disable",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body = DisableRequest,
    responses(
        (status = 200, description = "Off.", body = TwoFactorDisabled),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`), wrong password (`invalid_credentials`) or wrong code (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        SensitiveChangeErrors,
        Unavailable,
    )
)]
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
    two_factor::disable(&state, principal, password, code, ctx).await?;
    Ok(Json(TwoFactorDisabled { enabled: false }).into_response())
}

/// How many backup codes are left.
#[utoipa::path(
    get,
    path = "/v1/auth/2fa/backup-codes",
    operation_id = "backup_codes",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Counts.", body = dto::BackupCodesSummary), Unauthorized, Unavailable)
)]
async fn backup_codes(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<dto::BackupCodesSummary>, AppError> {
    Ok(Json(
        two_factor::backup_codes_summary(&state, principal.user_id)
            .await?
            .into(),
    ))
}

/// Body of `POST /v1/auth/2fa/regenerate-backup-codes` (optional, as is the body itself).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct RegenerateRequest {
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Option<String>,
}

/// New backup codes, shown this once; the old ones stop working.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewBackupCodes {
    /// 10 single-use codes, `xxxxx-xxxxx`.
    backup_codes: Vec<String>,
    #[schema(format = DateTime)]
    generated_at: String,
}

/// Replaces the backup codes. A sensitive change.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/regenerate-backup-codes",
    operation_id = "regenerate_backup_codes",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body(content = Option<RegenerateRequest>, description = "May be left out.", content_type = "application/json"),
    responses(
        (status = 200, description = "The new codes.", body = NewBackupCodes),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`) or wrong code (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        SensitiveChangeErrors,
        Unavailable,
    )
)]
async fn regenerate_backup_codes(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    OptionalJsonBody(mut f): OptionalJsonBody,
) -> Result<Response, AppError> {
    let code = dto::optional_code(&mut f, "code");
    f.finish(STRICT)?;
    let (codes, at) = two_factor::regenerate_backup_codes(&state, principal, code, ctx).await?;
    Ok(Json(NewBackupCodes {
        backup_codes: codes,
        generated_at: rfc3339(at),
    })
    .into_response())
}
