//! Operational routes: liveness, readiness and the public key set.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::Unavailable;
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

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "jwks", tag = "operations",
    responses((status = 200, description = "The key set.", body = JwkSet)))]
async fn jwks(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.signer.jwks()),
    )
        .into_response()
}

/// Prometheus text format. Gauges are sampled now; counters accumulate per instance.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
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
    if let Ok(mut conn) = state.db.read().await
        && let Ok(active) = crate::db::devices::count_all_live(&mut conn, state.now()).await
    {
        gauges.push(("tessera_trusted_devices_active", vec![], active as f64));
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
