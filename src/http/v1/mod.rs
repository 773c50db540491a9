//! The primary API: accounts and tokens under `/v1/auth`, and the SalesOS two-factor API
//! under `/v1/auth/2fa`, one module per area. Handlers parse, call one service function,
//! and shape the answer.

mod accounts;
mod devices;
mod passkeys;
mod two_factor;

use utoipa_axum::router::OpenApiRouter;

use super::problem::Problem;
use crate::state::AppState;

/// The `/v1` routes, each registered with its OpenAPI description. The order is the
/// document's order.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::router())
        .merge(two_factor::router())
        .merge(devices::router())
        .merge(passkeys::router())
}

/// What a sensitive change to the second factor (turning it off, new backup codes, a new
/// trusted device) may answer besides its own errors.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum SensitiveChangeErrors {
    #[response(
        status = 403,
        description = "No fresh second factor (`reauthentication_required`) or authenticator codes suspended (`totp_suspended`).",
        content_type = "application/problem+json"
    )]
    NotFresh(Problem),
    #[response(
        status = 409,
        description = "Two-factor authentication is not on (`two_factor_not_enabled`).",
        content_type = "application/problem+json"
    )]
    NotEnabled(Problem),
    #[response(
        status = 429,
        description = "The second factor is locked (`second_factor_locked`), or too many writes by this account in a short time (`rate_limited`).",
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait."))
    )]
    Locked(Problem),
}
