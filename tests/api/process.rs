//! Tests through the real `tessera` binary: logs at the most verbose level carry no
//! secret, SIGTERM lets in-flight requests finish, and the admin commands work.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{PASSWORD, TestApp, fresh_postgres_database, totp_code, verify_code};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

struct Server {
    child: Child,
    base: String,
}

/// A database URL for a server process: a fresh PostgreSQL database when the suite runs
/// on PostgreSQL, else the default SQLite file in `data_dir`.
async fn database_url(data_dir: &Path) -> String {
    match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => fresh_postgres_database(&admin).await,
        _ => format!("sqlite://{}", data_dir.join("tessera.db").display()),
    }
}

async fn start_server(data_dir: &Path, database_url: &str, log_file: Option<&Path>) -> Server {
    start_server_with(data_dir, database_url, log_file, &[]).await
}

/// As [`start_server`], with extra `TESSERA_*` variables.
async fn start_server_with(
    data_dir: &Path,
    database_url: &str,
    log_file: Option<&Path>,
    env: &[(&str, &str)],
) -> Server {
    let stderr = match log_file {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let mut child = Command::new(BIN)
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_DATABASE_URL", database_url)
        .env(
            "TESSERA_LOG_LEVEL",
            if log_file.is_some() { "trace" } else { "warn" },
        )
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("start tessera");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("tessera printed its URL");
        if let Some(url) = line.strip_prefix("Tessera listening on ") {
            break url.trim().to_owned();
        }
    };
    Server { child, base }
}

