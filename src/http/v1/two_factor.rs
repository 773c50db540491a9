//! `/v1/auth/2fa`: the SalesOS two-factor API: status, enrolment, the second step of
//! login, turning it off and backup codes (OpenAPI tag `two-factor`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::rfc3339;
use crate::error::AppError;
use crate::http::body::{BodyContext, Code, Field, Nested, Optional, Password, TotpCode};
use crate::http::dto::{self, Tokens, TrustedDeviceInput};
use crate::http::extract::{Auth, Bearer, Body, Client, Enroller, OptionalBody, two_factor_token};
use crate::http::problem::Problem;
use crate::http::ratelimit::RateLimit;
use crate::http::responses::{
    BodyErrors, NotRecentlySignedIn, SecondStepRefused, SensitiveChangeErrors, SessionRateLimited,
    TwoFactorNotEnabled, Unauthorized, UnauthorizedOrWrongCode, Unavailable,
};
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
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct SetupRequest {
    /// The account's password, when the sign-in is older than `fresh_second_factor_secs`:
    /// enrolment needs a recent authentication.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 1024, format = Password)]
    password: Optional<Password>,
}

/// Starts enrolment: a new pending secret (replacing an unconfirmed one) and its QR code.
/// Needs a recent authentication: a sign-in at most `fresh_second_factor_secs` ago, or the
/// `password`; or, for an account that must enrol before it may sign in, the
/// `enrollmentToken` of its login as bearer. The body may be left out; many clients send `{}` with every POST, so one is
/// read (all of it, so the connection stays usable) and, like every `/v1` body, may hold no
/// unknown field.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/setup",
    operation_id = "two_factor_setup",
    tag = "two-factor",
    security(("bearerAuth" = []), ("enrollmentToken" = [])),
    request_body(content = Option<SetupRequest>, description = "May be left out, or `{}`.", content_type = "application/json"),
    responses(
        (status = 200, description = "The pending secret; confirm it with `verify-setup`.", body = dto::Setup),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`) or a wrong `password` (`invalid_credentials`).", body = Problem, content_type = "application/problem+json"),
        NotRecentlySignedIn,
        (status = 409, description = "Two-factor authentication is already on (`two_factor_already_enabled`).", body = Problem, content_type = "application/problem+json"),
        SessionRateLimited,
        Unavailable,
    )
)]
async fn setup(
    State(state): State<AppState>,
    enroller: Enroller,
    Client(ctx): Client,
    Body(body): OptionalBody<SetupRequest>,
) -> Result<Json<dto::Setup>, AppError> {
    let password = body.password.into_option().map(Password::into_secret);
    let setup = match enroller {
        Enroller::Session(principal) => two_factor::setup(&state, principal, password, ctx).await?,
        Enroller::EnrolmentToken(token) => two_factor::setup_by_enrolment(&state, token).await?,
    };
    Ok(Json(setup.into()))
}

/// Body of `POST /v1/auth/2fa/verify-setup`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct VerifySetupRequest {
    /// A 6-digit code from the pending secret (spaces are ignored).
    #[garde(dive)]
    #[schema(value_type = String, max_length = 32, pattern = "^[0-9]{6}$", example = "123456")]
    code: Field<TotpCode>,
    /// The account's password, when the sign-in is older than `fresh_second_factor_secs`.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 1024, format = Password)]
    password: Optional<Password>,
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

/// Two-factor authentication is on after an enrolment a login required: the backup codes
/// (shown this once) and the signed-in session.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EnabledAndSignedIn {
    /// Always true.
    enabled: bool,
    /// 10 single-use codes, `xxxxx-xxxxx`.
    #[schema(example = json!(["7kq2m-x9d4p", "..."]))]
    backup_codes: Vec<String>,
    #[serde(flatten)]
    tokens: Tokens,
}

/// What `verify-setup` answers: the backup codes; after an enrolment a login required,
/// the tokens of the sign-in too.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum VerifySetupResult {
    Enabled(TwoFactorEnabled),
    EnabledAndSignedIn(Box<EnabledAndSignedIn>),
}

/// Confirms the pending secret with a code, turns two-factor authentication on and returns
/// the backup codes once. Needs a recent authentication, as `setup` does. With the
/// `enrollmentToken` of a login that answered `requiresEnrollment: true` as bearer, it also
/// completes that sign-in: the answer carries the tokens.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/verify-setup",
    operation_id = "two_factor_verify_setup",
    tag = "two-factor",
    security(("bearerAuth" = []), ("enrollmentToken" = [])),
    request_body = VerifySetupRequest,
    responses(
        (status = 200, description = "On, with the backup codes; with an `enrollmentToken` as bearer, signed in too (the tokens beside them).", body = VerifySetupResult),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`), a wrong code (`invalid_code`) or a wrong `password` (`invalid_credentials`).", body = Problem, content_type = "application/problem+json"),
        NotRecentlySignedIn,
        (status = 409, description = "Already on (`two_factor_already_enabled`) or no pending setup (`no_pending_setup`).", body = Problem, content_type = "application/problem+json"),
        SessionRateLimited,
        Unavailable,
    )
)]
async fn verify_setup(
    State(state): State<AppState>,
    enroller: Enroller,
    Client(ctx): Client,
    Body(body): Body<VerifySetupRequest>,
) -> Result<Response, AppError> {
    let code = body.code.into_valid()?.into_string();
    let password = body.password.into_option().map(Password::into_secret);
    let result = match enroller {
        Enroller::Session(principal) => {
            let codes = two_factor::verify_setup(&state, principal, code, password, ctx).await?;
            VerifySetupResult::Enabled(TwoFactorEnabled {
                enabled: true,
                backup_codes: codes,
            })
        }
        Enroller::EnrolmentToken(token) => {
            let done = two_factor::verify_setup_by_enrolment(&state, token, code, ctx).await?;
            VerifySetupResult::EnabledAndSignedIn(Box::new(EnabledAndSignedIn {
                enabled: true,
                backup_codes: done.backup_codes,
                tokens: Tokens::new(done.tokens, &done.user),
            }))
        }
    };
    Ok(Json(result).into_response())
}

