//! The test harness: a real Tessera server on port 0, with a fresh database (a SQLite
//! file in a temp dir, or a new PostgreSQL database when `TESSERA_TEST_DATABASE_URL` is
//! set), a clock the test moves, and a small HTTP client.
#![allow(dead_code)]

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;
use tessera::clock::{Clock, ManualClock};
use tessera::config::Config;
use tessera::startup::Application;
use tessera::state::AppState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery staple";

/// Which database the suite runs on, and how to make a fresh one.
fn postgres_admin_url() -> Option<String> {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Creates a uniquely named PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL admin database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database path");
    format!("{base}/{name}")
}

pub struct TestApp {
    pub address: String,
    /// `http://host:port` of the `metrics_listen` address, when the test configured one.
    pub metrics_address: Option<String>,
    /// `http://host:port` of the `admin_listen` address, when the test configured one.
    pub admin_address: Option<String>,
    /// The certificate handle when the test configured native TLS (`address` is then
    /// `https://...`, and `client` does not trust the test's certificate: build one that does).
    pub tls: Option<tessera::http::tls::TlsReloader>,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub state: AppState,
    pub config: Config,
    pub data_dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// Asserts a problem document with this status and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "content type; body: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "problem code; body: {}", self.text);
        assert_eq!(self.body["status"], status, "problem status member");
        assert!(
            self.body["title"].is_string() && self.body["type"].is_string(),
            "title and type present"
        );
    }
}

