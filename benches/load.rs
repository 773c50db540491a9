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

// ---------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------

/// A release build of `tessera serve` running as a child process.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts the server on a free port of 127.0.0.1 with everything at its defaults but
    /// the data dir, the database and the per-address rate limit, which would otherwise
    /// answer 429 to a load generator that sends everything from one address.
    fn start(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        for (key, _) in std::env::vars() {
            if key.starts_with("TESSERA_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .arg("serve")
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env("TESSERA_DATA_DIR", data_dir)
            .env("TESSERA_RATE_LIMIT_PER_MINUTE", "0");
        if let Some(url) = database_url {
            command.env("TESSERA_DATABASE_URL", url);
        }
        let log = data_dir.join("server.log");
        std::fs::create_dir_all(data_dir)?;
        let log_file = std::fs::File::create(&log)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        let mut child = command.spawn().context("starting the server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("the server exited before listening:\n{log_text}");
            }
            if let Some(rest) = line.trim().strip_prefix("Tessera listening on http://") {
                break rest
                    .parse::<SocketAddr>()
                    .context("the listening address")?;
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        Ok(Self { child, addr, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmHWM` is the peak resident set).
    fn status_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.pid(), field)
    }

    /// SIGTERM, then a wait for the graceful shutdown; SIGKILL if it takes too long.
    fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// CPU time (user + system) a process has used, in clock ticks (1/100 s on Linux).
fn process_cpu_ticks(pid: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// Busy and total clock ticks of the whole machine.
fn machine_cpu_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Where CPU time went during a measurement: the server, this load generator, and
/// everything else on the machine (other builds, and PostgreSQL's own processes).
#[derive(Debug, Clone, Copy, Default)]
struct CpuShare {
    server: f64,
    client: f64,
    other: f64,
    /// Server CPU time per completed request, in microseconds.
    server_us_per_request: f64,
}

struct CpuProbe {
    server_pid: String,
    server: u64,
    client: u64,
    busy: u64,
}

impl CpuProbe {
    fn start(server_pid: u32) -> Self {
        let (busy, _) = machine_cpu_ticks();
        let server_pid = server_pid.to_string();
        Self {
            server: process_cpu_ticks(&server_pid),
            client: process_cpu_ticks("self"),
            busy,
            server_pid,
        }
    }

    /// Shares in percent of one core (so 200 % is both cores of a 2-core machine).
    fn finish(self, wall: Duration, requests: u64) -> CpuShare {
        let ticks_per_sec = 100.0;
        let (busy, _) = machine_cpu_ticks();
        let server = (process_cpu_ticks(&self.server_pid) - self.server) as f64 / ticks_per_sec;
        let client = (process_cpu_ticks("self") - self.client) as f64 / ticks_per_sec;
        let all = (busy - self.busy) as f64 / ticks_per_sec;
        let wall = wall.as_secs_f64().max(1e-9);
        CpuShare {
            server: 100.0 * server / wall,
            client: 100.0 * client / wall,
            other: (100.0 * (all - server - client) / wall).max(0.0),
            server_us_per_request: if requests > 0 {
                server * 1e6 / requests as f64
            } else {
                0.0
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------------------

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request to make.
struct Call {
    method: Method,
    path: &'static str,
    bearer: Option<String>,
    body: Option<Vec<u8>>,
}

impl Call {
    fn get(path: &'static str, bearer: Option<String>) -> Self {
        Self {
            method: Method::GET,
            path,
            bearer,
            body: None,
        }
    }

    fn post(path: &'static str, bearer: Option<String>, body: serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            path,
            bearer,
            body: Some(body.to_string().into_bytes()),
        }
    }

    fn into_request(self, host: &str) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method)
            .uri(self.path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "tessera-bench");
        if let Some(token) = self.bearer {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match self.body {
            Some(bytes) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        builder.body(body).expect("a valid request")
    }
}

/// A scenario: what each worker sends next, and whether an answer is a success.
trait Load {
    /// The next request for `worker`, or `None` when the scenario has nothing left to send
    /// (its pre-created tokens are spent).
    fn next(&self, worker: usize) -> Option<Call>;
    /// Judges an answer (`None`: the connection failed).
    fn finish(&self, worker: usize, status: Option<StatusCode>, body: &[u8]) -> bool;
    /// Told before the warm-up (`false`) and before the measurement (`true`).
    fn measuring(&self, _measuring: bool) {}
}

/// What one measurement saw.
#[derive(Debug, Clone, Default)]
struct Outcome {
    ok: u64,
    errors: u64,
    /// Latency of every answered request, microseconds.
    latencies_us: Vec<u32>,
    elapsed: Duration,
    /// The scenario ran out of pre-created tokens before its time was up.
    exhausted: bool,
    error_samples: Vec<String>,
    cpu: CpuShare,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) / 1000.0
    }
}

/// The `p`-th percentile (0..100) of sorted values, nearest rank.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A fixed set of keep-alive connections, one worker each.
struct Workers {
    addr: SocketAddr,
    senders: Vec<Sender>,
}

impl Workers {
    async fn open(addr: SocketAddr, count: usize) -> anyhow::Result<Self> {
        let mut senders = Vec::with_capacity(count);
        for _ in 0..count {
            senders.push(connect(addr).await?);
        }
        Ok(Self { addr, senders })
    }

    /// Every worker sends requests back to back until `run_for` is over (or the load has
    /// nothing left); returns what was seen.
    async fn drive(&mut self, load: &dyn Load, run_for: Duration) -> Outcome {
        let started = Instant::now();
        let deadline = started + run_for;
        let addr = self.addr;
        let host = addr.to_string();
        let results = futures::future::join_all(
            self.senders
                .iter_mut()
                .enumerate()
                .map(|(worker, sender)| run_worker(worker, sender, addr, &host, load, deadline)),
        )
        .await;
        let mut outcome = Outcome {
            elapsed: started.elapsed(),
            ..Outcome::default()
        };
        for result in results {
            outcome.ok += result.ok;
            outcome.errors += result.errors;
            outcome.exhausted |= result.exhausted;
            outcome.latencies_us.extend(result.latencies_us);
            for sample in result.error_samples {
                if outcome.error_samples.len() < 5 {
                    outcome.error_samples.push(sample);
                }
            }
        }
        outcome.latencies_us.sort_unstable();
        outcome
    }
}

async fn run_worker(
    worker: usize,
    sender: &mut Sender,
    addr: SocketAddr,
    host: &str,
    load: &dyn Load,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome::default();
    while Instant::now() < deadline {
        let Some(call) = load.next(worker) else {
            outcome.exhausted = true;
            break;
        };
        let request = call.into_request(host);
        let started = Instant::now();
        let answer = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        let latency = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        match answer {
            Ok((status, body)) => {
                outcome.latencies_us.push(latency);
                if load.finish(worker, Some(status), &body) {
                    outcome.ok += 1;
                } else {
                    outcome.errors += 1;
                    if outcome.error_samples.len() < 5 {
                        let text =
                            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                        outcome.error_samples.push(format!("{status}: {text}"));
                    }
                }
            }
            Err(err) => {
                outcome.errors += 1;
                load.finish(worker, None, &[]);
                if outcome.error_samples.len() < 5 {
                    outcome.error_samples.push(format!("connection: {err}"));
                }
                match connect(addr).await {
                    Ok(fresh) => *sender = fresh,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
    outcome
}

/// `GET /healthz`: the cheapest route, through the same middleware as every other.
struct Healthz;

impl Load for Healthz {
    fn next(&self, _worker: usize) -> Option<Call> {
        Some(Call::get("/healthz", None))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

/// `GET /v1/auth/2fa/status`, each request with the next of many users' access tokens.
struct Status {
    tokens: Vec<String>,
    cursor: Cell<usize>,
}

impl Load for Status {
    fn next(&self, _worker: usize) -> Option<Call> {
        let i = self.cursor.get();
        self.cursor.set(i + 1);
        Some(Call::get(
            "/v1/auth/2fa/status",
            Some(self.tokens[i % self.tokens.len()].clone()),
        ))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

/// `POST /v1/auth/refresh`. Each worker follows one session's rotation: every answer's new
/// refresh token is the next request's, so each token is used exactly once. A broken chain
/// starts again from a spare session.
struct Refresh {
    chains: RefCell<Vec<Option<String>>>,
    spares: RefCell<Vec<String>>,
}

impl Load for Refresh {
    fn next(&self, worker: usize) -> Option<Call> {
        let token = self.chains.borrow_mut()[worker]
            .take()
            .or_else(|| self.spares.borrow_mut().pop())?;
        Some(Call::post(
            "/v1/auth/refresh",
            None,
            serde_json::json!({ "refreshToken": token }),
        ))
    }

    fn finish(&self, worker: usize, status: Option<StatusCode>, body: &[u8]) -> bool {
        if status != Some(StatusCode::OK) {
            return false;
        }
        let next = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("refreshToken")?.as_str().map(str::to_owned));
        let ok = next.is_some();
        self.chains.borrow_mut()[worker] = next;
        ok
    }
}

/// One pending second factor: the `twoFactorToken` of a password step already taken, and
/// whose authenticator answers it.
struct Pending {
    secret: [u8; 20],
    token: String,
    /// Which step's code to send, relative to the current one (-1, 0 or +1: all inside the
    /// window the server accepts).
    step_offset: i64,
}

/// `POST /v1/auth/2fa/verify` with a valid code, once per pending token. The warm-up may
/// spend a tenth of them; the measurement gets the rest.
struct Verify {
    pending: Vec<Pending>,
    cursor: Cell<usize>,
    limit: Cell<usize>,
}

impl Verify {
    fn new(pending: Vec<Pending>) -> Self {
        let limit = pending.len();
        Self {
            pending,
            cursor: Cell::new(0),
            limit: Cell::new(limit),
        }
    }
}

impl Load for Verify {
    fn measuring(&self, measuring: bool) {
        self.limit.set(if measuring {
            self.pending.len()
        } else {
            self.pending.len() / 10
        });
    }

    fn next(&self, _worker: usize) -> Option<Call> {
        let i = self.cursor.get();
        if i >= self.limit.get() {
            return None;
        }
        let pending = self.pending.get(i)?;
        self.cursor.set(i + 1);
        let totp = Totp::standard(&pending.secret);
        let code = totp.code_for_step(totp.step_at(unix_now()) + pending.step_offset);
        Some(Call::post(
            "/v1/auth/2fa/verify",
            Some(pending.token.clone()),
            serde_json::json!({ "code": code }),
        ))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

/// `POST /v1/auth/login` with the right password of accounts without 2FA.
struct Login {
    accounts: Vec<(String, String)>,
    cursor: Cell<usize>,
}

impl Load for Login {
    fn next(&self, _worker: usize) -> Option<Call> {
        let i = self.cursor.get();
        self.cursor.set(i + 1);
        let (email, password) = &self.accounts[i % self.accounts.len()];
        Some(Call::post(
            "/v1/auth/login",
            None,
            serde_json::json!({ "email": email, "password": password }),
        ))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------

/// The password of every seeded account.
const SEEDED_PASSWORD: &str = "seeded-account-password";

/// The TOTP secret of seeded user `index`, derivable on both sides without storing it.
fn seeded_secret(index: usize) -> [u8; 20] {
    let digest = Sha256::digest(format!("tessera-bench-secret:{index}").as_bytes());
    let mut secret = [0u8; 20];
    secret.copy_from_slice(&digest[..20]);
    secret
}

fn seeded_email(index: usize) -> String {
    format!("user{index}@bench.example")
}

/// One Argon2id hash at deliberately low parameters (8 KiB, t=1) shared by every seeded
/// account, so seeding a million accounts takes seconds. The login scenario uses accounts
/// registered through the API at the default parameters instead.
fn low_cost_hash() -> anyhow::Result<String> {
    let params = Params::new(8, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let salt = SaltString::encode_b64(b"tessera-bench-salt").map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(SEEDED_PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(hash.to_string())
}

/// Seeds accounts straight into the database, in bulk: every account has TOTP two-factor
/// authentication on, its secret sealed under the server's master key exactly as enrolment
/// seals it.
struct Seeder {
    state: AppState,
    database_url: String,
    hash: String,
    /// Ids of the seeded users, by index.
    ids: Vec<Uuid>,
}

const BATCH: usize = 1_000;

impl Seeder {
    async fn new(config: Config) -> anyhow::Result<Self> {
        let database_url = config.database_url();
        let state =
            tessera::startup::build_state(config, Arc::new(tessera::clock::SystemClock)).await?;
        Ok(Self {
            state,
            database_url,
            hash: low_cost_hash()?,
            ids: Vec::new(),
        })
    }

    /// Adds users until there are `total`; returns the seconds it took.
    async fn grow_to(&mut self, total: usize) -> anyhow::Result<f64> {
        let started = Instant::now();
        let from = self.ids.len();
        if total <= from {
            return Ok(0.0);
        }
        let now = unix_now();
        let mut rows: Vec<(Uuid, String, Vec<u8>)> = Vec::with_capacity(BATCH);
        let mut chunk_start = from;
        // Commit every 100,000 users so no single transaction (or WAL) grows huge.
        while chunk_start < total {
            let chunk_end = (chunk_start + 100_000).min(total);
            let mut batches = Vec::new();
            for index in chunk_start..chunk_end {
                let id = Uuid::new_v4();
                self.ids.push(id);
                let sealed = tessera::crypto::seal(
                    &self.state.keys.master,
                    &totp_aad(id),
                    &seeded_secret(index),
                )?;
                rows.push((id, seeded_email(index), sealed));
                if rows.len() == BATCH {
                    batches.push(std::mem::take(&mut rows));
                }
            }
            if !rows.is_empty() {
                batches.push(std::mem::take(&mut rows));
            }
            self.insert_users(&batches, now).await?;
            chunk_start = chunk_end;
            eprint!(
                "\r  seeded {chunk_end} users ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        eprintln!();
        Ok(started.elapsed().as_secs_f64())
    }

    async fn insert_users(
        &self,
        batches: &[Vec<(Uuid, String, Vec<u8>)>],
        now: i64,
    ) -> anyhow::Result<()> {
        let users_sql = "INSERT INTO users (id, email, user_name, user_name_key, password_hash, created_at, \
                         two_factor_enabled, two_factor_enabled_at, backup_codes_generated_at) ";
        let totp_sql =
            "INSERT INTO totp_credentials (user_id, secret_enc, confirmed_at, last_step) ";
        match &self.state.db {
            Db::Sqlite { .. } => {
                // A connection of its own, with a big page cache, for the bulk load only.
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await?;
                sqlx::query("PRAGMA cache_size = -262144")
                    .execute(&mut conn)
                    .await?;
                sqlx::query("PRAGMA busy_timeout = 10000")
                    .execute(&mut conn)
                    .await?;
                let mut tx = conn.begin().await?;
                for batch in batches {
                    let mut users = QueryBuilder::<sqlx::Sqlite>::new(users_sql);
                    users.push_values(batch, |mut row, (id, email, _)| {
                        row.push_bind(*id)
                            .push_bind(email.clone())
                            .push_bind(email.clone())
                            .push_bind(email.clone())
                            .push_bind(self.hash.clone())
                            .push_bind(now)
                            .push_bind(true)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    users.build().execute(&mut *tx).await?;
                    let mut totp = QueryBuilder::<sqlx::Sqlite>::new(totp_sql);
                    totp.push_values(batch, |mut row, (id, _, sealed)| {
                        row.push_bind(*id)
                            .push_bind(sealed.clone())
                            .push_bind(now)
                            .push_bind(-1i64);
                    });
                    totp.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                conn.close().await?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for group in batches.chunks(10) {
                    let ids: Vec<Uuid> = group.iter().flatten().map(|(id, _, _)| *id).collect();
                    let emails: Vec<String> = group
                        .iter()
                        .flatten()
                        .map(|(_, email, _)| email.clone())
                        .collect();
                    let sealed: Vec<Vec<u8>> =
                        group.iter().flatten().map(|(_, _, s)| s.clone()).collect();
                    sqlx::query(
                        "INSERT INTO users (id, email, user_name, user_name_key, password_hash, created_at, \
                         two_factor_enabled, two_factor_enabled_at, backup_codes_generated_at) \
                         SELECT id, email, email, email, $3, $4, TRUE, $4, $4 FROM UNNEST($1::uuid[], $2::text[]) AS t(id, email)",
                    )
                    .bind(&ids)
                    .bind(&emails)
                    .bind(&self.hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO totp_credentials (user_id, secret_enc, confirmed_at, last_step) \
                         SELECT id, secret, $3, -1 FROM UNNEST($1::uuid[], $2::bytea[]) AS t(id, secret)",
                    )
                    .bind(&ids)
                    .bind(&sealed)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Updates the planner's statistics after a bulk load, as an operator would.
    async fn analyze(&self) -> anyhow::Result<()> {
        match &self.state.db {
            Db::Sqlite { write: pool, .. } => {
                sqlx::query("ANALYZE").execute(pool).await.map(|_| ())?
            }
            Db::Postgres(pool) => sqlx::query("ANALYZE").execute(pool).await.map(|_| ())?,
        }
        Ok(())
    }

    /// Ten backup codes for each of `users`, as enrolment stores them.
    async fn backup_codes(&self, users: &[usize]) -> anyhow::Result<()> {
        let now = unix_now();
        let mut tx = self.state.db.begin().await?;
        for &index in users {
            let hashes: Vec<Vec<u8>> = (0..tessera::domain::backup_code::COUNT)
                .map(|_| {
                    let code = tessera::domain::backup_code::generate();
                    let normalized =
                        tessera::domain::backup_code::normalize(&code).expect("valid code");
                    tessera::crypto::keyed_hash(
                        &self.state.keys.pepper,
                        tessera::service::second_factor::BACKUP_CODE_PURPOSE,
                        normalized.as_bytes(),
                    )
                })
                .collect();
            tessera::db::backup_codes::replace_all(&mut tx, self.ids[index], &hashes, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A signed-in session (after password and second factor) for each of `users`, started
    /// by the server's own code: returns (access token, refresh token) pairs.
    async fn sessions(&self, users: &[usize]) -> anyhow::Result<Vec<(String, String)>> {
        let ctx = RequestContext {
            ip: "127.0.0.1".into(),
            user_agent: Some("tessera-bench".into()),
        };
        let amr = || vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
        let mut tx: Conn = self.state.db.begin().await?;
        let mut started = Vec::with_capacity(users.len());
        for &index in users {
            let session = tessera::service::sessions::start(
                &self.state,
                &mut tx,
                self.ids[index],
                amr(),
                &ctx,
            )
            .await?;
            started.push((index, session));
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(users.len());
        for (index, session) in started {
            let issued = session.issue(&self.state, self.ids[index])?;
            out.push((issued.access_token, issued.refresh_token));
        }
        Ok(out)
    }

    /// A pending second factor (what a right password answers for a 2FA account) for each
    /// of `users`, `offsets.len()` times each: returns them in the order to verify them.
    async fn pending(&self, users: &[usize], offsets: &[i64]) -> anyhow::Result<Vec<Pending>> {
        let now = unix_now();
        let ttl = self.state.config.two_factor_token_ttl_secs;
        let mut tx = self.state.db.begin().await?;
        let mut out = Vec::with_capacity(users.len() * offsets.len());
        for &step_offset in offsets {
            for &index in users {
                let token = tessera::crypto::random_token();
                tessera::db::challenges::insert(
                    &mut tx,
                    &tessera::db::challenges::NewChallenge {
                        hash: &tessera::crypto::token_hash(&token),
                        user_id: self.ids[index],
                        now,
                        expires_at: now + ttl,
                        ip: "127.0.0.1",
                        user_agent: Some("tessera-bench"),
                    },
                )
                .await?;
                out.push(Pending {
                    secret: seeded_secret(index),
                    token,
                    step_offset,
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// `count` distinct user indexes below `below`, spread over the whole range.
fn sample_users(below: usize, count: usize) -> Vec<usize> {
    let count = count.min(below);
    rand::seq::index::sample(&mut rand::rng(), below, count).into_vec()
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// One line of the results table.
struct Row {
    scenario: String,
    users: usize,
    concurrency: usize,
    outcome: Outcome,
    /// Ratio to the ceiling's req/s, where that comparison means something.
    ratio: Option<f64>,
    note: String,
}

struct Run<'a> {
    plan: &'a Plan,
    server: Server,
    seeder: Seeder,
    rows: Vec<Row>,
    notes: Vec<String>,
    ceiling: f64,
    backend: String,
}

impl Run<'_> {
    /// Warm-up, then the measurement, of one load at `concurrency`.
    async fn measure(
        &self,
        name: &str,
        load: &dyn Load,
        concurrency: usize,
    ) -> anyhow::Result<Outcome> {
        let mut workers = Workers::open(self.server.addr, concurrency).await?;
        if !self.plan.warmup.is_zero() {
            load.measuring(false);
            workers.drive(load, self.plan.warmup).await;
        }
        load.measuring(true);
        let perf = self.start_perf(name);
        let probe = CpuProbe::start(self.server.pid());
        let mut outcome = workers.drive(load, self.plan.duration).await;
        outcome.cpu = probe.finish(outcome.elapsed, outcome.ok);
        finish_perf(perf);
        log_outcome(name, &outcome);
        Ok(outcome)
    }

    fn start_perf(&self, name: &str) -> Option<Child> {
        let dir = self.plan.perf.as_ref()?;
        let _ = std::fs::create_dir_all(dir);
        let file = dir.join(format!(
            "{}-{}-{}users.perf.data",
            self.backend,
            name.replace([' ', ','], "_"),
            self.seeder.ids.len()
        ));
        Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-o"])
            .arg(&file)
            .arg("-p")
            .arg(self.server.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    }

    fn push(
        &mut self,
        scenario: &str,
        users: usize,
        concurrency: usize,
        outcome: Outcome,
        ratio: bool,
        note: &str,
    ) {
        let ratio = ratio.then(|| outcome.rate() / self.ceiling.max(1e-9));
        self.rows.push(Row {
            scenario: scenario.to_owned(),
            users,
            concurrency,
            outcome,
            ratio,
            note: note.to_owned(),
        });
    }

    /// Status and second factor (and, at the first scale, the ceiling and refresh) with
    /// `users` accounts in the database.
    async fn scale(&mut self, users: usize, first: bool) -> anyhow::Result<()> {
        let c = self.plan.concurrency;
        eprintln!("-- {users} users");
        let seconds = self.seeder.grow_to(users).await?;
        self.seeder.analyze().await?;
        let total = self.seeder.ids.len();
        self.notes.push(format!(
            "Seeded {total} users in {seconds:.1} s ({:.0} users/s) straight into the database.",
            (total as f64
                - if first {
                    0.0
                } else {
                    self.plan.small_users as f64
                })
                / seconds.max(1e-9)
        ));

        if first {
            let outcome = self.measure("ceiling", &Healthz, c).await?;
            self.ceiling = outcome.rate();
            self.push("ceiling: GET /healthz", users, c, outcome, true, "");
        }

        // Status: 1,000 signed-in users (every user at the first scale), spread over the table.
        let status_users = sample_users(total, 1_000);
        self.seeder.backup_codes(&status_users).await?;
        let tokens = self.seeder.sessions(&status_users).await?;
        let status = Status {
            tokens: tokens.into_iter().map(|(access, _)| access).collect(),
            cursor: Cell::new(0),
        };
        let outcome = self.measure("status", &status, c).await?;
        self.push(
            "status: GET /v1/auth/2fa/status",
            users,
            c,
            outcome,
            true,
            "",
        );

        if first {
            let spares = self
                .seeder
                .sessions(&sample_users(total, (4 * c).max(64)))
                .await?;
            let refresh = Refresh {
                chains: RefCell::new(vec![None; c]),
                spares: RefCell::new(spares.into_iter().map(|(_, refresh)| refresh).collect()),
            };
            let outcome = self.measure("refresh", &refresh, c).await?;
            self.push(
                "refresh: POST /v1/auth/refresh",
                users,
                c,
                outcome,
                true,
                "",
            );
        }

        // Second factor: pending tokens made before the measurement, each answered once with
        // a valid code. An account's code works once per 30 s step; with few accounts each
        // answers the codes of the previous, current and next step, in that order (all three
        // inside the window the server accepts, each accepted once).
        // At the second scale, only accounts the first scale did not use (their last
        // accepted step may be this one).
        let skip = if first { 0 } else { self.plan.small_users };
        let fresh = total - skip;
        let accounts: Vec<usize> = sample_users(fresh, self.plan.second_factor_accounts)
            .into_iter()
            .map(|i| i + skip)
            .collect();
        let offsets: &[i64] = if fresh >= self.plan.second_factor_accounts {
            &[0]
        } else {
            &[-1, 0, 1]
        };
        if offsets.len() > 1 {
            wait_for_step_room((self.plan.duration + self.plan.warmup).as_secs_f64() + 2.0).await;
        }
        let pending = self.seeder.pending(&accounts, offsets).await?;
        let count = pending.len();
        let verify = Verify::new(pending);
        let outcome = self.measure("second factor", &verify, c).await?;
        let note = format!(
            "{} accounts x {} code{} = {count} pending tokens{}",
            accounts.len(),
            offsets.len(),
            if offsets.len() > 1 { "s" } else { "" },
            if outcome.exhausted {
                "; all spent before the time was up"
            } else {
                ""
            }
        );
        self.push(
            "second factor: POST /v1/auth/2fa/verify",
            users,
            c,
            outcome,
            true,
            &note,
        );
        let rss = self.server.status_kib("VmHWM").unwrap_or(0);
        self.notes.push(format!(
            "Server peak RSS after the {users}-user scale: {:.1} MiB.",
            rss as f64 / 1024.0
        ));
        Ok(())
    }

    /// Login at the default Argon2id parameters against the raw hash rate, then status
    /// latency while login is saturated.
    async fn login_and_isolation(&mut self, users: usize) -> anyhow::Result<()> {
        eprintln!("-- login ({users} users)");
        let addr = self.server.addr;
        let mut sender = connect(addr).await?;
        let host = addr.to_string();
        let mut accounts = Vec::new();
        for i in 0..self.plan.login_accounts {
            let email = format!("login{i}@bench.example");
            let password = format!("login-password-{i}");
            let call = Call::post(
                "/v1/auth/register",
                None,
                serde_json::json!({"email": email, "password": password}),
            );
            sender.ready().await?;
            let response = sender.send_request(call.into_request(&host)).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            if status != StatusCode::CREATED {
                bail!(
                    "registering a login account: {status} {}",
                    String::from_utf8_lossy(&body)
                );
            }
            accounts.push((email, password));
        }
        drop(sender);

        let config = Config::default();
        let parallelism = config.argon2_max_concurrent();
        // The raw rate is measured right before and right after login, and the two
        // averaged, so a change in other load on the machine hits both sides alike.
        let raw = |label: &str| {
            let probe = CpuProbe::start(self.server.pid());
            let started = Instant::now();
            let (rate, _) = raw_argon2_rate(&config, parallelism, self.plan.duration);
            let cpu = probe.finish(started.elapsed(), 0);
            eprintln!(
                "  raw Argon2id {label}: {rate:.1} hashes/s with {parallelism} threads (other CPU {:.0} %)",
                cpu.other
            );
            (rate, cpu.other)
        };
        let (raw_before, other_before) = raw("before");

        let login = Login {
            accounts: accounts.clone(),
            cursor: Cell::new(0),
        };
        let lc = self.plan.login_concurrency;
        let outcome = self.measure("login", &login, lc).await?;
        let (raw_after, other_after) = raw("after");
        let raw_rate = (raw_before + raw_after) / 2.0;
        let raw_each = parallelism as f64 / raw_rate.max(1e-9);
        let ratio = outcome.rate() / raw_rate.max(1e-9);
        let note = format!(
            "{:.1} % of the raw Argon2id rate ({raw_rate:.1}/s, {parallelism} threads, {:.1} ms a hash)",
            ratio * 100.0,
            raw_each * 1e3
        );
        self.push(
            "login: POST /v1/auth/login (default Argon2id)",
            users,
            lc,
            outcome,
            false,
            &note,
        );
        self.rows.last_mut().expect("just pushed").ratio = Some(ratio);
        self.notes.push(format!(
            "Raw Argon2id (m={} KiB, t={}, p={}) in this process, {parallelism} threads at once for {:.0} s before and after login: {raw_before:.1} and {raw_after:.1} hashes/s (other CPU {other_before:.0} % and {other_after:.0} %), mean {raw_rate:.1}.",
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            self.plan.duration.as_secs_f64()
        ));

        // Isolation: status from a few connections while login saturates the hashing slots.
        let tokens = self
            .seeder
            .sessions(&sample_users(self.seeder.ids.len(), 100))
            .await?;
        let status = Status {
            tokens: tokens.into_iter().map(|(access, _)| access).collect(),
            cursor: Cell::new(0),
        };
        let ic = self.plan.isolation_concurrency;
        let mut login_workers = Workers::open(addr, lc).await?;
        let mut status_workers = Workers::open(addr, ic).await?;
        // Warm up with both, then measure both at once.
        let warm = self.plan.warmup;
        let _ = tokio::join!(
            login_workers.drive(&login, warm),
            status_workers.drive(&status, warm)
        );
        let perf = self.start_perf("isolation");
        let probe = CpuProbe::start(self.server.pid());
        let d = self.plan.duration;
        let (login_outcome, mut status_outcome) = tokio::join!(
            login_workers.drive(&login, d),
            status_workers.drive(&status, d)
        );
        status_outcome.cpu =
            probe.finish(status_outcome.elapsed, status_outcome.ok + login_outcome.ok);
        finish_perf(perf);
        log_outcome("isolation: status", &status_outcome);
        log_outcome("isolation: login", &login_outcome);
        let note = format!(
            "while login ran at {lc} connections: {:.1} logins/s ({:.1} % of raw), {} errors",
            login_outcome.rate(),
            100.0 * login_outcome.rate() / raw_rate.max(1e-9),
            login_outcome.errors
        );
        self.push(
            "isolation: status under saturated login",
            users,
            ic,
            status_outcome,
            false,
            &note,
        );
        Ok(())
    }
}

fn finish_perf(perf: Option<Child>) {
    if let Some(mut child) = perf {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
}

fn log_outcome(name: &str, o: &Outcome) {
    eprintln!(
        "  {name:<22} {:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  errors {}  (server {:.0} %, client {:.0} %, other {:.0} % CPU)",
        o.rate(),
        o.percentile_ms(50.0),
        o.percentile_ms(99.0),
        o.percentile_ms(99.9),
        o.errors,
        o.cpu.server,
        o.cpu.client,
        o.cpu.other
    );
    for sample in &o.error_samples {
        eprintln!("    error: {sample}");
    }
}

/// If fewer than `seconds` are left in the current 30 s step, waits for the next one, so a
/// scenario that sends previous-step codes does not straddle a step boundary.
async fn wait_for_step_room(seconds: f64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let left = 30.0 - now % 30.0;
    if left < seconds.min(29.0) {
        tokio::time::sleep(Duration::from_secs_f64(left + 0.2)).await;
    }
}

/// Argon2id hashes per second with `threads` running at once, in this process, at the
/// configured parameters: the most any login path could do. Each thread reuses one
/// working-memory buffer, the cheapest way to run Argon2. Returns (rate, seconds per hash
/// on one thread).
fn raw_argon2_rate(config: &Config, threads: usize, run_for: Duration) -> (f64, f64) {
    let params = Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .expect("params");
    let started = Instant::now();
    let deadline = started + run_for;
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let params = params.clone();
                scope.spawn(move || {
                    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                    let mut blocks = vec![argon2::Block::default(); params.block_count()];
                    let mut out = [0u8; 32];
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        argon2
                            .hash_password_into_with_memory(
                                b"correct horse battery staple",
                                b"raw-argon2-rate!",
                                &mut out,
                                &mut blocks,
                            )
                            .expect("hash");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("hash thread"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let total: u64 = counts.iter().sum();
    let rate = total as f64 / elapsed;
    (rate, threads as f64 / rate)
}

/// Creates a fresh PostgreSQL database; returns (its URL, the admin URL to drop it with).
async fn create_postgres_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    let name = format!("tessera_bench_{}_{}", std::process::id(), unix_now());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(admin_url);
    Ok((format!("{base}/{name}"), name))
}

async fn drop_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

async fn run_backend(
    plan: &Plan,
    backend: &str,
    postgres_url: &str,
    totp: &TotpCost,
) -> anyhow::Result<String> {
    let data = tempfile::Builder::new()
        .prefix("tessera-bench-")
        .tempdir()?;
    let postgres = if backend == "postgres" {
        Some(create_postgres_database(postgres_url).await?)
    } else {
        None
    };
    let result = run_backend_in(
        plan,
        backend,
        data.path(),
        postgres.as_ref().map(|(url, _)| url.as_str()),
        totp,
    )
    .await;
    if let Some((_, name)) = &postgres
        && let Err(err) = drop_postgres_database(postgres_url, name).await
    {
        eprintln!("warning: could not drop database {name}: {err:#}");
    }
    result
}

async fn run_backend_in(
    plan: &Plan,
    backend: &str,
    data_dir: &Path,
    database_url: Option<&str>,
    totp: &TotpCost,
) -> anyhow::Result<String> {
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = Instant::now();
    let server = Server::start(data_dir, database_url)?;
    eprintln!(
        "server pid {} on {} (log: {})",
        server.pid(),
        server.addr,
        server.log.display()
    );
    let config = Config {
        data_dir: data_dir.to_path_buf(),
        database_url: database_url.map(str::to_owned),
        ..Config::default()
    };
    let seeder = Seeder::new(config).await?;
    let mut run = Run {
        plan,
        server,
        seeder,
        rows: Vec::new(),
        notes: Vec::new(),
        ceiling: 0.0,
        backend: backend.to_owned(),
    };
    run.scale(plan.small_users, true).await?;
    let top = if plan.large_users > plan.small_users {
        run.scale(plan.large_users, false).await?;
        plan.large_users
    } else {
        plan.small_users
    };
    run.login_and_isolation(top).await?;
    let peak_kib = run.server.status_kib("VmHWM").unwrap_or(0);
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let Run {
        server,
        rows,
        notes,
        seeder,
        ..
    } = run;
    seeder.state.db.close().await;
    server.stop()?;
    Ok(render(
        backend,
        plan,
        &rows,
        &notes,
        peak_kib,
        totp,
        started.elapsed(),
        &load_before,
        &load_after,
    ))
}

// ---------------------------------------------------------------------------------------
// TOTP cost, measured in-process so every target is in one report
// ---------------------------------------------------------------------------------------

struct TotpCost {
    hmac_ns: f64,
    verify_ns: f64,
}

/// The worst-case TOTP check (a wrong code: every step of the window computed and
/// compared) against one raw HMAC-SHA1 of the same 8-byte counter. The median of 31 timed
/// batches each; `cargo bench --bench micro totp` measures the same with criterion.
fn totp_cost_ratio() -> TotpCost {
    use hmac::{Hmac, Mac};
    use std::hint::black_box;
    let secret = seeded_secret(0);
    let now = 1_700_000_015;
    let skew = Config::default().totp_skew_steps;
    let totp = Totp::standard(&secret);
    let wrong = (0..)
        .map(|n| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|code| totp.matching_step(code, now, skew).is_none())
        .expect("a wrong code");
    let counter = (totp.step_at(now) as u64).to_be_bytes();
    let time = |f: &dyn Fn()| {
        let n = 20_000;
        let mut samples: Vec<f64> = (0..31)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    f();
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    let hmac_ns = time(&|| {
        let mut mac =
            <Hmac<sha1::Sha1> as hmac::digest::KeyInit>::new_from_slice(black_box(&secret[..]))
                .expect("any key length");
        mac.update(black_box(&counter));
        black_box(mac.finalize().into_bytes());
    });
    let verify_ns = time(&|| {
        black_box(Totp::standard(black_box(&secret)).matching_step(
            black_box(&wrong),
            black_box(now),
            skew,
        ));
    });
    TotpCost { hmac_ns, verify_ns }
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = proc_meminfo_kib("MemTotal")
        .map(|k| k as f64 / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "- Machine: {model}, {cores} cores, {memory:.0} GiB RAM, Linux {}\n- Toolchain: {rustc}; server built with the `bench` profile (release, thin LTO)\n",
        kernel.trim()
    )
}

fn proc_meminfo_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

fn plan_description(plan: &Plan) -> String {
    format!(
        "- Plan: {} s warm-up then {} s measured per scenario{}; {} connections (login {}, isolation {} status + {} login); scales {} and {} users\n",
        plan.warmup.as_secs_f64(),
        plan.duration.as_secs_f64(),
        if plan.quick { " (--quick)" } else { "" },
        plan.concurrency,
        plan.login_concurrency,
        plan.isolation_concurrency,
        plan.login_concurrency,
        plan.small_users,
        plan.large_users
    )
}

#[allow(clippy::too_many_arguments)]
fn render(
    backend: &str,
    plan: &Plan,
    rows: &[Row],
    notes: &[String],
    peak_kib: u64,
    totp: &TotpCost,
    took: Duration,
    load_before: &str,
    load_after: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## {backend}\n");
    let _ = writeln!(
        out,
        "| scenario | users | conns | req/s | ratio | p50 ms | p99 ms | p99.9 ms | errors | measured s | server CPU | client CPU | other CPU | server µs/req |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let o = &r.outcome;
        let ratio = r
            .ratio
            .map(|v| format!("{:.1} %", v * 100.0))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {ratio} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.0} % | {:.0} % | {:.0} % | {:.0} |",
            r.scenario,
            r.users,
            r.concurrency,
            o.rate(),
            o.percentile_ms(50.0),
            o.percentile_ms(99.0),
            o.percentile_ms(99.9),
            o.errors,
            o.elapsed.as_secs_f64(),
            o.cpu.server,
            o.cpu.client,
            o.cpu.other,
            o.cpu.server_us_per_request
        );
    }
    let _ = writeln!(
        out,
        "\nRatios: to the ceiling's req/s in this run; login: to the raw Argon2id rate."
    );
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        let _ = writeln!(out, "- {}, {} users: {}", r.scenario, r.users, r.note);
    }
    let _ = writeln!(
        out,
        "\nPeak resident memory of the server over the whole run (VmHWM): **{:.1} MiB**.",
        peak_kib as f64 / 1024.0
    );
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(
        out,
        "- Load average before: {}; after: {} (1, 5, 15 min; a quiet 2-core machine reads near 0).",
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "- The whole {backend} run took {:.0} s.",
        took.as_secs_f64()
    );

    // Targets.
    let small = plan.small_users;
    let large = plan.large_users;
    let rate = |name: &str, users: usize| {
        rows.iter()
            .find(|r| r.scenario.starts_with(name) && r.users == users)
    };
    let mut targets: Vec<(String, String, bool)> = Vec::new();
    for (name, min) in [("status", 0.5), ("refresh", 0.2), ("second factor", 0.1)] {
        if let Some(r) = rate(name, small) {
            let v = r.ratio.unwrap_or(0.0);
            targets.push((
                format!("{name} >= {:.0} % of the ceiling", min * 100.0),
                format!("{:.1} %", v * 100.0),
                v >= min,
            ));
        }
    }
    if let Some(r) = rate("login", large.max(small)) {
        let v = r.ratio.unwrap_or(0.0);
        targets.push((
            "login >= 90 % of the raw Argon2id rate".into(),
            format!("{:.1} %", v * 100.0),
            v >= 0.9,
        ));
    }
    if let Some(r) = rate("isolation", large.max(small)) {
        let p99 = r.outcome.percentile_ms(99.0);
        targets.push((
            "status p99 under saturated login <= 10 ms".into(),
            format!("{p99:.2} ms"),
            p99 <= 10.0,
        ));
    }
    if large > small {
        for name in ["status", "second factor"] {
            if let (Some(a), Some(b)) = (rate(name, small), rate(name, large)) {
                let v = b.outcome.rate() / a.outcome.rate().max(1e-9);
                targets.push((
                    format!("{name} at {large} users >= 80 % of its rate at {small}"),
                    format!("{:.1} %", v * 100.0),
                    v >= 0.8,
                ));
            }
        }
    }
    let mib = peak_kib as f64 / 1024.0;
    targets.push((
        "peak RSS <= 128 MiB".into(),
        format!("{mib:.1} MiB"),
        mib <= 128.0,
    ));
    let ratio = totp.verify_ns / totp.hmac_ns.max(1e-9);
    targets.push((
        "TOTP check (wrong code, ±1 step) <= 3.5x one HMAC-SHA1".into(),
        format!(
            "{ratio:.2}x ({:.0} ns vs {:.0} ns)",
            totp.verify_ns, totp.hmac_ns
        ),
        ratio <= 3.5,
    ));
    let _ = writeln!(
        out,
        "\n### Targets ({backend})\n\n| target | measured | met |\n|---|---:|:---:|"
    );
    for (target, measured, met) in targets {
        let _ = writeln!(
            out,
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
    out
}