fn terminate(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (u16, Value, String) {
    let mut req = match body {
        Some(body) => client.post(format!("{base}{path}")).json(&body),
        None => client.get(format!("{base}{path}")),
    };
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn logs_at_trace_level_never_contain_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log: PathBuf = dir.path().join("tessera.log");
    let url = database_url(dir.path()).await;
    let mut server = start_server(dir.path(), &url, Some(&log)).await;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let mut secrets: Vec<String> = vec![PASSWORD.into()];
    let email = format!("logs-{}@example.com", uuid::Uuid::new_v4().simple());

    let (status, _, _) = call(
        &client,
        &base,
        "/v1/auth/register",
        Some(json!({"email": email, "password": PASSWORD})),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let wrong = "wrong-password-in-logs-test";
    secrets.push(wrong.into());
    call(
        &client,
        &base,
        "/v1/auth/login",
        Some(json!({"email": email, "password": wrong})),
        None,
    )
    .await;
    let (_, login, _) = call(
        &client,
        &base,
        "/v1/auth/login",
        Some(json!({"email": email, "password": PASSWORD})),
        None,
    )
    .await;
    let access = s(&login["accessToken"]);
    secrets.extend([access.clone(), s(&login["refreshToken"])]);

    let (_, setup, _) = call(
        &client,
        &base,
        "/v1/auth/2fa/setup",
        Some(json!({})),
        Some(&access),
    )
    .await;
    let secret = s(&setup["secret"]);
    secrets.extend([secret.clone(), s(&setup["otpauthUrl"])]);
    let code = totp_code(&secret, now());
    let (status, enabled, _) = call(
        &client,
        &base,
        "/v1/auth/2fa/verify-setup",
        Some(json!({"code": code})),
        Some(&access),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    let backup_codes: Vec<String> = enabled["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    secrets.extend(backup_codes.iter().cloned());

    let (_, step, _) = call(
        &client,
        &base,
        "/v1/auth/login",
        Some(json!({"email": email, "password": PASSWORD})),
        None,
    )
    .await;
    let two_factor = s(&step["twoFactorToken"]);
    secrets.push(two_factor.clone());
    let next_code = totp_code(&secret, now() + 30);
    let trust = json!({"deviceName": "log test", "deviceType": "desktop", "deviceFingerprint": "fp-secret-logs"});
    let (status, verified, text) = call(
        &client,
        &base,
        "/v1/auth/2fa/verify",
        Some(json!({"code": next_code, "trustDevice": trust})),
        Some(&two_factor),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let access2 = s(&verified["accessToken"]);
    let refresh2 = s(&verified["refreshToken"]);
    let device_token = s(&verified["deviceToken"]);
    secrets.extend([access2.clone(), refresh2.clone(), device_token.clone()]);
    let (_, refreshed, _) = call(
        &client,
        &base,
        "/v1/auth/refresh",
        Some(json!({"refreshToken": refresh2})),
        None,
    )
    .await;
    secrets.extend([s(&refreshed["accessToken"]), s(&refreshed["refreshToken"])]);
    let (status, _, _) = call(
        &client,
        &base,
        "/v1/auth/2fa/regenerate-backup-codes",
        Some(json!({"code": backup_codes[0]})),
        Some(&access2),
    )
    .await;
    assert_eq!(status, 200);
    call(
        &client,
        &base,
        "/v1/auth/login",
        Some(json!({"email": email, "password": PASSWORD, "deviceToken": device_token, "deviceFingerprint": "fp-secret-logs"})),
        None,
    )
    .await;
    let new_password = "an entirely new passphrase";
    secrets.push(new_password.into());
    let (status, _, _) = call(
        &client,
        &base,
        "/v1/auth/password",
        Some(json!({"currentPassword": PASSWORD, "newPassword": new_password})),
        Some(&access2),
    )
    .await;
    assert_eq!(status, 204);
    // A bearer that is not a token at all, to see the Authorization header is not logged.
    call(
        &client,
        &base,
        "/v1/auth/me",
        None,
        Some("not-a-token-but-secret-looking"),
    )
    .await;
    secrets.push("not-a-token-but-secret-looking".into());

    terminate(&server.child);
    server.child.wait().await.unwrap();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.lines().count() > 20,
        "trace logging produced output:\n{logs}"
    );
    assert!(logs.contains("/v1/auth/2fa/verify"), "requests are logged");
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the logs: {secret}"
        );
    }
    // Backup codes also in their normalized form, and the password hash.
    for code in &backup_codes {
        assert!(
            !logs.contains(&code.replace('-', "")),
            "a backup code appears in the logs"
        );
    }
    assert!(
        !logs.contains("$argon2id$"),
        "a password hash appears in the logs"
    );
    assert!(
        !logs.to_ascii_lowercase().contains("bearer "),
        "an Authorization header appears in the logs"
    );
}

#[tokio::test]
async fn sigterm_lets_every_request_started_before_it_finish() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(dir.path()).await;
    let scrape_token = "a-scrape-token-for-this-test";
    let mut server = start_server_with(
        dir.path(),
        &url,
        None,
        &[("TESSERA_METRICS_BEARER_TOKEN", scrape_token)],
    )
    .await;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let email = format!("burst-{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, _, _) = call(
        &client,
        &base,
        "/v1/auth/register",
        Some(json!({"email": email, "password": PASSWORD})),
        None,
    )
    .await;
    assert_eq!(status, 201);

    // A burst of logins: each costs an Argon2 hash, so they queue on 2 cores.
    let burst: Vec<_> = (0..24)
        .map(|_| {
            let client = client.clone();
            let base = base.clone();
            let body = json!({"email": email, "password": PASSWORD});
            tokio::spawn(async move {
                call(&client, &base, "/v1/auth/login", Some(body), None)
                    .await
                    .0
            })
        })
        .collect();
    // Signal once the server reports hashes in flight: the burst has started.
    loop {
        let (_, _, metrics) = call(&client, &base, "/metrics", None, Some(scrape_token)).await;
        let in_flight = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tessera_argon2_in_flight "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if in_flight >= 2.0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    terminate(&server.child);
    let statuses: Vec<u16> = join_all(burst)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request in flight got a complete answer: {statuses:?}"
    );
    let exit = server.child.wait().await.unwrap();
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "no new connections after shutdown"
    );
}

/// Runs `tessera admin ...` against the app's database and keys.
async fn admin(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("admin")
        .args(args)
        .env("TESSERA_DATA_DIR", &app.config.data_dir)
        .env("TESSERA_DATABASE_URL", app.config.database_url())
        .env("TESSERA_LOG_LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tessera admin");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_create_list_and_show_users() {
    let app = TestApp::spawn_with(|c| c.allow_registration = false).await;
    let closed = app.register("walk-in@example.com", PASSWORD).await;
    closed.assert_problem(403, "registration_closed");

    let (code, out, err) = admin(
        &app,
        &[
            "create-user",
            "--email",
            "Op@Example.com",
            "--user-name",
            "operator",
        ],
        Some("operator password 1\n"),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("op@example.com"), "{out}");
    let login = app.login("op@example.com", "operator password 1").await;
    assert_eq!(
        login.status, 200,
        "the created user can log in: {}",
        login.text
    );

    let (code, _, err) = admin(
        &app,
        &["create-user", "--email", "op@example.com"],
        Some("another password\n"),
    )
    .await;
    assert_eq!(code, 1, "duplicate email fails");
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = admin(
        &app,
        &["create-user", "--email", "short@example.com"],
        Some("short\n"),
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("password"), "{err}");

    let (code, out, _) = admin(&app, &["list-users", "--search", "op@"], None).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("op@example.com") && out.contains("1 user(s)"),
        "{out}"
    );
    let (code, out, _) = admin(&app, &["show-user", "operator"], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("2FA:                 off"), "{out}");
    let (code, _, err) = admin(&app, &["show-user", "ghost@example.com"], None).await;
    assert_eq!(code, 1, "an unknown user is an error");
    assert!(err.contains("no user matches"), "{err}");
}

