//! Configuration: built-in defaults, then an optional TOML file, then `TESSERA_*`
//! environment variables (highest precedence). Every key has a default, so a bare
//! `tessera` starts a working server.
//!
//! Secrets (`jwt_private_key`, `master_key`, `pepper`) may be given inline or, better, as a
//! path in the matching `*_file` key; when neither is set they are generated into the data
//! dir on first start.
//!
//! A key the program does not know is an error, in the file and in the environment alike:
//! a misspelt `allow_registraton = false` that silently left registration open is worse
//! than a server that does not start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::net::IpRange;
/// `TESSERA_*` variables that are not configuration keys, and are ignored: the
/// configuration file's path (read by the command line) and the variables of the test
/// suite, the benchmarks, the CI scripts and the browser test. Any other `TESSERA_*`
/// variable must name a key, or the program refuses to start.
pub const NON_CONFIG_VARIABLES: &[&str] = &[
    "TESSERA_CONFIG",
    "TESSERA_TEST_DATABASE_URL",
    "TESSERA_BENCH_BACKEND",
    "TESSERA_BENCH_POSTGRES_URL",
    "TESSERA_CI_VENV",
    "TESSERA_BIN",
];

/// The `TESSERA_*` variables that set keys, by variable name; an error naming every
/// variable that matches no key (with the nearest key, for a typo).
fn settings_from_env(
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let known = Config::keys();
    let mut settings = std::collections::HashMap::new();
    let mut unknown = Vec::new();
    for (name, value) in env {
        let Some(key) = name.strip_prefix("TESSERA_") else {
            continue;
        };
        if NON_CONFIG_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let key = key.to_ascii_lowercase();
        if known.contains(&key.as_str()) {
            settings.insert(name, value);
        } else {
            let nearest = known
                .iter()
                .map(|k| (strsim::jaro_winkler(k, &key), *k))
                .filter(|(score, _)| *score > 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!(" (did you mean TESSERA_{}?)", k.to_ascii_uppercase()))
                .unwrap_or_default();
            unknown.push(format!("{name}{nearest}"));
        }
    }
    unknown.sort();
    anyhow::ensure!(
        unknown.is_empty(),
        "unknown environment variable {}: no such configuration key (see the configuration table in README.md; {} are not configuration and are ignored)",
        unknown.join(", "),
        NON_CONFIG_VARIABLES.join(", ")
    );
    Ok(settings)
}

