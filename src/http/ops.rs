//! Operational routes: liveness, readiness, the public key set and metrics.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::bearer_token;
use super::problem::Problem;
use super::responses::Unavailable;
use crate::error::AppError;
use crate::state::AppState;

/// The operational routes, each registered with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(jwks))
        .routes(routes!(metrics))
}

/// `{status: "ok"}`.
#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "Up.", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `{status: "ready", database}`.
#[derive(Serialize, ToSchema)]
struct Ready {
    #[schema(value_type = String, example = "ready")]
    status: &'static str,
    /// `sqlite` or `postgres`.
    #[schema(value_type = String, example = "sqlite")]
    database: &'static str,
}

/// The database answers and its schema is current: safe to send traffic here.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses((status = 200, description = "Ready.", body = Ready), Unavailable))]
async fn readyz(State(state): State<AppState>) -> Response {
    if state.db.is_ready().await {
        Json(Ready {
            status: "ready",
            database: state.db.backend_name(),
        })
        .into_response()
    } else {
        AppError::Unavailable.into_response()
    }
}

/// A JSON Web Key Set (RFC 7517) of the keys that sign access tokens.
#[derive(ToSchema)]
#[allow(dead_code)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// An Ed25519 public key (RFC 8037).
#[derive(ToSchema)]
#[allow(dead_code)]
struct Jwk {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key, base64url.
    x: String,
    /// Matches the `kid` in access tokens' headers.
    kid: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    key_use: String,
    #[schema(example = "EdDSA")]
    alg: String,
}

/// The public keys that verify access tokens: the current signing key, a key prepared
/// ahead of use (if any), and retired keys until the last token they signed has expired.
/// Pick the key by the token's `kid`; refetch the set when a token names an unknown one.
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "jwks", tag = "operations",
    responses((status = 200, description = "The key set.", body = JwkSet)))]
async fn jwks(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.signer.jwks(state.now())),
    )
        .into_response()
}

/// Prometheus text format, on the public listener only when `metrics_bearer_token` is set
/// and presented. The counters say which accounts exist and when a guess was right
/// (`unknown_account`, login outcomes per second), so they are nobody's business but the
/// operator's: by default they are served only on the separate `metrics_listen` address.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    description = "Prometheus text. Served here only when the server sets `metrics_bearer_token`, to requests bearing it; otherwise scrape the separate `metrics_listen` address, which serves `GET /metrics` alone.",
    security(("metricsToken" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain"),
        (status = 401, description = "The metrics token is missing or wrong (`unauthorized`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Metrics are not served on this listener (`not_found`).", body = Problem, content_type = "application/problem+json"),
    ))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = &state.config.metrics_bearer_token else {
        return AppError::NotFound.into_response();
    };
    let presented = bearer_token(&headers).unwrap_or("");
    if !same_secret(presented, expected.expose_secret()) {
        return AppError::Unauthenticated.into_response();
    }
    render_metrics(&state).await
}

/// Compares digests in constant time, so neither the content nor the length of the
/// configured token leaks through timing.
fn same_secret(presented: &str, expected: &str) -> bool {
    use sha2::Digest;
    let a = sha2::Sha256::digest(presented.as_bytes());
    let b = sha2::Sha256::digest(expected.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// The router of the `metrics_listen` address: `GET /metrics` alone, unauthenticated (the
/// address is meant to be reachable by the scraper only: loopback or an internal network).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { render_metrics(&state).await }),
        )
        .fallback(|| async { AppError::NotFound })
        .with_state(state)
}

/// The exposition text. Gauges are sampled now; counters accumulate per instance.
async fn render_metrics(state: &AppState) -> Response {
    let (size, idle) = state.db.pool_usage();
    let mut gauges = vec![
        (
            "tessera_argon2_in_flight",
            vec![],
            state.hasher.in_flight() as f64,
        ),
        (
            "tessera_use_cases_in_flight",
            vec![],
            state.use_cases.running() as f64,
        ),
        (
            "tessera_db_pool_connections",
            vec![("state", "idle".to_owned())],
            idle as f64,
        ),
        (
            "tessera_db_pool_connections",
            vec![("state", "in_use".to_owned())],
            size.saturating_sub(idle as u32) as f64,
        ),
    ];
    if let Ok(active) = crate::service::devices::count_live(state).await {
        gauges.push(("tessera_trusted_devices_active", vec![], active as f64));
    }
    if let Ok((pending, oldest_age)) = crate::service::outbox::queue(state).await {
        gauges.push(("tessera_outbox_pending", vec![], pending as f64));
        gauges.push((
            "tessera_outbox_oldest_pending_age_seconds",
            vec![],
            oldest_age as f64,
        ));
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
        .into_response()
}
