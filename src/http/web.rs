//! The account security page: static HTML, CSS and JavaScript from `web/`, embedded in the
//! binary and served at `/`. The script is ES modules: `/app.js`, the entry the HTML loads
//! with `type="module"`, and the modules under `/app/` it imports (same origin, so
//! `script-src 'self'` covers them). The page talks only to the public `/v1` API, like any other
//! client. Its Content-Security-Policy allows scripts, styles and connections to this
//! origin only (no inline script, no third party) and requires Trusted Types, so the page
//! cannot be framed and an injected string cannot become markup or script.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// The page's policy; the global default (`default-src 'none'`) still covers every API route.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; manifest-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; \
require-trusted-types-for 'script'; trusted-types 'none'";

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
/// The modules `app.js` imports, by the path they are served at.
pub const APP_MODULES: [(&str, &str); 13] = [
    ("/app/api.js", include_str!("../../web/app/api.js")),
    ("/app/browser.js", include_str!("../../web/app/browser.js")),
    ("/app/devices.js", include_str!("../../web/app/devices.js")),
    ("/app/dialogs.js", include_str!("../../web/app/dialogs.js")),
    ("/app/dom.js", include_str!("../../web/app/dom.js")),
    ("/app/events.js", include_str!("../../web/app/events.js")),
    ("/app/forms.js", include_str!("../../web/app/forms.js")),
    (
        "/app/messages.js",
        include_str!("../../web/app/messages.js"),
    ),
    (
        "/app/password.js",
        include_str!("../../web/app/password.js"),
    ),
    (
        "/app/passkeys.js",
        include_str!("../../web/app/passkeys.js"),
    ),
    ("/app/signin.js", include_str!("../../web/app/signin.js")),
    ("/app/storage.js", include_str!("../../web/app/storage.js")),
    (
        "/app/two_factor.js",
        include_str!("../../web/app/two_factor.js"),
    ),
];
const APP_CSS: &str = include_str!("../../web/app.css");
const FAVICON_SVG: &str = include_str!("../../web/favicon.svg");

/// The type every script is served with (modules need a JavaScript MIME type).
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

pub fn router() -> Router<AppState> {
    let router = APP_MODULES
        .iter()
        .fold(Router::new(), |router, &(path, body)| {
            router.route(path, get(move || async move { asset(JAVASCRIPT, body) }))
        });
    router
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route("/app.js", get(|| async { asset(JAVASCRIPT, APP_JS) }))
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/favicon.svg",
            get(|| async { asset("image/svg+xml", FAVICON_SVG) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    embedded_file(content_type, PAGE_CSP, body)
}

/// A file embedded in the binary, served with its own content security policy and no
/// access to the camera, microphone, location or payments (the account page and the API
/// documentation).
pub(super) fn embedded_file(
    content_type: &'static str,
    csp: &'static str,
    body: &'static str,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
            ),
        ],
        body,
    )
        .into_response()
}
