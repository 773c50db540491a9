//! Configuration: built-in defaults, then an optional TOML file, then `TESSERA_*`
//! environment variables (highest precedence). Every key has a default, so a bare
//! `tessera` starts a working server.
//!
//! Secrets (`jwt_private_key`, `master_key`, `pepper`) may be given inline or, better, as a
//! path in the matching `*_file` key; when neither is set they are generated into the data
//! dir on first start.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
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

    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub two_factor_token_ttl_secs: i64,
    pub two_factor_token_max_failures: i64,
    pub trusted_device_ttl_secs: i64,
    pub totp_setup_ttl_secs: i64,
    /// Time steps accepted either side of the current one.
    pub totp_skew_steps: i64,
    /// How old a second factor may be and still count as fresh for sensitive changes.
    pub fresh_second_factor_secs: i64,

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
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
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
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            two_factor_token_ttl_secs: 5 * 60,
            two_factor_token_max_failures: 5,
            trusted_device_ttl_secs: 30 * 24 * 3600,
            totp_setup_ttl_secs: 10 * 60,
            totp_skew_steps: 1,
            fresh_second_factor_secs: 10 * 60,
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
        }
    }
}

impl Config {
    /// Reads defaults, then `file` (if given), then the `TESSERA_*` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("TESSERA")
                .prefix_separator("_")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("trusted_proxies"),
        );
        let loaded: Config = builder.build()?.try_deserialize()?;
        loaded.validate()?;
        Ok(loaded)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.access_token_ttl_secs > 0,
            "access_token_ttl_secs must be positive"
        );
        anyhow::ensure!(
            self.refresh_token_ttl_secs > 0,
            "refresh_token_ttl_secs must be positive"
        );
        anyhow::ensure!(
            self.lockout_threshold > 0,
            "lockout_threshold must be positive"
        );
        anyhow::ensure!(
            (0..=5).contains(&self.totp_skew_steps),
            "totp_skew_steps must be between 0 and 5"
        );
        anyhow::ensure!(
            self.log_format == "text" || self.log_format == "json",
            "log_format must be `text` or `json`"
        );
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("tessera.db").display()),
        }
    }

    /// The connection idle timeout in force: never shorter than the request timeout.
    pub fn connection_idle_timeout(&self) -> std::time::Duration {
        let request = self.request_timeout_secs.max(1);
        std::time::Duration::from_secs(self.connection_idle_timeout_secs.max(request + 1))
    }

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
