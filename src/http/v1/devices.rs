//! `/v1/auth/2fa/trusted-devices`: the devices whose logins skip the second factor
//! (OpenAPI tag `two-factor`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::http::body::{BodyContext, Code, Field, Optional, Text};
use crate::http::dto;
use crate::http::extract::{Auth, Body, Client, path_id};
use crate::http::problem::Problem;
use crate::http::responses::{
    BodyErrors, SensitiveChangeErrors, SessionRateLimited, TwoFactorNotEnabled, Unauthorized,
    UnauthorizedOrWrongCode, Unavailable,
};
use crate::service::devices;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, add_device, remove_all_devices))
        .routes(routes!(remove_device))
}

/// The account's live trusted devices.
#[utoipa::path(
    get,
    path = "/v1/auth/2fa/trusted-devices",
    operation_id = "list_trusted_devices",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "`[TrustedDevice]`.", body = Vec<dto::TrustedDevice>), Unauthorized, Unavailable)
)]
async fn list_devices(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<dto::TrustedDevice>>, AppError> {
    let devices = devices::list(&state, principal.user_id).await?;
    Ok(Json(devices.into_iter().map(Into::into).collect()))
}

/// Body of `POST /v1/auth/2fa/trusted-devices`: a `TrustedDeviceInput` and an optional code.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct AddDeviceRequest {
    #[garde(dive)]
    #[schema(value_type = String, max_length = 200, example = "Ann laptop")]
    device_name: Field<Text<200>>,
    #[garde(dive)]
    #[schema(value_type = String, max_length = 200, example = "desktop")]
    device_type: Field<Text<200>>,
    /// Free text describing the browser, stored as sent.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 200, example = "Firefox 128 on Linux")]
    browser_info: Optional<Text<200>>,
    /// Accepted for compatibility and ignored: the device is recorded with the address
    /// the request comes from (see `TrustedDevice.ipAddress`). Any text, not checked.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 64, example = "203.0.113.7")]
    ip_address: Optional<Text<64>>,
    /// Free text describing where the device is, stored as sent.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 200, example = "Berlin")]
    location: Optional<Text<200>>,
    #[garde(dive)]
    #[schema(value_type = String, max_length = 512, example = "fp-1f2e3d")]
    device_fingerprint: Field<dto::Token>,
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

/// A newly trusted device and its `deviceToken`, shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewTrustedDevice {
    #[serde(flatten)]
    device: dto::TrustedDevice,
    device_token: String,
}

/// Trusts the current device. A sensitive change.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/trusted-devices",
    operation_id = "add_trusted_device",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    request_body = AddDeviceRequest,
    responses(
        (status = 201, description = "Trusted; present `deviceToken` with `deviceFingerprint` at login.", body = NewTrustedDevice),
        BodyErrors,
        UnauthorizedOrWrongCode,
        SensitiveChangeErrors,
        TwoFactorNotEnabled,
        Unavailable,
    )
)]
async fn add_device(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    Body(body): Body<AddDeviceRequest>,
) -> Result<Response, AppError> {
    let code = body.code.into_option().map(Code::into_inner);
    let input = dto::TrustedDeviceInput {
        device_name: body.device_name,
        device_type: body.device_type,
        browser_info: body.browser_info,
        ip_address: body.ip_address,
        location: body.location,
        device_fingerprint: body.device_fingerprint,
    }
    .into_input()?;
    let (device, token) = devices::add(&state, principal, input, code, ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewTrustedDevice {
            device: device.into(),
            device_token: token,
        }),
    )
        .into_response())
}

/// `{removed: n}`.
#[derive(Serialize, ToSchema)]
struct RemovedDevices {
    #[schema(minimum = 0, example = 2)]
    removed: u64,
}

/// Removes every trusted device of the account.
#[utoipa::path(
    delete,
    path = "/v1/auth/2fa/trusted-devices",
    operation_id = "remove_all_trusted_devices",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "How many were removed.", body = RemovedDevices), Unauthorized, SessionRateLimited, Unavailable)
)]
async fn remove_all_devices(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
) -> Result<Response, AppError> {
    let removed = devices::remove_all(&state, principal.user_id, ctx).await?;
    Ok(Json(RemovedDevices { removed }).into_response())
}

/// Removes one trusted device.
#[utoipa::path(
    delete,
    path = "/v1/auth/2fa/trusted-devices/{deviceId}",
    operation_id = "remove_trusted_device",
    tag = "two-factor",
    security(("bearerAuth" = [])),
    params(("deviceId" = Uuid, Path, description = "The device's `id`.")),
    responses(
        (status = 204, description = "Removed."),
        Unauthorized,
        (status = 404, description = "No such device of this account (`not_found`).", body = Problem, content_type = "application/problem+json"),
        SessionRateLimited,
        Unavailable,
    )
)]
async fn remove_device(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    Path(device_id): Path<String>,
) -> Result<StatusCode, AppError> {
    let device_id = path_id(&device_id)?;
    devices::remove_one(&state, principal.user_id, device_id, ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