/// `require_second_factor`: which accounts must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactorPolicy {
    /// Only the accounts an operator marked (`second_factor_required`).
    Off,
    /// Every account.
    All,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// Folder for the SQLite database and generated keys.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://<data_dir>/tessera.db`.
    pub database_url: Option<String>,
    /// Most connections the pool keeps open.
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before answering 503.
    pub database_acquire_timeout_secs: u64,
    /// Name shown in authenticator apps and used as the JWT `iss`.
    pub issuer: String,

    pub jwt_private_key: Option<SecretString>,
    pub jwt_private_key_file: Option<PathBuf>,
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<PathBuf>,
    pub pepper: Option<SecretString>,
    pub pepper_file: Option<PathBuf>,
    /// Start even when a key file can be read or written by group or others (with a
    /// warning) instead of refusing to.
    pub allow_insecure_key_permissions: bool,

    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub two_factor_token_ttl_secs: i64,
    pub two_factor_token_max_failures: i64,
    pub trusted_device_ttl_secs: i64,
    pub totp_setup_ttl_secs: i64,
    /// Time steps accepted either side of the current one.
    pub totp_skew_steps: i64,
    /// How far (in steps) the window may be moved to follow an authenticator's clock
    /// drift, learned from accepted codes (RFC 6238 section 6).
    pub totp_max_drift_steps: i64,
    /// How far either side of now (seconds) an operator's resync looks for two
    /// consecutive codes.
    pub totp_resync_window_secs: i64,
    /// How often (seconds) an instance re-reads the signing keys from the database, so a
    /// rotation made elsewhere is picked up without a restart. A token with an unknown
    /// key id also triggers a re-read (at most once a second).
    pub signing_key_refresh_secs: u64,
    /// How old a second factor may be and still count as fresh for sensitive changes.
    pub fresh_second_factor_secs: i64,
    /// Seconds after a refresh token's rotation during which it may be exchanged once more
    /// (a client that sent two refreshes at once) instead of revoking its session. 0 (the
    /// default) is strict rotation: any reuse revokes the session.
    pub refresh_reuse_grace_secs: i64,

    pub lockout_threshold: i64,
    pub lockout_base_secs: i64,
    pub lockout_max_secs: i64,
    pub totp_suspend_threshold: i64,

    pub password_max_failures_per_hour: i64,
    pub password_delay_after: i64,
    pub ip_max_failures_per_hour: i64,
    pub ip_delay_after: i64,

    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; further logins wait their turn, so a login
    /// flood cannot exhaust memory. 0 means the number of CPU cores.
    pub argon2_max_concurrent: usize,

    /// Whether `POST /v1/auth/register` is open to anyone.
    pub allow_registration: bool,
    /// Proxies whose `X-Forwarded-For` is believed: addresses or CIDR ranges, matched in
    /// canonical form (an IPv4 peer on a dual-stack listener matches its IPv4 entry).
    /// Empty: the header is ignored.
    pub trusted_proxies: Vec<IpRange>,
    /// Requests per minute each client address may make, sustained, to the unauthenticated
    /// routes (login, register, refresh, second-factor verify, `/authentication/*`); 0 turns
    /// the limit off. Defence in depth: the security counters live in the database.
    pub rate_limit_per_minute: u32,
    /// Requests a client address may make at once before the per-minute rate applies.
    pub rate_limit_burst: u32,
    /// Authenticated writes (every POST and DELETE made with an access token) per minute
    /// each account may make, sustained; 0 turns the limit off. Bounds what one stolen or
    /// scripted access token can do to the database.
    pub account_write_rate_per_minute: u32,
    /// Authenticated writes an account may make at once before the per-minute rate applies.
    pub account_write_burst: u32,
    pub request_timeout_secs: u64,
    /// How long a connection may take to send its next request (after it opens, and after
    /// each answer) before it is closed: ends slow-header (slowloris) and idle connections.
    /// At least `request_timeout_secs + 1`, so a request in progress gets its answer first.
    pub connection_idle_timeout_secs: u64,
    /// After SIGTERM/SIGINT, how long in-flight requests get to finish.
    pub shutdown_grace_secs: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter such as `info` or `tessera=debug`.
    pub log_level: String,
    /// Seconds between runs of the background task that deletes expired rows.
    pub prune_interval_secs: u64,
    /// Days security events are kept.
    pub security_event_retention_days: i64,
    /// A second address (such as `127.0.0.1:9464`) that serves only `GET /metrics`, for the
    /// scraper; empty: none. Off by default: the counters reveal which accounts exist and
    /// when a password guess was right, and a fixed default port would clash between
    /// instances on one host.
    pub metrics_listen: Option<String>,
    /// When set, `GET /metrics` is also served on the public listener, to requests with
    /// `Authorization: Bearer <this token>` (at least 16 characters). Unset: the public
    /// `/metrics` answers 404.
    pub metrics_bearer_token: Option<SecretString>,
    /// A second address (such as `127.0.0.1:9090`) that serves the admin API (`/admin/v1`)
    /// instead of the public listener, so it need not be reachable from outside; empty: the
    /// admin API is on `listen` (answering 404 while no admin API key exists).
    pub admin_listen: Option<String>,
    /// Which accounts must have a second factor: `off` (only those an operator marked
    /// through the admin API) or `all`. A password login of such an account without one
    /// answers `requiresEnrollment: true` with a token that allows only TOTP enrolment.
    pub require_second_factor: SecondFactorPolicy,
    /// How long the set-password link of an account created without a password is valid.
    pub set_password_token_ttl_secs: i64,
    /// PEM certificate chain (leaf first) for native TLS on `listen`; with `tls_key_file`.
    /// Unset: plain HTTP (put a TLS-terminating proxy in front).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub tls_key_file: Option<PathBuf>,
    /// The WebAuthn relying party ID passkeys are bound to: the site's domain (such as
    /// `example.com`), never an IP address. Unset: `localhost`, for development.
    pub webauthn_rp_id: Option<String>,
    /// The name authenticators show for the relying party. Unset: `issuer`.
    pub webauthn_rp_name: Option<String>,
    /// Origins (`https://login.example.com`) whose pages may use passkeys; each one's host
    /// must be `webauthn_rp_id` or below it, and only `localhost` may use `http`. Empty:
    /// `http://localhost` on any port, which needs `webauthn_rp_id` unset or `localhost`.
    pub webauthn_origins: Vec<String>,
    /// Authenticator models (AAGUIDs) a new passkey may come from. Empty (the default):
    /// any, and no attestation is asked for.
    pub webauthn_allowed_aaguids: Vec<uuid::Uuid>,

    /// Webhook endpoints security events are sent to (`[[webhooks]]` tables in the
    /// configuration file).
    pub webhooks: Vec<WebhookEndpoint>,
    /// Allow webhook targets on loopback, private, link-local and other non-public
    /// addresses (checked on the address the name resolves to). Off: such a target is
    /// refused, so a webhook cannot be pointed at the server's own network.
    pub webhook_allow_private_targets: bool,
    /// How long one delivery attempt (a webhook request, an email) may take.
    pub notification_timeout_secs: u64,
    /// How often the delivery worker looks for due messages when nothing woke it.
    pub outbox_poll_interval_ms: u64,
    /// Days delivered and dead messages are kept (for `tessera admin webhooks deliveries`).
    pub outbox_retention_days: i64,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://...` (TLS from the
    /// start) or `smtp://host:25` (plain, for a relay on the same host). Unset: no emails.
    pub smtp_url: Option<SecretString>,
    /// The `From` of user emails.
    pub smtp_from: String,
    /// A sign-in from a device not seen on the account for this many days is a
    /// `new_device_sign_in` event.
    pub new_device_window_days: i64,
}