/// A signed-up, signed-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A user with 2FA turned on.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub user: TestUser,
    pub secret: String,
    pub backup_codes: Vec<String>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server after letting the test adjust the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.path().to_path_buf(),
            prune_interval_secs: 3600,
            ..Config::default()
        };
        if let Some(admin) = postgres_admin_url() {
            config.database_url = Some(fresh_postgres_database(&admin).await);
            config.database_max_connections = 5;
        }
        adjust(&mut config);
        Self::start(config, data_dir, ManualClock::starting_now()).await
    }

    async fn start(config: Config, data_dir: Arc<TempDir>, clock: ManualClock) -> Self {
        let app = Application::build_with_clock(config.clone(), Arc::new(clock.clone()))
            .await
            .expect("build application");
        let tls = app.tls();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let address = format!("{scheme}://{}", app.local_addr());
        let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
        let admin_address = app.admin_addr().map(|a| format!("http://{a}"));
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            address,
            metrics_address,
            admin_address,
            tls,
            client,
            clock,
            state,
            config,
            data_dir,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// A second server (its own pools and state) on the same configuration, keys, database
    /// and clock: another instance of one deployment.
    pub async fn sibling(&self) -> Self {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".into();
        Self::start(config, self.data_dir.clone(), self.clock.clone()).await
    }

    /// Stops the server and starts a new one on the same data dir and database.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".into();
        if config.metrics_listen.is_some() {
            config.metrics_listen = Some("127.0.0.1:0".into());
        }
        if config.admin_listen.is_some() {
            config.admin_listen = Some("127.0.0.1:0".into());
        }
        Self::start(config, self.data_dir.clone(), self.clock.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The Prometheus text from the `metrics_listen` address (configure it with
    /// `config.metrics_listen = Some("127.0.0.1:0".into())`).
    pub async fn scrape_metrics(&self) -> TestResponse {
        let base = self
            .metrics_address
            .as_ref()
            .expect("the test configured metrics_listen");
        self.send(self.client.get(format!("{base}/metrics"))).await
    }

    /// Makes an admin API key with these scopes (`users:read`, `users:write`, `admin`), as
    /// `tessera admin api-keys create` does; returns the key.
    pub async fn admin_key(&self, name: &str, scopes: &[&str]) -> String {
        use tessera::service::admin_keys::{self, Scope};
        let scopes: Vec<Scope> = scopes
            .iter()
            .map(|s| Scope::parse(s).expect("a known scope"))
            .collect();
        admin_keys::create(&self.state, name, &scopes)
            .await
            .expect("admin key created")
            .0
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> TestResponse {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> TestResponse {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> TestResponse {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn delete(&self, path: &str, bearer: Option<&str>) -> TestResponse {
        let mut request = self.client.delete(self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn register(&self, email: &str, password: &str) -> TestResponse {
        self.post(
            "/v1/auth/register",
            json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// Registers a new user with a unique email and signs them in.
    pub async fn signed_in_user(&self) -> TestUser {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        self.signed_in_user_with_email(&email).await
    }

    /// Registers a new user with `email` and signs them in.
    pub async fn signed_in_user_with_email(&self, email: &str) -> TestUser {
        let email = email.to_owned();
        let registered = self.register(&email, PASSWORD).await;
        assert_eq!(registered.status, 201, "register: {}", registered.text);
        let login = self.login(&email, PASSWORD).await;
        assert_eq!(login.status, 200, "login: {}", login.text);
        TestUser {
            id: registered.body["id"].as_str().unwrap().to_owned(),
            email,
            password: PASSWORD.into(),
            access_token: login.body["accessToken"].as_str().unwrap().to_owned(),
            refresh_token: login.body["refreshToken"].as_str().unwrap().to_owned(),
        }
    }

    /// Starts a TOTP setup with an enrolment token and answers `verify-setup` with a wrong
    /// code until the token has no tries left (the default 5); returns the setup's secret.
    pub async fn exhaust_enrolment_token(&self, token: &str) -> String {
        let setup = self
            .post("/v1/auth/2fa/setup", json!({}), Some(token))
            .await;
        assert_eq!(setup.status, 200, "setup: {}", setup.text);
        let secret = setup.body["secret"].as_str().unwrap().to_owned();
        let wrong = wrong_code(&secret, self.now());
        for _ in 0..5 {
            self.post(
                "/v1/auth/2fa/verify-setup",
                json!({"code": wrong}),
                Some(token),
            )
            .await
            .assert_problem(401, "invalid_code");
        }
        secret
    }

    /// Turns 2FA on for `user` through the API, confirming with an independently computed
    /// code, and moves the clock one step on so the next code is not a replay.
    pub async fn enable_two_factor(&self, user: &TestUser) -> Enrolled {
        let setup = self
            .post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
            .await;
        assert_eq!(setup.status, 200, "setup: {}", setup.text);
        let secret = setup.body["secret"].as_str().unwrap().to_owned();
        let code = totp_code(&secret, self.now());
        let confirmed = self
            .post(
                "/v1/auth/2fa/verify-setup",
                json!({"code": code}),
                Some(&user.access_token),
            )
            .await;
        assert_eq!(confirmed.status, 200, "verify-setup: {}", confirmed.text);
        let backup_codes = backup_codes_in(&confirmed.body);
        self.clock.advance(30);
        Enrolled {
            user: user.clone(),
            secret,
            backup_codes,
        }
    }

    /// A new signed-in user with 2FA turned on (see [`Self::enable_two_factor`]).
    pub async fn enrolled_user(&self) -> Enrolled {
        let user = self.signed_in_user().await;
        self.enable_two_factor(&user).await
    }

    /// Password step of login for a 2FA user: the `twoFactorToken`.
    pub async fn two_factor_token(&self, email: &str, password: &str) -> String {
        let login = self.login(email, password).await;
        assert_eq!(login.status, 200, "login: {}", login.text);
        assert_eq!(login.body["requires2FA"], true, "login: {}", login.text);
        login.body["twoFactorToken"].as_str().unwrap().to_owned()
    }

    /// Full login with a TOTP code at the current clock; returns the `/2fa/verify` answer.
    pub async fn login_with_code(&self, enrolled: &Enrolled) -> TestResponse {
        self.login_with_code_and(enrolled, json!({})).await
    }

    /// As [`Self::login_with_code`], with more fields in the `/2fa/verify` body (such as
    /// `trustDevice`).
    pub async fn login_with_code_and(&self, enrolled: &Enrolled, mut body: Value) -> TestResponse {
        let token = self
            .two_factor_token(&enrolled.user.email, &enrolled.user.password)
            .await;
        body["code"] = json!(totp_code(&enrolled.secret, self.now()));
        self.post("/v1/auth/2fa/verify", body, Some(&token)).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A TOTP code for a base32 secret at a unix time, computed by `totp-lite`, an
/// implementation independent of Tessera's.
pub fn totp_code(secret_base32: &str, unix_seconds: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .expect("secret is base32");
    totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &secret, unix_seconds as u64)
}

/// A 6-digit code that is not the secret's code for any step within four steps of `now`
/// (the server accepts one step either side): surely wrong, also for a test that moves the
/// clock a step or two before using it.
pub fn wrong_code(secret: &str, now: i64) -> String {
    let near: Vec<String> = (-4..=4).map(|k| totp_code(secret, now + 30 * k)).collect();
    (0..10u32)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .expect("ten candidates cannot all be near codes")
}

/// The backup codes of a `verify-setup` or `regenerate` answer, in display form.
pub fn backup_codes_in(body: &Value) -> Vec<String> {
    body["backupCodes"]
        .as_array()
        .unwrap_or_else(|| panic!("backupCodes is an array: {body}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// Unix seconds of an RFC 3339 time string in an answer.
pub fn unix_time(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a time string, got {value}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text} is RFC 3339: {e}"))
        .unix_timestamp()
}

/// The second step of a `/v1` login: `code` (TOTP or backup) with the two-factor token.
pub async fn verify_code(app: &TestApp, two_factor_token: &str, code: &str) -> TestResponse {
    app.post(
        "/v1/auth/2fa/verify",
        json!({ "code": code }),
        Some(two_factor_token),
    )
    .await
}

/// Says a test was skipped and why. Written straight to stderr, past the test harness's
/// output capture, so `cargo test` shows it even though the test passes.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// The admin URL of the PostgreSQL server the suite runs on, or `None` after saying why
/// the calling PostgreSQL-only test is skipped.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    let url = postgres_admin_url();
    if url.is_none() {
        skip(
            test,
            "needs PostgreSQL; set TESSERA_TEST_DATABASE_URL (see README, \"Running the tests on PostgreSQL\")",
        );
    }
    url
}
