//! Building and running the server: bind, connect, migrate, load keys, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::crypto::PasswordHasher;
use crate::db::Db;
use crate::http::tls::TlsReloader;
use crate::keys::{Keys, Recorded};
use crate::metrics::Metrics;
use crate::service::maintenance;
use crate::state::AppState;
use crate::tokens::TokenSigner;

pub struct Application {
    listener: TcpListener,
    /// The `metrics_listen` address, when configured.
    metrics_listener: Option<TcpListener>,
    /// The `admin_listen` address, when configured.
    admin_listener: Option<TcpListener>,
    /// The certificate in use, when the public listener speaks TLS.
    tls: Option<TlsReloader>,
    state: AppState,
}

impl Application {
    /// Everything up to accepting connections, on the wall clock.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`] with an injected clock (tests move it).
    pub async fn build_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        // Certificate problems are reported before anything else is started.
        let tls = match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsReloader::load(cert, key)?),
            _ => None,
        };
        let state = build_state(config, clock).await?;
        let listener = TcpListener::bind(&state.config.listen)
            .await
            .with_context(|| format!("binding {}", state.config.listen))?;
        let config = &state.config;
        let metrics_listener =
            bind_if_set("metrics_listen", config.metrics_listen.as_deref()).await?;
        let admin_listener = bind_if_set("admin_listen", config.admin_listen.as_deref()).await?;
        Ok(Self {
            listener,
            metrics_listener,
            admin_listener,
            tls,
            state,
        })
    }

    /// The TLS certificate handle (to reload it), when the public listener speaks TLS.
    pub fn tls(&self) -> Option<TlsReloader> {
        self.tls.clone()
    }

    /// Where `GET /metrics` is served for the scraper, if `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// Where the admin API is served, if `admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and closes the
    /// database. The pruning task runs alongside.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let pruner = tokio::spawn(prune_periodically(state.clone()));
        let key_reader = tokio::spawn(refresh_signing_keys_periodically(state.clone()));
        let (stop_delivery, delivery_stop) = tokio::sync::watch::channel(false);
        let delivery = tokio::spawn(crate::service::outbox::run(state.clone(), delivery_stop));
        let patience = state.config.connection_idle_timeout();
        let metrics_server = self.metrics_listener.map(|listener| {
            let listener = crate::http::conn::DeadlineListener::new(listener, patience);
            let metrics = crate::http::ops::metrics_router(state.clone());
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, metrics).await {
                    tracing::warn!(error = %err, "metrics listener stopped");
                }
            })
        });
        let admin_server = self.admin_listener.map(|listener| {
            // Plain HTTP: the admin listener is meant for a private network or localhost.
            let listener =
                crate::http::conn::DeadlineListener::new(listener, patience).tap_io(|_| {});
            let admin = crate::http::admin_router(state.clone());
            tokio::spawn(async move {
                let service = admin.into_make_service_with_connect_info::<SocketAddr>();
                if let Err(err) = axum::serve(listener, service).await {
                    tracing::warn!(error = %err, "admin listener stopped");
                }
            })
        });
        let app = crate::http::router(state.clone());
        let stopping = Arc::new(tokio::sync::Notify::new());
        let signal_seen = stopping.clone();
        // A connection must send its next request in time: slow-header and idle clients are
        // closed (a request in progress is bounded by the shorter request timeout).
        let listener = crate::http::tls::PublicListener::new(
            crate::http::conn::DeadlineListener::new(self.listener, patience),
            self.tls,
        )
        .tap_io(|_| {});
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            signal_seen.notify_one();
        });
        let grace = Duration::from_secs(state.config.shutdown_grace_secs);
        // Stop accepting at once; give in-flight requests, and the use cases of requests
        // whose clients hung up, `grace` to finish, then go.
        // The delivery worker stops with the server, after finishing its attempts in flight.
        let finish = async {
            serve.await?;
            state.use_cases.wait_idle().await;
            let _ = stop_delivery.send(true);
            let _ = delivery.await;
            anyhow::Ok(())
        };
        tokio::select! {
            finished = finish => finished?,
            _ = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; closing with requests in flight");
            }
        }
        pruner.abort();
        key_reader.abort();
        if let Some(metrics_server) = metrics_server {
            metrics_server.abort();
        }
        if let Some(admin_server) = admin_server {
            admin_server.abort();
        }
        state.db.close().await;
        Ok(())
    }
}

