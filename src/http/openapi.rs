//! The OpenAPI 3.1 document, generated from the code: every API route is registered through
//! [`OpenApiRouter::routes`], which adds the handler to the router and its
//! `#[utoipa::path]` description to the document in one step, so a route cannot be served
//! without being documented (a test also scans the source for plain `.route(` calls).
//! Request bodies are described by `ToSchema` structs next to each handler that mirror what
//! it reads field by field; response bodies are the real `Serialize` types. The response
//! groups many operations share are in [`super::responses`].
//!
//! Also here: `GET /openapi.json` and the interactive docs page `GET /docs`, whose HTML,
//! script and style are compiled into the binary and load nothing from anywhere else.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::Problem;
use super::{admin, compat, ops, v1};
use crate::state::AppState;

/// Name of the security scheme for access tokens.
pub const BEARER: &str = "bearerAuth";
/// Name of the security scheme for the `twoFactorToken` of `POST /v1/auth/2fa/verify`.
pub const TWO_FACTOR_BEARER: &str = "twoFactorToken";
/// Name of the security scheme for the `enrollmentToken` of a login that must enrol first.
pub const ENROLLMENT_BEARER: &str = "enrollmentToken";
/// Name of the security scheme for admin API keys on `/admin/v1`.
pub const ADMIN_BEARER: &str = "adminApiKey";
/// Name of the security scheme for `metrics_bearer_token` on `GET /metrics`.
pub const METRICS_BEARER: &str = "metricsToken";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Self-hosted authentication server with two-factor authentication at its core.\n\n\
Two surfaces over one core: `/v1/auth/...` (accounts, tokens and the SalesOS two-factor API) and \
`/authentication/...` (the Sapfiai API, field for field). JSON field names are camelCase, times are \
RFC 3339 UTC strings and IDs are UUIDs. Every failure on `/v1` and the operational routes is an \
RFC 9457 problem document (`application/problem+json`) with a stable `code`.\n\n\
`/v1` refuses unknown JSON fields (`additionalProperties: false`); `/authentication` ignores them, \
as the API it reproduces did. Request bodies are at most 64 KiB.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(Problem)),
    tags(
        (name = "accounts", description = "Accounts, sessions and tokens (`/v1/auth`)."),
        (name = "two-factor", description = "TOTP two-factor authentication, backup codes and trusted devices (`/v1/auth/2fa`, SalesOS)."),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, the second step of a login, and passwordless sign-in (`/v1/auth/passkeys`)."),
        (name = "sapfiai", description = "The Sapfiai compatibility surface (`/authentication`): Sapfiai's envelopes, field for field."),
        (name = "admin", description = "The admin API (`/admin/v1`), for the backend of the product Tessera protects: accounts, their locks, sessions, events and devices. Authenticated by admin API keys (`tessera admin api-keys create`); served on `admin_listen` when it is set, else on the public listener, where it answers 404 while no key exists."),
        (name = "operations", description = "Health, readiness, public keys and metrics."),
        (name = "documentation", description = "This document and the interactive docs page."),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, format, description) in [
            (
                BEARER,
                Some("JWT"),
                "An access token (`accessToken`, or `token` on `/authentication`): an EdDSA-signed JWT, 15 minutes.",
            ),
            (
                TWO_FACTOR_BEARER,
                None,
                "The `twoFactorToken` from a login that answered `requires2FA: true`: opaque, 5 minutes, single use.",
            ),
            (
                ENROLLMENT_BEARER,
                None,
                "The `enrollmentToken` from a login that answered `requiresEnrollment: true`: opaque, 10 minutes; allows TOTP enrolment (`setup`, `verify-setup`) only.",
            ),
            (
                ADMIN_BEARER,
                None,
                "An admin API key (`tsk_...`) made with `tessera admin api-keys create`, with the scope the route names (`users:read`, `users:write`, or `admin` for both).",
            ),
            (
                METRICS_BEARER,
                None,
                "The operator's `metrics_bearer_token`, for `GET /metrics` on the public listener.",
            ),
        ] {
            // Every scheme is a bearer token; they differ in what the token is.
            let mut http = HttpBuilder::new().scheme(HttpAuthScheme::Bearer);
            if let Some(format) = format {
                http = http.bearer_format(format);
            }
            let scheme = http.description(Some(description)).build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

/// Every documented route: the `/v1` API, the compatibility surface, the admin API, the
/// operational routes and the documentation itself. The routers serve exactly these (plus
/// static pages).
pub fn api_router() -> OpenApiRouter<AppState> {
    public_api_router().merge(admin::router())
}

/// Every documented route but the admin API: what the public listener serves when the
/// admin API has a listener of its own (`admin_listen`).
pub fn public_api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1::router())
        .merge(compat::router())
        .merge(ops::router())
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
        .routes(routes!(docs_script))
        .routes(routes!(docs_style))
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| api_router().into_openapi())
}

fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// The OpenAPI 3.1 document of every route.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_document",
    tag = "documentation",
    responses((status = 200, description = "The OpenAPI 3.1 document of this server.", body = Object, content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

/// The docs page's policy: everything from this origin only, no inline code, nothing framed.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; \
require-trusted-types-for 'script'; trusted-types 'none'";

const DOCS_HTML: &str = include_str!("docs/index.html");
const DOCS_JS: &str = include_str!("docs/docs.js");
const DOCS_CSS: &str = include_str!("docs/docs.css");

fn page(content_type: &'static str, body: &'static str) -> Response {
    super::web::embedded_file(content_type, DOCS_CSP, body)
}

/// Interactive API documentation, served from the binary: it reads `/openapi.json` and
/// sends requests to this server only.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs_page",
    tag = "documentation",
    responses((status = 200, description = "The docs page (HTML).", body = String, content_type = "text/html"))
)]
async fn docs_page() -> Response {
    page("text/html; charset=utf-8", DOCS_HTML)
}

/// The docs page's script.
#[utoipa::path(
    get,
    path = "/docs/docs.js",
    operation_id = "docs_script",
    tag = "documentation",
    responses((status = 200, description = "JavaScript.", body = String, content_type = "text/javascript"))
)]
async fn docs_script() -> Response {
    page("text/javascript; charset=utf-8", DOCS_JS)
}

/// The docs page's style sheet.
#[utoipa::path(
    get,
    path = "/docs/docs.css",
    operation_id = "docs_style",
    tag = "documentation",
    responses((status = 200, description = "CSS.", body = String, content_type = "text/css"))
)]
async fn docs_style() -> Response {
    page("text/css; charset=utf-8", DOCS_CSS)
}