/// Body of `POST /v1/auth/2fa/verify`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct VerifyRequest {
    /// A TOTP code (6 digits, or 8 for an imported authenticator that makes them) or a backup code (`xxxxx-xxxxx`, case and dash insensitive).
    #[garde(dive)]
    #[schema(
        value_type = String,
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9]{8}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Field<Code>,
    /// Remember this device: later logins from it skip the second factor.
    #[garde(dive)]
    #[schema(value_type = Option<TrustedDeviceInput>)]
    trust_device: Optional<Nested<TrustedDeviceInput>>,
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
        SecondStepRefused,
        Unavailable,
    )
)]
async fn verify(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    headers: HeaderMap,
    Body(body): Body<VerifyRequest>,
) -> Result<Response, AppError> {
    let challenge = two_factor_token(&headers)?;
    let code = body.code.into_valid()?.into_inner();
    let trust = dto::trusted_device(body.trust_device)?;
    let verified = two_factor::verify_login(&state, challenge, code, trust, ctx).await?;
    Ok(Json(VerifiedTokens::from(verified)).into_response())
}

/// Body of `POST /v1/auth/2fa/disable`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct DisableRequest {
    #[garde(dive)]
    #[schema(value_type = String, format = Password, max_length = 1024, example = "correct horse battery staple")]
    password: Field<Password>,
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[garde(dive)]
    #[schema(
        value_type = Option<String>,
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9]{8}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Optional<Code>,
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
        TwoFactorNotEnabled,
        Unavailable,
    )
)]
async fn disable(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    Body(body): Body<DisableRequest>,
) -> Result<Response, AppError> {
    let password = body.password.into_valid()?.into_secret();
    let code = body.code.into_option().map(Code::into_inner);
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
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RegenerateRequest {
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[garde(dive)]
    #[schema(
        value_type = Option<String>,
        max_length = 32,
        pattern = "^([0-9]{6}|[0-9]{8}|[0-9A-Za-z]{5}-?[0-9A-Za-z]{5})$",
        example = "123456"
    )]
    code: Optional<Code>,
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
        UnauthorizedOrWrongCode,
        SensitiveChangeErrors,
        TwoFactorNotEnabled,
        Unavailable,
    )
)]
async fn regenerate_backup_codes(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    Body(body): OptionalBody<RegenerateRequest>,
) -> Result<Response, AppError> {
    let code = body.code.into_option().map(Code::into_inner);
    let (codes, at) = two_factor::regenerate_backup_codes(&state, principal, code, ctx).await?;
    Ok(Json(NewBackupCodes {
        backup_codes: codes,
        generated_at: rfc3339(at),
    })
    .into_response())
}
