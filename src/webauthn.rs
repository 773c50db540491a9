//! The WebAuthn relying party: which site passkeys are bound to (`webauthn_rp_id`), which
//! pages may use them (`webauthn_origins`), and the `webauthn-rs` instance that runs the
//! ceremonies. Built once from the configuration; an inconsistent configuration is a
//! start-up error that says what to change, because a browser would refuse every passkey
//! ceremony of a misconfigured server without telling the user why.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use webauthn_rs::prelude::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::Config;

/// How long a started ceremony (registration or sign-in) may be finished.
pub const CEREMONY_TTL_SECS: i64 = 5 * 60;

/// The relying party ID when none is configured.
pub const DEFAULT_RP_ID: &str = "localhost";

/// The relying party, ready to run ceremonies.
pub struct RelyingParty {
    pub webauthn: Webauthn,
    /// Authenticator models a new passkey may come from; empty: any.
    pub allowed_aaguids: Vec<uuid::Uuid>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("origins", &self.webauthn.get_allowed_origins())
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// Checks the `webauthn_*` settings against each other and builds the relying party.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let rp_id = config
            .webauthn_rp_id
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_RP_ID)
            .to_ascii_lowercase();
        check_rp_id(&rp_id)?;
        let rp_name = config
            .webauthn_rp_name
            .clone()
            .unwrap_or_else(|| config.issuer.clone());
        let (origins, any_port) = if config.webauthn_origins.is_empty() {
            ensure!(
                rp_id == DEFAULT_RP_ID,
                "webauthn_origins is empty, so passkeys would only work on http://localhost, but webauthn_rp_id is {rp_id:?}: list the origins of the pages that use passkeys in webauthn_origins (such as https://{rp_id})"
            );
            (
                vec![Url::parse("http://localhost").expect("a valid URL")],
                true,
            )
        } else {
            let origins = config
                .webauthn_origins
                .iter()
                .map(|origin| check_origin(origin.trim(), &rp_id))
                .collect::<anyhow::Result<Vec<_>>>()?;
            (origins, false)
        };
        let mut builder = WebauthnBuilder::new(&rp_id, &origins[0])
            .with_context(|| {
                format!(
                    "webauthn_origins: {} is not on webauthn_rp_id {rp_id}",
                    origins[0]
                )
            })?
            .rp_name(&rp_name)
            .timeout(Duration::from_secs(CEREMONY_TTL_SECS as u64))
            .allow_any_port(any_port);
        for origin in &origins[1..] {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder.build().context(
            "building the WebAuthn relying party from webauthn_rp_id and webauthn_origins",
        )?;
        Ok(Self {
            webauthn,
            allowed_aaguids: config.webauthn_allowed_aaguids.clone(),
        })
    }
}

fn check_rp_id(rp_id: &str) -> anyhow::Result<()> {
    ensure!(!rp_id.is_empty(), "webauthn_rp_id must not be empty");
    ensure!(
        rp_id.parse::<IpAddr>().is_err() && !rp_id.starts_with('['),
        "webauthn_rp_id must be a domain name, not an IP address ({rp_id}): browsers refuse passkeys for IP addresses; use localhost in development"
    );
    ensure!(
        rp_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !rp_id.starts_with('.')
            && !rp_id.ends_with('.'),
        "webauthn_rp_id must be a bare domain name such as example.com (no scheme, port or path), not {rp_id:?}"
    );
    Ok(())
}

/// An origin as configured: scheme, host and optional port, nothing else; `https`, or
/// `http` for `localhost`; a host that is the RP ID or a subdomain of it.
fn check_origin(origin: &str, rp_id: &str) -> anyhow::Result<Url> {
    let url =
        Url::parse(origin).with_context(|| format!("webauthn_origins: {origin:?} is not a URL"))?;
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        bail!("webauthn_origins: {origin:?} has no host");
    };
    ensure!(
        url.path() == "/" && url.query().is_none() && url.fragment().is_none(),
        "webauthn_origins: {origin:?} must be an origin (scheme, host and port), without a path"
    );
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" => {}
        "http" => bail!(
            "webauthn_origins: {origin:?} uses http: browsers allow passkeys only on https origins (and http://localhost)"
        ),
        other => bail!("webauthn_origins: {origin:?} has scheme {other}; use https"),
    }
    ensure!(
        host == rp_id || host.ends_with(&format!(".{rp_id}")),
        "webauthn_origins: {origin:?} is not on webauthn_rp_id {rp_id}: its host must be {rp_id} or end in .{rp_id}"
    );
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rp_id: Option<&str>, origins: &[&str]) -> Config {
        Config {
            webauthn_rp_id: rp_id.map(str::to_owned),
            webauthn_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            ..Config::default()
        }
    }

    fn error(rp_id: Option<&str>, origins: &[&str]) -> String {
        format!(
            "{:#}",
            RelyingParty::from_config(&config(rp_id, origins)).unwrap_err()
        )
    }

    #[test]
    fn defaults_serve_localhost_on_any_port() {
        let rp = RelyingParty::from_config(&Config::default()).unwrap();
        assert_eq!(
            rp.webauthn.get_allowed_origins()[0].as_str(),
            "http://localhost/"
        );
    }

    #[test]
    fn consistent_settings_build() {
        let rp = RelyingParty::from_config(&config(
            Some("example.com"),
            &["https://example.com", "https://login.example.com:8443"],
        ))
        .unwrap();
        assert_eq!(rp.webauthn.get_allowed_origins().len(), 2);
    }

    #[test]
    fn inconsistent_settings_are_refused_with_the_reason() {
        assert!(error(Some("example.com"), &[]).contains("webauthn_origins is empty"));
        assert!(error(Some("example.com"), &["https://example.org"]).contains("is not on"));
        assert!(error(Some("example.com"), &["https://badexample.com"]).contains("is not on"));
        assert!(error(Some("example.com"), &["http://example.com"]).contains("https"));
        assert!(error(Some("127.0.0.1"), &["https://127.0.0.1"]).contains("IP address"));
        assert!(error(Some("https://example.com"), &[]).contains("bare domain"));
        assert!(error(Some("example.com"), &["https://example.com/login"]).contains("path"));
        assert!(error(None, &["http://127.0.0.1:8080"]).contains("http"));
    }
}