/// Binds the optional second listener of the setting `key`, when it is set.
async fn bind_if_set(key: &str, address: Option<&str>) -> anyhow::Result<Option<TcpListener>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {key} {address}"))?;
    Ok(Some(listener))
}

/// Opens the database, migrates it, loads keys and checks them against the database: the
/// state both `serve` and `admin` use.
pub async fn build_state(config: Config, clock: SharedClock) -> anyhow::Result<AppState> {
    // A passkey setting that cannot work is reported before anything is opened.
    let relying_party = crate::webauthn::RelyingParty::from_config(&config)?;
    // The SQLite database lives in the data dir.
    crate::keys::ensure_data_dir(&config)?;
    let db = Db::connect(
        &config.database_url(),
        config.database_max_connections,
        Duration::from_secs(config.database_acquire_timeout_secs.max(1)),
    )
    .await
    .context("connecting to the database")?;
    db.migrate().await.context("running migrations")?;
    let keys = load_checked_keys(&config, &db, clock.now()).await?;
    let metrics = Arc::new(Metrics::default());
    let hasher = PasswordHasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        config.argon2_max_concurrent(),
        metrics.clone(),
    )?;
    let ring = crate::service::signing_keys::bootstrap(&db, &keys, &config, clock.now())
        .await
        .context("reading the signing keys")?;
    let signer = TokenSigner::with_ring(
        ring,
        config.issuer.clone(),
        config.access_token_ttl_secs,
        crate::service::signing_keys::retired_grace_secs(&config),
    );
    let subscriptions = crate::service::outbox::Subscriptions::from_config(&config);
    Ok(AppState {
        subscriptions: Arc::new(subscriptions),
        config: Arc::new(config),
        db,
        keys: Arc::new(keys),
        clock,
        hasher,
        signer: Arc::new(signer),
        metrics,
        use_cases: Arc::default(),
        outbox: Arc::default(),
        relying_party: Arc::new(relying_party),
    })
}

/// Loads the keys and compares the master key and the pepper with the fingerprints the
/// database recorded on its first start (recording them if there are none yet). Keys that
/// do not match are an error naming the key's file: with them, every sealed TOTP secret
/// would fail to open and every backup code and trusted device would stop matching.
async fn load_checked_keys(config: &Config, db: &Db, now: i64) -> anyhow::Result<Keys> {
    // A write transaction from the start: the records are read and, on a first start,
    // written, with no second connection held meanwhile.
    let mut conn = db.begin().await?;
    let recorded = crate::db::key_fingerprints::all(&mut conn).await?;
    let has_record = |which: Recorded| recorded.iter().any(|(name, _)| name == which.name());
    let with_records: Vec<Recorded> = Recorded::ALL
        .into_iter()
        .filter(|which| has_record(*which))
        .collect();
    let keys = Keys::load(config, &with_records)?;
    for which in Recorded::ALL {
        let loaded = which.key(&keys).fingerprint();
        let expected =
            crate::db::key_fingerprints::record_first(&mut conn, which.name(), &loaded, now)
                .await?;
        anyhow::ensure!(
            expected == loaded,
            "the {} is not the key this database was set up with (fingerprint {loaded}, the \
             database expects {expected}): what it sealed or keyed cannot be read with it. \
             Restore the original key from a backup",
            which.source(config)
        );
    }
    conn.commit().await?;
    Ok(keys)
}

async fn prune_periodically(state: AppState) {
    let every = Duration::from_secs(state.config.prune_interval_secs.max(1));
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match maintenance::run_once(&state).await {
            Ok(report) => tracing::debug!(?report, "pruned expired rows"),
            Err(err) => tracing::warn!(error = %err, "pruning failed; will retry"),
        }
    }
}

/// Re-reads the signing keys every `signing_key_refresh_secs`, so a rotation made by
/// another instance (or `tessera admin keys rotate`) is used here without a restart.
async fn refresh_signing_keys_periodically(state: AppState) {
    let every = Duration::from_secs(state.config.signing_key_refresh_secs.max(1));
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(err) = crate::service::signing_keys::refresh(&state).await {
            tracing::warn!(error = %err, "re-reading the signing keys failed; will retry");
        }
    }
}
