//! The server under test: a release build of `tessera serve` as a child process.

use super::*;

/// A release build of `tessera serve` running as a child process.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) log: PathBuf,
}

impl Server {
    /// Starts the server on a free port of 127.0.0.1 with everything at its defaults but
    /// the data dir, the database and the per-address rate limit, which would otherwise
    /// answer 429 to a load generator that sends everything from one address.
    pub(crate) fn start(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
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

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmHWM` is the peak resident set).
    pub(crate) fn status_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.pid(), field)
    }

    /// SIGTERM, then a wait for the graceful shutdown; SIGKILL if it takes too long.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
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