#[tokio::test]
async fn admin_reset_unlock_and_revoke() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    // Lock the second factor.
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    for _ in 0..5 {
        verify_code(&app, &token, "000000").await;
    }
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let right = totp_code(&enrolled.secret, app.now());
    let locked = verify_code(&app, &token, &right).await;
    locked.assert_problem(429, "second_factor_locked");
    let (code, out, _) = admin(&app, &["show-user", &user.email], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("locked until"), "{out}");

    let (code, out, err) = admin(&app, &["unlock", &user.email], None).await;
    assert_eq!(code, 0, "{out}{err}");
    let unlocked = verify_code(&app, &token, &right).await;
    assert_eq!(
        unlocked.status, 200,
        "unlock lifts the lock: {}",
        unlocked.text
    );

    let (code, out, _) = admin(&app, &["revoke-sessions", &user.email], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("Revoked"), "{out}");
    assert_eq!(
        app.get("/v1/auth/me", Some(&user.access_token))
            .await
            .status,
        401
    );

    let (code, out, err) = admin(&app, &["reset-2fa", &user.email], None).await;
    assert_eq!(code, 0, "{out}{err}");
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_eq!(
        login.body["requires2FA"], false,
        "2FA is off after the reset"
    );
    let events = app
        .get(
            "/v1/auth/security-events",
            Some(login.body["accessToken"].as_str().unwrap()),
        )
        .await;
    let types: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"two_factor_reset") && types.contains(&"account_unlocked"),
        "{types:?}"
    );
}

