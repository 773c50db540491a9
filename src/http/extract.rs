//! Extractors that turn a request into checked values or a problem document: JSON bodies
//! (typed and checked, see [`super::body`]), bearer authentication, and the caller's IP
//! and user agent.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use uuid::Uuid;

use super::body::{BodyContext, RequestBody, Unchecked};
use crate::domain::net::{IpRange, canonical};
use crate::error::AppError;
use crate::service::{Principal, RequestContext, sessions};
use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn read_body(req: Request) -> Result<axum::body::Bytes, AppError> {
    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES);
    if too_large {
        return Err(AppError::PayloadTooLarge);
    }
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            let is_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if is_limit {
                AppError::PayloadTooLarge
            } else {
                AppError::MalformedJson("the body could not be read".into())
            }
        })
}

/// The body as a JSON object; with `optional`, no body (or `null`) reads as `{}`.
pub async fn json_object(req: Request, optional: bool) -> Result<Map<String, Value>, AppError> {
    let has_type = req.headers().contains_key(header::CONTENT_TYPE);
    if (!optional || has_type) && !is_json(req.headers()) {
        return Err(AppError::UnsupportedMediaType);
    }
    let bytes = read_body(req).await?;
    if optional {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Map::new());
        }
        if !has_type {
            return Err(AppError::UnsupportedMediaType);
        }
        if bytes.trim_ascii() == b"null" {
            return Ok(Map::new());
        }
    }
    super::body::parse_object(&bytes)
}

/// The rules' context of a `/v1` body: unknown fields are refused.
pub fn strict_context(state: &AppState) -> BodyContext {
    BodyContext {
        strict: true,
        issuer: state.config.issuer.clone(),
        account_words: Vec::new(),
    }
}

/// A `/v1` JSON body read into `T` and checked. With `OPTIONAL`, the body may be left
/// out entirely (no body, no content type, or `null`) and then reads as `{}`.
pub struct Body<T, const OPTIONAL: bool = false>(pub T);

/// A `/v1` JSON body that may be left out.
pub type OptionalBody<T> = Body<T, true>;

impl<T: RequestBody, const OPTIONAL: bool> FromRequest<AppState> for Body<T, OPTIONAL> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let map = json_object(req, OPTIONAL).await?;
        Unchecked::read(map)?
            .check(&strict_context(state))
            .map(Body)
    }
}

/// A required `/v1` JSON body read into `T`, for a route whose rules need more context
/// than the body (the signed-in account), which checks it itself.
pub struct UncheckedBody<T>(pub Unchecked<T>);

impl<T: RequestBody> FromRequest<AppState> for UncheckedBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &AppState) -> Result<Self, Self::Rejection> {
        let map = json_object(req, false).await?;
        Unchecked::read(map).map(UncheckedBody)
    }
}

/// `limit` and `offset` of a paged list, as the query string gives them.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Entries per page.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    /// Entries to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// A checked [`Page`]: `limit` 1 to 100 (default 50), `offset` 0 or more (default 0).
pub struct Paging {
    pub limit: i64,
    pub offset: i64,
}

impl Paging {
    /// The answer to a query string that does not read (`limit` or `offset` not a whole
    /// number).
    fn unreadable() -> AppError {
        AppError::field("limit", "limit and offset must be whole numbers")
    }

    /// Checks `limit` and `offset` as sent.
    fn check(limit: Option<i64>, offset: Option<i64>) -> Result<Self, AppError> {
        let limit = limit.unwrap_or(50);
        if !(1..=crate::service::events::MAX_PAGE_SIZE).contains(&limit) {
            return Err(AppError::field("limit", "must be between 1 and 100"));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(AppError::field("offset", "must not be negative"));
        }
        Ok(Paging { limit, offset })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(page) = Query::<Page>::from_request_parts(parts, state)
            .await
            .map_err(|_| Paging::unreadable())?;
        Paging::check(page.limit, page.offset)
    }
}

/// The bearer token of the `Authorization` header, if well-formed.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 4096)
        .then_some(token)
}

/// The `twoFactorToken` a login's second step takes as bearer; without one the step
/// answers `invalid_two_factor_token`.
pub fn two_factor_token(headers: &HeaderMap) -> Result<String, AppError> {
    bearer_token(headers)
        .map(str::to_owned)
        .ok_or(AppError::InvalidTwoFactorToken)
}

/// An id in the path: one that is not a UUID names nothing there (404).
pub fn path_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound)
}

/// The bearer token an access-token route needs; without one the caller is unauthenticated.
fn required_bearer(parts: &Parts) -> Result<&str, AppError> {
    bearer_token(&parts.headers).ok_or(AppError::Unauthenticated)
}

