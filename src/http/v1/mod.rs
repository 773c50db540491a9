//! The primary API: accounts and tokens under `/v1/auth`, and the SalesOS two-factor API
//! under `/v1/auth/2fa`, one module per area. Handlers parse, call one service function,
//! and shape the answer.

mod accounts;
mod devices;
mod passkeys;
mod two_factor;

use utoipa_axum::router::OpenApiRouter;

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
