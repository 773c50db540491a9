//! Extractors that turn a request into checked values or a problem document: JSON bodies
//! read field by field (so every bad field gets its own message), bearer authentication,
//! and the caller's IP and user agent.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::error::{AppError, FieldErrors};
use crate::service::{Principal, RequestContext, sessions};
use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON object body, read one field at a time. Unknown fields are refused on `/v1`
/// (a typo should not silently do nothing) and ignored on the compatibility surface.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    prefix: String,
    known: BTreeSet<String>,
    errors: FieldErrors,
}

impl Fields {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AppError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            let reason = match e.classify() {
                serde_json::error::Category::Eof => "it ends early",
                serde_json::error::Category::Io => "it could not be read",
                _ => "syntax error",
            };
            AppError::MalformedJson(format!(
                "{reason} at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        match value {
            Value::Object(map) => Ok(Self::from_map(map, String::new())),
            _ => Err(AppError::field("body", "must be a JSON object")),
        }
    }

    pub fn empty() -> Self {
        Self::from_map(Map::new(), String::new())
    }

    fn from_map(map: Map<String, Value>, prefix: String) -> Self {
        Self {
            map,
            prefix,
            known: BTreeSet::new(),
            errors: FieldErrors::new(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn error(&mut self, name: &str, message: &str) {
        self.errors
            .entry(self.key(name))
            .or_default()
            .push(message.to_owned());
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.known.insert(name.to_owned());
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        }
    }

    /// A string of at most `max` characters, or `None` (and an error) if missing or bad.
    pub fn required_string(&mut self, name: &str, max: usize) -> Option<String> {
        match self.take(name) {
            None => {
                self.error(name, "is required");
                None
            }
            Some(value) => self.check_string(name, value, max, true),
        }
    }

    /// A string of at most `max` characters if present; empty counts as absent.
    pub fn optional_string(&mut self, name: &str, max: usize) -> Option<String> {
        let value = self.take(name)?;
        self.check_string(name, value, max, false)
    }

    fn check_string(
        &mut self,
        name: &str,
        value: Value,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let Value::String(s) = value else {
            self.error(name, "must be a string");
            return None;
        };
        if s.trim().is_empty() {
            if required {
                self.error(name, "is required");
            }
            return None;
        }
        if s.chars().count() > max {
            self.error(name, &format!("must be at most {max} characters"));
            return None;
        }
        if s.chars().any(|c| c.is_control() && c != '\t') {
            self.error(name, "must not contain control characters");
            return None;
        }
        Some(s)
    }

    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.take(name)? {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    pub fn required_bool(&mut self, name: &str) -> Option<bool> {
        if !self.map.contains_key(name) || self.map.get(name) == Some(&Value::Null) {
            self.take(name);
            self.error(name, "is required");
            return None;
        }
        self.optional_bool(name)
    }

    /// A nested object, read with its own `Fields` whose errors are named `name.field`.
    pub fn optional_object(&mut self, name: &str) -> Option<Fields> {
        match self.take(name)? {
            Value::Object(map) => Some(Self::from_map(map, format!("{}.", self.key(name)))),
            _ => {
                self.error(name, "must be an object");
                None
            }
        }
    }

    /// Takes in a nested object's errors (after reading it) and unknown fields.
    pub fn absorb(&mut self, nested: Fields, strict: bool) {
        let (errors, _) = nested.into_errors(strict);
        for (k, v) in errors {
            self.errors.entry(k).or_default().extend(v);
        }
    }

    fn into_errors(mut self, strict: bool) -> (FieldErrors, ()) {
        if strict {
            let unknown: Vec<String> = self
                .map
                .keys()
                .filter(|k| !self.known.contains(*k))
                .cloned()
                .collect();
            for name in unknown {
                let shown: String = name.chars().take(64).collect();
                self.error(&shown, "is not a known field");
            }
        }
        (self.errors, ())
    }

    /// Ends reading: any error so far (and, if `strict`, any unknown field) fails.
    pub fn finish(self, strict: bool) -> Result<(), AppError> {
        let (errors, _) = self.into_errors(strict);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(errors))
        }
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

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

/// A required JSON object body.
pub struct JsonBody(pub Fields);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = read_body(req).await?;
        Ok(JsonBody(Fields::from_bytes(&bytes)?))
    }
}

/// A JSON object body that may be left out entirely (no body, no content type, or `null`).
pub struct OptionalJsonBody(pub Fields);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        if has_type && !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = read_body(req).await?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(OptionalJsonBody(Fields::empty()));
        }
        if !has_type {
            return Err(AppError::UnsupportedMediaType);
        }
        if bytes.trim_ascii() == b"null" {
            return Ok(OptionalJsonBody(Fields::empty()));
        }
        Ok(OptionalJsonBody(Fields::from_bytes(&bytes)?))
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

/// A signed-in caller: a valid access token whose session is live. A write (any method
/// but GET, HEAD, OPTIONS) also counts against the account's write limit, so every
/// authenticated write route is limited without opting in.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::Unauthenticated)?;
        let principal = sessions::authenticate(state, token).await?;
        super::ratelimit::limit_account_write(&parts.method, &parts.extensions, principal.user_id)?;
        Ok(Auth(principal))
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
/// untrusted hop is the client. Without trusted proxies the header is ignored, since
/// anyone can send it.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let mut current = peer?;
    if !trusted.contains(&current) {
        return Some(current);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for hop in forwarded.into_iter().rev() {
        current = hop;
        if !trusted.contains(&hop) {
            break;
        }
    }
    Some(current)
}