/// One webhook endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// A short name (letters, digits, `-`, `_`): what the admin commands and the delivery
    /// log call the endpoint.
    pub name: String,
    /// `https://...` (or `http://...`).
    pub url: String,
    /// `whsec_` secrets; every one signs each message, so a receiver can move to a new
    /// secret while the old one is still listed.
    pub secrets: Vec<SecretString>,
    /// The event types sent (`*` for all).
    pub events: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 10,
            database_acquire_timeout_secs: 5,
            issuer: "Tessera".into(),
            jwt_private_key: None,
            jwt_private_key_file: None,
            master_key: None,
            master_key_file: None,
            pepper: None,
            pepper_file: None,
            allow_insecure_key_permissions: false,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            two_factor_token_ttl_secs: 5 * 60,
            two_factor_token_max_failures: 5,
            trusted_device_ttl_secs: 30 * 24 * 3600,
            totp_setup_ttl_secs: 10 * 60,
            totp_skew_steps: 1,
            totp_max_drift_steps: 10,
            totp_resync_window_secs: 10 * 60,
            signing_key_refresh_secs: 60,
            fresh_second_factor_secs: 10 * 60,
            refresh_reuse_grace_secs: 0,
            lockout_threshold: 5,
            lockout_base_secs: 15 * 60,
            lockout_max_secs: 24 * 3600,
            totp_suspend_threshold: 100,
            password_max_failures_per_hour: 100,
            password_delay_after: 5,
            ip_max_failures_per_hour: 1000,
            ip_delay_after: 50,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            argon2_max_concurrent: 0,
            allow_registration: true,
            trusted_proxies: Vec::new(),
            rate_limit_per_minute: 300,
            rate_limit_burst: 300,
            account_write_rate_per_minute: 60,
            account_write_burst: 30,
            request_timeout_secs: 30,
            connection_idle_timeout_secs: 60,
            shutdown_grace_secs: 30,
            log_format: "text".into(),
            log_level: "info".into(),
            prune_interval_secs: 300,
            security_event_retention_days: 365,
            metrics_listen: None,
            metrics_bearer_token: None,
            admin_listen: None,
            require_second_factor: SecondFactorPolicy::Off,
            set_password_token_ttl_secs: 72 * 3600,
            tls_cert_file: None,
            tls_key_file: None,
            webhooks: Vec::new(),
            webhook_allow_private_targets: false,
            notification_timeout_secs: 10,
            outbox_poll_interval_ms: 1000,
            outbox_retention_days: 30,
            smtp_url: None,
            smtp_from: "Tessera <tessera@localhost>".into(),
            new_device_window_days: 90,
            webauthn_rp_id: None,
            webauthn_rp_name: None,
            webauthn_origins: Vec::new(),
            webauthn_allowed_aaguids: Vec::new(),
        }
    }
}