/// A signed-in caller: a valid access token whose session is live. A write (any method
/// but GET, HEAD, OPTIONS) also counts against the session's write limit, so every
/// authenticated write route is limited without opting in.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let SigningOut(principal) = SigningOut::from_request_parts(parts, state).await?;
        super::ratelimit::limit_session_write(&parts.method, &parts.extensions, &principal)?;
        Ok(Auth(principal))
    }
}

/// A signed-in caller ending its own session: a valid access token whose session is live,
/// as for [`Auth`] (which is this plus the write limit), but never refused by the write
/// limit. Someone spending a stolen token's write budget must not keep its
/// owner from signing out, and a sign-out cannot be repeated to flood: it ends the session
/// its token needs.
pub struct SigningOut(pub Principal);

impl FromRequestParts<AppState> for SigningOut {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = sessions::authenticate(state, required_bearer(parts)?).await?;
        Ok(SigningOut(principal))
    }
}

/// The caller of an enrolment step (`setup`, `verify-setup`): a signed-in session (as
/// [`Auth`]), or the `enrollmentToken` of a login that answered `requiresEnrollment: true`.
/// An access token is a JWT (with dots); an enrolment token is opaque base64url (without),
/// so the bearer says which it is. An enrolment token counts against the per-address limit
/// of the unauthenticated routes.
pub enum Enroller {
    Session(Principal),
    EnrolmentToken(String),
}

impl FromRequestParts<AppState> for Enroller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = required_bearer(parts)?;
        if bearer.contains('.') {
            return Auth::from_request_parts(parts, state)
                .await
                .map(|Auth(principal)| Enroller::Session(principal));
        }
        let token = bearer.to_owned();
        super::ratelimit::RateLimit::from_request_parts(parts, state).await?;
        Ok(Enroller::EnrolmentToken(token))
    }
}

/// A caller whose access token verifies, with the session NOT yet checked: for a route
/// whose own query checks the session in the same round trip (`status`).
pub struct Bearer(pub Principal);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        sessions::verify_token(state, required_bearer(parts)?)
            .await
            .map(Bearer)
    }
}

/// The caller's address (from `X-Forwarded-For` only behind a configured trusted proxy)
/// and user agent.
pub struct Client(pub RequestContext);

impl FromRequestParts<AppState> for Client {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip());
        let ip = client_ip(peer, &parts.headers, &state.config.trusted_proxies);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Ok(Client(RequestContext {
            ip: ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "unknown".into()),
            user_agent,
        }))
    }
}

/// Walks `X-Forwarded-For` from the right while hops are trusted proxies; the first
/// untrusted hop is the client. Without trusted proxies the header is ignored, since anyone
/// can send it. Addresses are compared and returned in canonical form (an IPv4 client on a
/// dual-stack listener is its IPv4 address).
///
/// Each proxy appends the address it received from, so only the entries right of the first
/// untrusted one were written by proxies we trust; anything further left is whatever the
/// client chose to send. An entry that cannot be read (`unknown`, an obfuscated name,
/// garbage, an empty slot) therefore ends the walk: the client is the last address walked
/// past, the nearest trusted proxy or the peer itself, and never an entry to its left.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpRange]) -> Option<IpAddr> {
    let mut current = canonical(peer?);
    if !IpRange::any_contains(trusted, current) {
        return Some(current);
    }
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(hop) = forwarded_address(entry) else {
            break;
        };
        current = canonical(hop);
        if !IpRange::any_contains(trusted, current) {
            break;
        }
    }
    Some(current)
}

