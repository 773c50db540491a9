//! The webhook HTTP client: rustls, no redirects followed, no proxy, a timeout per
//! attempt, and a guard against server-side request forgery that checks the address a
//! target resolves to (not only its name) and connects only to addresses that passed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::net::is_public;
use crate::domain::webhook::signature_header;

/// Resolves names and keeps only the addresses a webhook may reach.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{} resolves to no public address (webhook_allow_private_targets is off)",
                    name.as_str()
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private: bool,
}

/// One signed message.
pub struct Signed<'a> {
    pub url: &'a str,
    pub keys: &'a [Vec<u8>],
    pub id: &'a str,
    pub timestamp: i64,
    pub body: &'a str,
}

impl WebhookClient {
    pub fn new(timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("Tessera-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private }))
            .build()?;
        Ok(Self {
            http,
            allow_private,
        })
    }

    /// Sends one message; `Ok` on a 2xx answer, else what went wrong (never the URL or a
    /// secret).
    pub async fn send(&self, message: &Signed<'_>) -> Result<u16, String> {
        let url = reqwest::Url::parse(message.url).map_err(|e| format!("bad url: {e}"))?;
        // A literal address is never resolved, so the resolver does not see it.
        let literal = url.host_str().and_then(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        });
        if let Some(ip) = literal
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(format!(
                "refused: {ip} is not a public address (webhook_allow_private_targets is off)"
            ));
        }
        let signature = signature_header(
            message.keys,
            message.id,
            message.timestamp,
            message.body.as_bytes(),
        );
        let response = self
            .http
            .post(url)
            .header("webhook-id", message.id)
            .header("webhook-timestamp", message.timestamp.to_string())
            .header("webhook-signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.body.to_owned())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// A transport error without its URL, with its causes.
fn describe(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