impl Config {
    /// Reads defaults, then `file` (if given), then the `TESSERA_*` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        Self::load_from(file, env)
    }

    /// As [`Config::load`], with the environment given (tests pass their own).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let settings = settings_from_env(env)?;
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("TESSERA")
                .prefix_separator("_")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("trusted_proxies")
                .with_list_parse_key("webauthn_origins")
                .with_list_parse_key("webauthn_allowed_aaguids")
                .source(Some(settings)),
        );
        let mut loaded: Config = builder
            .build()
            .and_then(|built| built.try_deserialize())
            .map_err(|err| anyhow::anyhow!("{err}"))
            .with_context(|| match file {
                Some(path) => format!(
                    "reading the configuration (file {}, then TESSERA_* variables)",
                    path.display()
                ),
                None => "reading the configuration (TESSERA_* variables)".to_owned(),
            })?;
        // An empty value (`TESSERA_METRICS_LISTEN=`) means "not set".
        loaded.metrics_listen = loaded.metrics_listen.filter(|a| !a.trim().is_empty());
        loaded.admin_listen = loaded.admin_listen.filter(|a| !a.trim().is_empty());
        loaded.metrics_bearer_token = loaded
            .metrics_bearer_token
            .filter(|t| !t.expose_secret().is_empty());
        loaded.tls_cert_file = loaded.tls_cert_file.filter(|p| !p.as_os_str().is_empty());
        loaded.tls_key_file = loaded.tls_key_file.filter(|p| !p.as_os_str().is_empty());
        loaded.smtp_url = loaded.smtp_url.filter(|u| !u.expose_secret().is_empty());
        loaded.webauthn_rp_id = loaded.webauthn_rp_id.filter(|s| !s.trim().is_empty());
        loaded.webauthn_rp_name = loaded.webauthn_rp_name.filter(|s| !s.trim().is_empty());
        loaded.webauthn_origins.retain(|o| !o.trim().is_empty());
        loaded.validate()?;
        Ok(loaded)
    }

    /// Every configuration key, as the file and (upper-cased, after `TESSERA_`) the
    /// environment spell it: read from the struct itself, so a new field is a known key.
    pub fn keys() -> &'static [&'static str] {
        serde_aux::serde_introspection::serde_introspect::<Config>()
    }

    fn validate(&self) -> anyhow::Result<()> {
        positive("access_token_ttl_secs", self.access_token_ttl_secs)?;
        positive("refresh_token_ttl_secs", self.refresh_token_ttl_secs)?;
        within(
            "refresh_reuse_grace_secs",
            self.refresh_reuse_grace_secs,
            0..=300,
        )?;
        positive("lockout_threshold", self.lockout_threshold)?;
        within("totp_skew_steps", self.totp_skew_steps, 0..=5)?;
        within("totp_max_drift_steps", self.totp_max_drift_steps, 0..=20)?;
        within(
            "totp_resync_window_secs",
            self.totp_resync_window_secs,
            60..=3600,
        )?;
        within(
            "signing_key_refresh_secs",
            self.signing_key_refresh_secs,
            1..=3600,
        )?;
        anyhow::ensure!(
            self.log_format == "text" || self.log_format == "json",
            "log_format must be `text` or `json`"
        );
        anyhow::ensure!(
            self.metrics_bearer_token
                .as_ref()
                .is_none_or(|t| t.expose_secret().chars().count() >= 16),
            "metrics_bearer_token must be at least 16 characters"
        );
        positive(
            "set_password_token_ttl_secs",
            self.set_password_token_ttl_secs,
        )?;
        anyhow::ensure!(
            self.tls_cert_file.is_some() == self.tls_key_file.is_some(),
            "tls_cert_file and tls_key_file go together: set both for TLS, or neither"
        );
        anyhow::ensure!(
            self.notification_timeout_secs > 0 && self.outbox_poll_interval_ms > 0,
            "notification_timeout_secs and outbox_poll_interval_ms must be positive"
        );
        anyhow::ensure!(
            self.new_device_window_days > 0 && self.outbox_retention_days > 0,
            "new_device_window_days and outbox_retention_days must be positive"
        );
        if let Some(url) = &self.smtp_url {
            let url = url.expose_secret();
            anyhow::ensure!(
                url.starts_with("smtp://") || url.starts_with("smtps://"),
                "smtp_url must start with smtp:// or smtps://"
            );
            let parsed = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?;
            anyhow::ensure!(
                parsed.scheme() == "smtps"
                    || parsed.password().is_none()
                    || parsed
                        .query_pairs()
                        .any(|(k, v)| k == "tls" && v == "required"),
                "smtp_url with a password must use TLS: smtps://, or smtp:// with ?tls=required"
            );
        }
        let mut names = std::collections::HashSet::new();
        for hook in &self.webhooks {
            hook.validate()
                .with_context(|| format!("webhook {:?}", hook.name))?;
            anyhow::ensure!(
                names.insert(hook.name.as_str()),
                "webhook names must be unique: {:?} is used twice",
                hook.name
            );
        }
        crate::webauthn::RelyingParty::from_config(self)?;
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("tessera.db").display()),
        }
    }

    /// Whether the public listener speaks TLS itself.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert_file.is_some() && self.tls_key_file.is_some()
    }

    /// The connection idle timeout in force: never shorter than the request timeout.
    pub fn connection_idle_timeout(&self) -> std::time::Duration {
        let request = self.request_timeout_secs.max(1);
        std::time::Duration::from_secs(self.connection_idle_timeout_secs.max(request + 1))
    }

    /// The name of the email channel in the outbox (no webhook may take it).
    pub const EMAIL_CHANNEL: &'static str = "email";

    pub fn argon2_max_concurrent(&self) -> usize {
        if self.argon2_max_concurrent > 0 {
            self.argon2_max_concurrent
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }
    }
}