/// Whether a trusted proxy says the client reached it over HTTPS: the peer is in
/// `trusted` and the last `X-Forwarded-Proto` value (the one the peer itself wrote, should
/// several proxies have appended theirs) is `https`. From anyone else the header is ignored.
pub fn forwarded_https(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpRange]) -> bool {
    let Some(peer) = peer else {
        return false;
    };
    if !IpRange::any_contains(trusted, peer) {
        return false;
    }
    headers
        .get_all("x-forwarded-proto")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// One `X-Forwarded-For` entry in the forms proxies write: `192.0.2.7`, `192.0.2.7:51234`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`, with surrounding spaces. Anything
/// else is `None`. The standard library's address parsers do the work; this only tries
/// them in turn (the port, when present, says nothing about the client and is dropped).
pub fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        let trusted: Vec<IpRange> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_ip(Some(ip(peer)), &headers, &trusted)
            .unwrap()
            .to_string()
    }

    #[test]
    fn reads_the_forms_proxies_write() {
        for (entry, expected) in [
            ("192.0.2.7", "192.0.2.7"),
            (" 192.0.2.7 ", "192.0.2.7"),
            ("192.0.2.7:51234", "192.0.2.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("  [2001:db8::1]:443\t", "2001:db8::1"),
            ("::ffff:192.0.2.9", "::ffff:192.0.2.9"),
        ] {
            assert_eq!(
                forwarded_address(entry).map(|i| i.to_string()),
                Some(expected.to_owned()),
                "{entry}"
            );
        }
        for entry in [
            "",
            " ",
            "unknown",
            "_hidden",
            "192.0.2.7:",
            "192.0.2.7:99999",
            "[192.0.2.7]",
            "2001:db8::1]",
            "[2001:db8::1",
            "[2001:db8::1]:",
            "1.2.3",
            "fe80::1%eth0",
            "for=1.2.3.4",
        ] {
            assert_eq!(forwarded_address(entry), None, "{entry:?}");
        }
    }

    #[test]
    fn walks_from_the_right_past_trusted_proxies() {
        let proxy = ["127.0.0.1"];
        assert_eq!(
            client("127.0.0.1", &["198.51.100.1"], &proxy),
            "198.51.100.1"
        );
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 203.0.113.7:51234"], &proxy),
            "203.0.113.7"
        );
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, [2001:db8::1]:443"], &proxy),
            "2001:db8::1"
        );
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6", "198.51.100.2"], &proxy),
            "198.51.100.2"
        );
        // Trusted hops in between, with ports and in mapped form, are walked past.
        assert_eq!(
            client(
                "10.0.0.5",
                &["6.6.6.6, 198.51.100.3, 10.1.1.1:8080, ::ffff:10.2.2.2"],
                &["10.0.0.0/8"]
            ),
            "198.51.100.3"
        );
        // Only trusted proxies: the leftmost of them.
        assert_eq!(
            client("127.0.0.1", &["127.0.0.1, 127.0.0.1"], &proxy),
            "127.0.0.1"
        );
        assert_eq!(client("127.0.0.1", &[], &proxy), "127.0.0.1");
    }

    #[test]
    fn an_unreadable_entry_ends_the_walk_at_the_last_trusted_address() {
        let proxy = ["127.0.0.1", "10.0.0.0/8"];
        for forwarded in [
            "6.6.6.6, unknown",
            "6.6.6.6, garbage",
            "6.6.6.6,",
            "6.6.6.6, , ",
            "6.6.6.6, _hidden",
        ] {
            assert_eq!(
                client("127.0.0.1", &[forwarded], &proxy),
                "127.0.0.1",
                "{forwarded}"
            );
        }
        // Past a trusted proxy: that proxy is the client, never the spoofed entry.
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, unknown, 10.0.0.9"], &proxy),
            "10.0.0.9"
        );
        // A header value that is not text counts as unreadable.
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        headers.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff").unwrap());
        let trusted: Vec<IpRange> = vec!["127.0.0.1".parse().unwrap()];
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &headers, &trusted),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn forwarded_https_is_believed_only_from_a_trusted_proxy() {
        let https = |peer: &str, values: &[&str], trusted: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("x-forwarded-proto", HeaderValue::from_str(value).unwrap());
            }
            let trusted: Vec<IpRange> = trusted.iter().map(|t| t.parse().unwrap()).collect();
            forwarded_https(Some(ip(peer)), &headers, &trusted)
        };
        assert!(https("127.0.0.1", &["https"], &["127.0.0.1"]));
        assert!(https("::ffff:10.0.0.2", &[" HTTPS "], &["10.0.0.0/8"]));
        assert!(https("127.0.0.1", &["http, https"], &["127.0.0.1"]));
        assert!(!https("127.0.0.1", &["https, http"], &["127.0.0.1"]));
        assert!(!https("127.0.0.1", &["https", "http"], &["127.0.0.1"]));
        assert!(!https("127.0.0.1", &["http"], &["127.0.0.1"]));
        assert!(!https("127.0.0.1", &[], &["127.0.0.1"]));
        assert!(!https("192.0.2.1", &["https"], &["127.0.0.1"]));
        assert!(!https("127.0.0.1", &["https"], &[]));
    }

    #[test]
    fn peers_are_compared_and_reported_canonically() {
        // An IPv4 proxy seen through a dual-stack listener is still the configured proxy.
        assert_eq!(
            client("::ffff:127.0.0.1", &["198.51.100.1"], &["127.0.0.1"]),
            "198.51.100.1"
        );
        assert_eq!(
            client("::ffff:127.0.0.1", &["198.51.100.1"], &["127.0.0.0/8"]),
            "198.51.100.1"
        );
        assert_eq!(
            client("::1", &["198.51.100.1"], &["::1/128"]),
            "198.51.100.1"
        );
        // An untrusted mapped peer is reported as its IPv4 address; its header is ignored.
        assert_eq!(
            client("::ffff:192.0.2.1", &["198.51.100.1"], &["127.0.0.1"]),
            "192.0.2.1"
        );
        assert_eq!(client("192.0.2.1", &["198.51.100.1"], &[]), "192.0.2.1");
        // A forwarded client in mapped form is its IPv4 address too.
        assert_eq!(
            client("127.0.0.1", &["::ffff:198.51.100.4"], &["127.0.0.1"]),
            "198.51.100.4"
        );
    }
}
