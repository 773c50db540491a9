//! Tessera: a self-hosted authentication server whose core is two-factor authentication.
//!
//! A tour of the modules, outermost first. Data flows one way: `http` parses a request
//! into domain values, calls one `service` function, and maps its result to a response.
//!
//! - [`config`]: one [`config::Config`] read from defaults, an optional TOML file and
//!   `TESSERA_*` environment variables.
//! - [`startup`]: [`startup::Application`] binds the listener, opens the database, runs the
//!   embedded migrations, loads or creates the keys, and serves until told to stop.
//! - [`state`]: [`state::AppState`], everything a request needs, cheap to clone.
//! - [`clock`]: the injected clock, so expiry, lockout and window rules are testable
//!   without sleeping.
//! - [`keys`]: the JWT signing key, the master key for secrets at rest and the pepper for
//!   keyed hashes: generated into the data dir on first start or taken from configuration.
//! - [`crypto`]: Argon2id on the blocking pool, AEAD for TOTP secrets, keyed hashes,
//!   random tokens.
//! - [`tokens`]: signed access tokens (EdDSA JWTs) and the JWKS that publishes their key.
//! - [`domain`]: pure rules with no HTTP or SQL: TOTP, backup codes, the lockout policy,
//!   input validation.
//! - [`db`]: the SQLite/PostgreSQL pools and every query, each written once for both.
//! - [`service`]: the use cases (accounts, sessions, two-factor, devices, events, the
//!   operator's, admin API keys); every single-use or counting rule is one conditional
//!   statement in the database.
//! - [`http`]: the router, problem documents, extractors, the `/v1` API, the Sapfiai
//!   compatibility surface, the admin API (`/admin/v1`) and the operational routes.
//! - [`metrics`]: per-instance Prometheus counters and histograms.
//! - [`admin`]: the operator commands of `tessera admin` (the admin API runs the same
//!   service use cases over HTTP).
//! - [`error`]: [`error::AppError`], the one error type every layer returns.
#![forbid(unsafe_code)]

pub mod admin;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod outbound;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tokens;
pub mod webauthn;