/// Refuses a setting that is not above zero, naming it.
fn positive<T: PartialOrd + Default>(name: &str, value: T) -> anyhow::Result<()> {
    anyhow::ensure!(value > T::default(), "{name} must be positive");
    Ok(())
}

/// Refuses a setting outside `range`, naming it and the bounds.
fn within<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> anyhow::Result<()> {
    let (low, high) = (range.start(), range.end());
    anyhow::ensure!(
        range.contains(&value),
        "{name} must be between {low} and {high}"
    );
    Ok(())
}

impl WebhookEndpoint {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.name.is_empty()
                && self.name.len() <= 64
                && self
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "name must be 1 to 64 letters, digits, - or _"
        );
        anyhow::ensure!(
            self.name != Config::EMAIL_CHANNEL,
            "name `email` is the email channel's"
        );
        let url = reqwest::Url::parse(&self.url).map_err(|e| anyhow::anyhow!("url: {e}"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "https" | "http") && url.host().is_some(),
            "url must be an http:// or https:// URL with a host"
        );
        anyhow::ensure!(
            url.username().is_empty() && url.password().is_none(),
            "url must not hold credentials"
        );
        anyhow::ensure!(!self.secrets.is_empty(), "needs at least one secret");
        for secret in &self.secrets {
            crate::domain::webhook::secret_key(secret.expose_secret())
                .map_err(|m| anyhow::anyhow!("a secret {m}"))?;
        }
        anyhow::ensure!(!self.events.is_empty(), "needs at least one event type");
        for event in &self.events {
            anyhow::ensure!(
                event == "*" || crate::service::events::ALL.contains(&event.as_str()),
                "unknown event type {event:?} (see the event types in README.md)"
            );
        }
        Ok(())
    }

    /// The keys of the endpoint's secrets (checked when the configuration was read).
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.secrets
            .iter()
            .filter_map(|s| crate::domain::webhook::secret_key(s.expose_secret()).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{positive, within};

    /// The operator reads which setting is off and what it may be.
    #[test]
    fn a_setting_out_of_bounds_is_named_with_its_bounds() {
        assert!(within("totp_skew_steps", 5, 0..=5).is_ok());
        let err = within("totp_skew_steps", 6, 0..=5).unwrap_err();
        assert_eq!(err.to_string(), "totp_skew_steps must be between 0 and 5");
        let err = within("totp_resync_window_secs", 59, 60..=3600).unwrap_err();
        assert_eq!(
            err.to_string(),
            "totp_resync_window_secs must be between 60 and 3600"
        );
        assert!(positive("lockout_threshold", 1).is_ok());
        let err = positive("lockout_threshold", 0).unwrap_err();
        assert_eq!(err.to_string(), "lockout_threshold must be positive");
    }
}
