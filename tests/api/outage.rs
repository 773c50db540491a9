//! The database connection cut mid-run through a TCP proxy this test controls: requests
//! get 503 problem documents and `/readyz` fails, nothing panics, and once the proxy
//! lets traffic through again Tessera recovers without a restart. PostgreSQL only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::helpers::{PASSWORD, TestApp, fresh_postgres_database, postgres_or_skip};

/// Forwards 127.0.0.1:<port> to PostgreSQL while enabled; `cut` drops every connection.
struct Proxy {
    port: u16,
    enabled: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    _accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let enabled = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (on, all) = (enabled.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !on.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                all.lock().await.push(link);
            }
        });
        Self {
            port,
            enabled,
            links,
            _accept: accept,
        }
    }

    async fn cut(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_and_recovers_without_restart() {
    let Some(admin) =
        postgres_or_skip("outage::a_database_outage_answers_503_and_recovers_without_restart")
    else {
        return;
    };
    let direct = fresh_postgres_database(&admin).await;
    let (_, database) = direct.rsplit_once('/').unwrap();
    let proxy = Proxy::start("127.0.0.1:5432".into()).await;
    let via_proxy = format!("postgres://postgres@127.0.0.1:{}/{database}", proxy.port);
    let app = TestApp::spawn_with(|config| {
        config.database_url = Some(via_proxy);
        config.database_acquire_timeout_secs = 1;
    })
    .await;
    let user = app.signed_in_user().await;

    proxy.cut().await;
    let ready = app.get("/readyz", None).await;
    ready.assert_problem(503, "service_unavailable");
    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    me.assert_problem(503, "service_unavailable");
    let login = app.login(&user.email, PASSWORD).await;
    login.assert_problem(503, "service_unavailable");
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, 200, "the process itself stays up");

    proxy.restore();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
}
