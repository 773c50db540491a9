//! The HTTP load benchmark: starts a release build of the server on a fresh data dir (and,
//! with `--postgres`, a fresh PostgreSQL database), seeds users straight into the database,
//! then drives each scenario at fixed concurrency for a fixed time after a warm-up, and
//! reports throughput, latency percentiles, errors and each figure's ratio to the ceiling
//! measured in the same run.
//!
//! ```text
//! cargo bench --bench load                  # SQLite, 1,000 then 1,000,000 users (~5 min)
//! cargo bench --bench load -- --postgres    # the same on a fresh PostgreSQL database
//! cargo bench --bench load -- --quick       # a smoke run (~1 min)
//! cargo bench --bench load -- --help        # every option
//! ```
//!
//! The load generator is a single-threaded tokio runtime with one keep-alive HTTP/1.1
//! connection per worker (bare hyper, no connection pool), so it takes at most one of the
//! machine's cores and its per-request cost is the same in every scenario. Methodology and
//! results: BENCHMARKS.md.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use sqlx::{Connection, QueryBuilder};
use uuid::Uuid;

use tessera::config::Config;
use tessera::db::{Conn, Db};
use tessera::domain::totp::Totp;
use tessera::service::RequestContext;
use tessera::service::second_factor::totp_aad;
use tessera::state::AppState;

// One benchmark in several files: each module starts with `use super::*`, so the imports
// above and every module's items (re-exported below) are in scope everywhere.
mod generator;
mod profiling;
mod report;
mod run;
mod scenarios;
mod seeding;
mod server;
mod totp_cost;

use generator::*;
use profiling::*;
use report::*;
use run::*;
use scenarios::*;
use seeding::*;
use server::*;
use totp_cost::*;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "load",
    about = "Tessera HTTP load benchmark (see BENCHMARKS.md)"
)]
struct Options {
    /// Database: `sqlite` (a file in the fresh data dir), `postgres` (a fresh database,
    /// dropped afterwards) or `both` (one full run each, one report).
    #[arg(long, env = "TESSERA_BENCH_BACKEND", default_value = "sqlite")]
    backend: String,
    /// Shorthand for `--backend postgres`.
    #[arg(long)]
    postgres: bool,
    /// A PostgreSQL URL whose user may create and drop databases.
    #[arg(
        long,
        env = "TESSERA_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// A smoke run: 2 s scenarios, 1,000 and 20,000 users.
    #[arg(long)]
    quick: bool,
    /// Seconds each scenario is measured (default 10; 2 with --quick).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of unrecorded load before each measurement (default 2; 0.5 with --quick).
    #[arg(long)]
    warmup: Option<f64>,
    /// Connections (one request in flight each) for ceiling, status, refresh, second factor.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Connections for login; more than the server's Argon2 slots, so hashing is saturated.
    #[arg(long, default_value_t = 16)]
    login_concurrency: usize,
    /// Connections sending status requests while login is saturated (isolation).
    #[arg(long, default_value_t = 4)]
    isolation_concurrency: usize,
    /// Users in the database for the first scale.
    #[arg(long, default_value_t = 1_000)]
    small_users: usize,
    /// Users in the database for the second scale (default 1,000,000; 20,000 with
    /// --quick); 0 skips it.
    #[arg(long)]
    large_users: Option<usize>,
    /// Accounts with a pending second factor at the large scale (each verifies once).
    #[arg(long, default_value_t = 30_000)]
    second_factor_accounts: usize,
    /// Accounts registered through the API at the default Argon2id parameters for login.
    #[arg(long, default_value_t = 16)]
    login_accounts: usize,
    /// Where to write the Markdown report (default: target/bench/load-<backend>.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Record a `perf` CPU profile of the server during each measurement into this folder
    /// (needs `perf`; build unstripped, see BENCHMARKS.md).
    #[arg(long)]
    perf: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The settings a run uses, after defaults and `--quick`.
#[derive(Debug, Clone)]
struct Plan {
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    login_concurrency: usize,
    isolation_concurrency: usize,
    small_users: usize,
    large_users: usize,
    second_factor_accounts: usize,
    login_accounts: usize,
    perf: Option<PathBuf>,
    quick: bool,
}

impl Plan {
    fn new(o: &Options) -> Self {
        let secs = |v: Option<f64>, full: f64, quick: f64| {
            Duration::from_secs_f64(v.unwrap_or(if o.quick { quick } else { full }).max(0.0))
        };
        Self {
            duration: secs(o.duration, 10.0, 2.0),
            warmup: secs(o.warmup, 2.0, 0.5),
            concurrency: o.concurrency.max(1),
            login_concurrency: o.login_concurrency.max(1),
            isolation_concurrency: o.isolation_concurrency.max(1),
            small_users: o.small_users.max(1),
            large_users: o
                .large_users
                .unwrap_or(if o.quick { 20_000 } else { 1_000_000 }),
            second_factor_accounts: o.second_factor_accounts.max(1),
            login_accounts: o.login_accounts.max(1),
            perf: o.perf.clone(),
            quick: o.quick,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let plan = Plan::new(&options);
    let backends: Vec<&str> = match (options.postgres, options.backend.as_str()) {
        (true, _) | (_, "postgres") => vec!["postgres"],
        (_, "sqlite") => vec!["sqlite"],
        (_, "both") => vec!["sqlite", "postgres"],
        (_, other) => bail!("unknown backend {other:?}: sqlite, postgres or both"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let machine = machine_description();
    let mut report = String::new();
    let _ = writeln!(report, "# Tessera load benchmark\n\n{machine}");
    let _ = writeln!(report, "{}", plan_description(&plan));
    let totp = totp_cost_ratio();
    for backend in &backends {
        eprintln!("\n=== {backend} ===");
        let section =
            runtime.block_on(run_backend(&plan, backend, &options.postgres_url, &totp))?;
        report.push_str(&section);
    }
    let name = if backends.len() == 1 {
        backends[0]
    } else {
        "both"
    };
    let out = options.out.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench/load-{name}.md"))
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &report)?;
    println!("\n{report}");
    eprintln!("Report written to {}", out.display());
    Ok(())
}
