//! The run: each backend, each scenario after a warm-up, and the ceilings they are compared with.

use super::*;

/// One line of the results table.
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) users: usize,
    pub(crate) concurrency: usize,
    pub(crate) outcome: Outcome,
    /// Ratio to the ceiling's req/s, where that comparison means something.
    pub(crate) ratio: Option<f64>,
    pub(crate) note: String,
}

pub(crate) struct Run<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) server: Server,
    pub(crate) seeder: Seeder,
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
    pub(crate) ceiling: f64,
    pub(crate) backend: String,
}

impl Run<'_> {
    /// Warm-up, then the measurement, of one load at `concurrency`.
    pub(crate) async fn measure(
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

    pub(crate) fn start_perf(&self, name: &str) -> Option<Child> {
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

    pub(crate) fn push(
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
    pub(crate) async fn scale(&mut self, users: usize, first: bool) -> anyhow::Result<()> {
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
    pub(crate) async fn login_and_isolation(&mut self, users: usize) -> anyhow::Result<()> {
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

pub(crate) fn finish_perf(perf: Option<Child>) {
    if let Some(mut child) = perf {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
}

pub(crate) fn log_outcome(name: &str, o: &Outcome) {
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
pub(crate) async fn wait_for_step_room(seconds: f64) {
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
pub(crate) fn raw_argon2_rate(config: &Config, threads: usize, run_for: Duration) -> (f64, f64) {
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
pub(crate) async fn create_postgres_database(admin_url: &str) -> anyhow::Result<(String, String)> {
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

pub(crate) async fn drop_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

pub(crate) async fn run_backend(
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

pub(crate) async fn run_backend_in(
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
