//! HTTP: the router, the layers every request passes through, and the handlers of both
//! API surfaces. Handlers never touch SQL; they parse, call a service, and answer.

pub mod admin;
pub mod body;
pub mod compat;
pub mod conn;
pub mod dto;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod ratelimit;
pub mod responses;
pub mod tls;
pub mod v1;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::AppError;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The public listener's router: every API route (the admin API too, unless it has a
/// listener of its own, `admin_listen`), the account page, and the layers every request
/// passes through.
pub fn router(state: AppState) -> Router {
    // Every API route comes with its OpenAPI description (see `openapi`).
    let api = if state.config.admin_listen.is_some() {
        openapi::public_api_router()
    } else {
        openapi::api_router()
    };
    let (api, _) = api.split_for_parts();
    with_layers(Router::new().merge(api).merge(web::router()), state)
}

/// The `admin_listen` listener's router: the admin API only, with the same layers.
pub fn admin_router(state: AppState) -> Router {
    let (api, _) = admin::router().split_for_parts();
    with_layers(Router::new().merge(api), state)
}

fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs.max(1));
    let limiter = Arc::new(ratelimit::RateLimiter::new(
        state.config.rate_limit_per_minute,
        state.config.rate_limit_burst,
        state.clock.clone(),
    ));
    let session_write_limiter = Arc::new(ratelimit::SessionWriteLimiter::new(
        state.config.account_write_rate_per_minute,
        state.config.account_write_burst,
        state.clock.clone(),
    ));
    routes
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        // Inside the problem-document net, so a timed-out request gets a 408 problem document.
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(Extension(limiter))
        .layer(Extension(session_write_limiter))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .with_state(state.clone())
        .layer(CatchPanicLayer::custom(|_| AppError::internal("handler panicked").into_response()))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), strict_transport_security))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::from_fn(drop_unsafe_request_id))
}

/// Longest client-supplied request id that is kept.
pub const MAX_REQUEST_ID: usize = 64;

/// Whether a client's `x-request-id` may be kept: 1 to [`MAX_REQUEST_ID`] characters of
/// `A-Z a-z 0-9 . _ : -`. That covers UUIDs, ULIDs and the ids proxies and tracing systems
/// make, while an id is logged and echoed as is: a long one would bloat every log line and
/// answer, and spaces, `=` or quotes would let a client write fake fields into the log.
pub fn is_safe_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Removes an `x-request-id` that is not a short safe token (or comes more than once), so
/// the next layer makes a fresh one: it is never logged or echoed.
async fn drop_unsafe_request_id(mut req: Request, next: Next) -> Response {
    let ids = req.headers().get_all(REQUEST_ID);
    let mut values = ids.iter();
    let keep = match (values.next(), values.next()) {
        (Some(id), None) => is_safe_request_id(id.as_bytes()),
        _ => false,
    };
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// Any error response that is not already JSON (from axum's own rejections or a layer)
/// becomes a problem document, so clients never see an empty or plain-text error.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut replaced = problem::error_for_status(status).into_response();
    *replaced.status_mut() = status;
    if let Some(allow) = allow {
        replaced.headers_mut().insert(header::ALLOW, allow);
    }
    replaced
}

/// Counts every request and its latency by route template (never the raw path, which
/// would let clients create unbounded label values), method and status.
async fn record_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    state.metrics.increment(
        "tessera_http_requests_total",
        &[("route", &route), ("method", &method), ("status", &status)],
    );
    state.metrics.observe(
        "tessera_http_request_duration_seconds",
        &[("route", &route), ("method", &method)],
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `Strict-Transport-Security` value: one year, this host only (`includeSubDomains` would
/// bind every other service under the domain, which is not Tessera's to decide).
pub const HSTS: &str = "max-age=31536000";

/// Sends HSTS when the request arrived over TLS: on this server's own TLS listener, or from
/// a trusted proxy that says `X-Forwarded-Proto: https`. Never over plain HTTP from anyone
/// else (browsers ignore it there, and an untrusted peer's header proves nothing).
async fn strict_transport_security(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|ci| ci.0.ip());
    let over_tls = state.config.tls_enabled()
        || extract::forwarded_https(peer, req.headers(), &state.config.trusted_proxies);
    let mut response = next.run(req).await;
    if over_tls {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

/// Headers that keep browsers from sniffing, framing or caching API answers.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    response
}