fn hang_up(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sighup_makes_the_server_load_the_replaced_certificate() {
    use crate::transport::{TestCa, healthz_over_tls};
    let dir = tempfile::tempdir().unwrap();
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let first = ca.server_cert("first");
    let (cert, key) = first.write_to(pki.path());
    let url = database_url(dir.path()).await;
    let mut server = start_server_with(
        dir.path(),
        &url,
        None,
        &[
            ("TESSERA_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("TESSERA_TLS_KEY_FILE", key.to_str().unwrap()),
        ],
    )
    .await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let (health, der) = healthz_over_tls(&ca.client(), &server.base).await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(der, first.der);

    let second = ca.server_cert("second");
    second.write_to(pki.path());
    hang_up(&server.child);
    // The signal is handled asynchronously: new connections switch once it has been.
    let switched = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let (_, der) = healthz_over_tls(&ca.client(), &server.base).await;
            if der == second.der {
                break;
            }
            assert_eq!(der, first.der, "only the two certificates are ever served");
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(switched.is_ok(), "the new certificate was never served");
    // The server is still up (SIGHUP did not end it) and stops cleanly.
    terminate(&server.child);
    let exit = server.child.wait().await.unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");
}

#[tokio::test]
async fn admin_names_users_explicitly_and_refuses_an_ambiguous_argument() {
    let app = TestApp::spawn().await;
    let dave = app.register("dave@corp.com", PASSWORD).await;
    assert_eq!(dave.status, 201, "{}", dave.text);
    let dave_id = dave.body["id"].as_str().unwrap().to_owned();
    // An account from before user names were kept apart from ids and emails: its user
    // name is Dave's id. It can no longer be registered, so it is written to the database.
    let legacy_id = uuid::Uuid::new_v4();
    let hash = app
        .state
        .hasher
        .hash(&secrecy::SecretString::from(PASSWORD))
        .await
        .unwrap();
    let mut conn = app.state.db.begin().await.unwrap();
    tessera::db::users::insert(
        &mut conn,
        &tessera::db::users::NewUser {
            id: legacy_id,
            email: "mallory@example.com",
            user_name: &dave_id,
            user_name_key: &dave_id,
            phone_number: None,
            password_hash: &hash,
            created_at: app.now(),
        },
    )
    .await
    .unwrap();
    conn.commit().await.unwrap();

    for command in ["show-user", "unlock", "revoke-sessions", "reset-2fa"] {
        let (code, out, err) = admin(&app, &[command, &dave_id], None).await;
        assert_eq!(
            code, 1,
            "{command}: an ambiguous name is refused: {out}{err}"
        );
        assert!(
            err.contains("more than one account")
                && err.contains(&dave_id)
                && err.contains(&legacy_id.to_string()),
            "{command}: {err}"
        );
    }
    let (code, out, err) = admin(&app, &["show-user", "--id", &dave_id], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dave@corp.com"), "--id picks Dave: {out}");
    let (code, out, err) = admin(&app, &["show-user", "--user-name", &dave_id], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("mallory@example.com"),
        "--user-name picks the other account: {out}"
    );
    let (code, out, err) = admin(&app, &["show-user", "--email", "Dave@Corp.com"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&dave_id), "{out}");
    // An explicit field never falls back to another: an email is no user name here.
    let (code, _, err) = admin(
        &app,
        &["show-user", "--user-name", "mallory@example.com"],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("no user matches"), "{err}");
    // A bare argument that names one account still works.
    let (code, out, err) = admin(&app, &["show-user", "mallory@example.com"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&legacy_id.to_string()), "{out}");
    // Exactly one way of naming the user.
    let (code, _, err) = admin(
        &app,
        &["show-user", "--id", &dave_id, "--email", "dave@corp.com"],
        None,
    )
    .await;
    assert_eq!(code, 2, "clap refuses two selectors: {err}");
}

/// Runs `tessera admin ...` with `USER`/`LOGNAME` as given (`None` removes the variable).
async fn admin_as(
    app: &TestApp,
    args: &[&str],
    stdin: Option<&str>,
    user: Option<&str>,
    logname: Option<&str>,
) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command
        .arg("admin")
        .args(args)
        .env("TESSERA_DATA_DIR", &app.config.data_dir)
        .env("TESSERA_DATABASE_URL", app.config.database_url())
        .env("TESSERA_LOG_LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in [("USER", user), ("LOGNAME", logname)] {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut child = command.spawn().expect("run tessera admin");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The user's security events as `(type, details)`, oldest first.
async fn events_of(app: &TestApp, email: &str, password: &str) -> Vec<(String, Value)> {
    let login = app.login(email, password).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.body["accessToken"].as_str().unwrap().to_owned();
    let events = app.get("/v1/auth/security-events", Some(&token)).await;
    let mut list: Vec<(String, Value)> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (s(&e["type"]), e["details"].clone()))
        .collect();
    list.reverse();
    list
}

#[tokio::test]
async fn admin_commands_record_events_naming_the_operator() {
    let app = TestApp::spawn().await;
    let (code, out, err) = admin_as(
        &app,
        &[
            "create-user",
            "--email",
            "new@example.com",
            "--operator",
            "alice",
        ],
        Some("operator chosen passphrase\n"),
        Some("root"),
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    // No session yet: revoking records the operator's act all the same.
    let (code, out, err) = admin_as(
        &app,
        &["revoke-sessions", "--email", "new@example.com"],
        None,
        Some("bob"),
        Some("not-used"),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Revoked 0 session(s)"), "{out}");
    let (code, out, err) = admin_as(
        &app,
        &["unlock", "new@example.com"],
        None,
        None,
        Some("carol"),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = admin_as(&app, &["unlock", "new@example.com"], None, None, None).await;
    assert_eq!(code, 0, "{out}{err}");

    let events = events_of(&app, "new@example.com", "operator chosen passphrase").await;
    let admin_events: Vec<(String, Value)> = events
        .into_iter()
        .filter(|(kind, _)| kind != "login_succeeded")
        .collect();
    let uid = {
        use std::os::unix::fs::MetadataExt;
        format!("uid {}", std::fs::metadata("/proc/self").unwrap().uid())
    };
    assert_eq!(
        admin_events,
        vec![
            ("account_created".to_owned(), json!({"operator": "alice"})),
            (
                "sessions_revoked".to_owned(),
                json!({"operator": "bob", "count": 0, "reason": "admin"})
            ),
            ("account_unlocked".to_owned(), json!({"operator": "carol"})),
            ("account_unlocked".to_owned(), json!({"operator": uid})),
        ],
        "--operator, else $USER, else $LOGNAME, else the uid"
    );

    // With sessions (the login above and this one), the count says how many were revoked.
    let login = app
        .login("new@example.com", "operator chosen passphrase")
        .await;
    let token = login.body["accessToken"].as_str().unwrap().to_owned();
    let (code, out, _) = admin_as(
        &app,
        &["revoke-sessions", "new@example.com", "--operator", "dave"],
        None,
        None,
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("Revoked 2 session(s)"), "{out}");
    assert_eq!(app.get("/v1/auth/me", Some(&token)).await.status, 401);
    let events = events_of(&app, "new@example.com", "operator chosen passphrase").await;
    let (kind, details) = events
        .iter()
        .rev()
        .find(|(kind, _)| kind == "sessions_revoked")
        .unwrap();
    assert_eq!(kind, "sessions_revoked");
    assert_eq!(
        details,
        &json!({"operator": "dave", "count": 2, "reason": "admin"})
    );

    // A reset of the second factor names its operator too.
    let (code, out, err) = admin_as(
        &app,
        &[
            "reset-2fa",
            "--email",
            "new@example.com",
            "--operator",
            "erin",
        ],
        None,
        None,
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let events = events_of(&app, "new@example.com", "operator chosen passphrase").await;
    let (_, details) = events
        .iter()
        .rev()
        .find(|(kind, _)| kind == "two_factor_reset")
        .expect("a two_factor_reset event");
    assert_eq!(details, &json!({"operator": "erin"}));
}

#[tokio::test]
async fn admin_api_keys_are_made_listed_and_revoked_by_the_binary() {
    let app = TestApp::spawn().await;
    let (code, out, err) = admin(
        &app,
        &[
            "api-keys",
            "create",
            "--name",
            "backend",
            "--scope",
            "users:read",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let key = out
        .lines()
        .find(|l| l.starts_with("tsk_"))
        .unwrap_or_else(|| panic!("the key is printed: {out}"))
        .to_owned();
    let listed = app.get("/admin/v1/users", Some(&key)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let (code, out, _) = admin(&app, &["api-keys", "list"], None).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("backend") && out.contains("users:read") && !out.contains(&key),
        "{out}"
    );
    let (code, _, err) = admin(
        &app,
        &["api-keys", "create", "--name", "x", "--scope", "users:all"],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("unknown scope"), "{err}");
    let (code, out, err) = admin(&app, &["api-keys", "revoke", "backend"], None).await;
    assert_eq!(code, 0, "{out}{err}");
    // No live key is left: the admin API is off.
    app.get("/admin/v1/users", Some(&key))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn admin_import_totp_reports_every_line_and_exits_2_on_a_refusal() {
    let app = TestApp::spawn().await;
    let ann = app.signed_in_user().await;
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let file = app.data_dir.path().join("import.csv");
    std::fs::write(
        &file,
        format!(
            "email,otpauth\n{},\"otpauth://totp/Old:ann?secret={secret}&algorithm=SHA512&digits=8&period=60\"\nnobody@example.com,otpauth://totp/x?secret={secret}\n",
            ann.email
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = admin(&app, &["import-totp", path, "--dry-run"], None).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("line 2: ") && out.contains("would import"),
        "{out}"
    );
    assert!(
        out.contains("line 3: ") && out.contains("no such account"),
        "{out}"
    );
    assert!(
        !out.contains(secret) && !err.contains(secret),
        "no secret printed"
    );
    let (code, out, err) = admin(&app, &["import-totp", path], None).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("2 line(s): 1 imported, 1 refused"), "{out}");
    let (code, out, _) = admin(&app, &["show-user", &ann.email], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("SHA512, 8 digits, 60 s"), "{out}");

    // Two consecutive codes of an authenticator whose clock is right (the CLI runs on the
    // wall clock).
    let seed = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let now = app.now() as u64;
    let code_at = |t: u64| totp_lite::totp_custom::<totp_lite::Sha512>(60, 8, &seed, t);
    let (code, out, err) = admin(
        &app,
        &["resync-totp", &ann.email, &code_at(now - 60), &code_at(now)],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    // 0, or -1 if the wall clock entered the next minute meanwhile.
    assert!(
        out.contains("Resynchronised") && (out.contains("drift 0 ") || out.contains("drift -1 ")),
        "{out}"
    );
}
