//! Readiness, metrics and pruning, on an in-process server.

use serde_json::json;
use tessera::db::Db;
use tessera::service::maintenance;

use crate::helpers::{PASSWORD, TestApp, totp_code, verify_code};

/// Runs a statement on whichever database the app uses.
async fn execute(app: &TestApp, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &app.state.db {
        Db::Sqlite { write: pool, .. } => sqlx::query(sql).execute(pool).await.map(|_| ()),
        Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
    .expect("statement runs");
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    match &app.state.db {
        Db::Sqlite { write: pool, .. } => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
    }
    .expect("count")
}

#[tokio::test]
async fn readyz_is_ready_with_a_current_schema() {
    let app = TestApp::spawn().await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["status"], "ready");
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn readyz_fails_when_migrations_are_not_current() {
    let app = TestApp::spawn().await;
    execute(&app, "DELETE FROM _sqlx_migrations").await;
    app.get("/readyz", None)
        .await
        .assert_problem(503, "service_unavailable");
    assert_eq!(
        app.get("/healthz", None).await.status,
        200,
        "liveness does not depend on the database"
    );
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_unreachable() {
    let app = TestApp::spawn().await;
    app.state.db.close().await;
    app.get("/readyz", None)
        .await
        .assert_problem(503, "service_unavailable");
    let login = app.login("nobody@example.com", PASSWORD).await;
    login.assert_problem(503, "service_unavailable");
}

/// The value of one sample line (`name{labels} value`) in the exposition text.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name_and_labels)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.parse().expect("numeric sample"))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_with_a_scripted_flow() {
    let app =
        TestApp::spawn_with(|config| config.metrics_listen = Some("127.0.0.1:0".into())).await;
    let user = app.signed_in_user().await; // one successful password login
    let wrong = app.login(&user.email, "not the password").await;
    assert_eq!(wrong.status, 401);
    let enrolled = app.enable_two_factor(&user).await;

    // A failed and a successful second factor, then a backup code.
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let failed = verify_code(&app, &token, "000000").await;
    assert_eq!(failed.status, 401);
    let code = totp_code(&enrolled.secret, app.now());
    let ok = verify_code(&app, &token, &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let backup = verify_code(&app, &token, &enrolled.backup_codes[0]).await;
    assert_eq!(backup.status, 200, "{}", backup.text);

    // Five failures lock the second factor.
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    for _ in 0..5 {
        verify_code(&app, &token, "000000").await;
    }

    let metrics = app.scrape_metrics().await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.content_type().starts_with("text/plain"),
        "{}",
        metrics.content_type()
    );
    let text = &metrics.text;
    assert_eq!(
        sample(text, "tessera_logins_total{outcome=\"success\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(text, "tessera_logins_total{outcome=\"wrong_password\"}"),
        1.0
    );
    assert_eq!(
        sample(
            text,
            "tessera_logins_total{outcome=\"second_factor_required\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            text,
            "tessera_second_factor_checks_total{method=\"totp\",outcome=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            text,
            "tessera_second_factor_checks_total{method=\"backup_code\",outcome=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            text,
            "tessera_second_factor_checks_total{method=\"totp\",outcome=\"failure\"}"
        ),
        6.0
    );
    assert_eq!(sample(text, "tessera_second_factor_lockouts_total"), 1.0);
    assert_eq!(sample(text, "tessera_backup_codes_used_total"), 1.0);
    assert!(
        sample(
            text,
            "tessera_http_requests_total{route=\"/v1/auth/login\",method=\"POST\",status=\"200\"}"
        ) >= 4.0,
        "{text}"
    );
    assert!(text.contains("tessera_http_request_duration_seconds_bucket{route=\"/v1/auth/2fa/verify\",method=\"POST\",le=\"+Inf\"}"));
    assert!(
        sample(
            text,
            "tessera_argon2_duration_seconds_count{operation=\"verify\"}"
        ) >= 5.0
    );
    assert!(text.contains("tessera_db_pool_connections{state=\"idle\"}"));
    assert_eq!(sample(text, "tessera_trusted_devices_active"), 0.0);
    assert!(text.contains("# TYPE tessera_trusted_devices_active gauge"));
}

#[tokio::test]
async fn every_documented_gauge_is_exposed() {
    let app =
        TestApp::spawn_with(|config| config.metrics_listen = Some("127.0.0.1:0".into())).await;
    let text = app.scrape_metrics().await.text;
    for gauge in [
        "tessera_argon2_in_flight",
        "tessera_use_cases_in_flight",
        "tessera_trusted_devices_active",
    ] {
        assert!(
            text.contains(&format!("# TYPE {gauge} gauge")),
            "{gauge} is typed: {text}"
        );
        assert_eq!(
            sample(&text, gauge),
            0.0,
            "{gauge} on an idle server: {text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{gauge} "))),
            "{gauge} has a sample: {text}"
        );
    }
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener_by_default() {
    let app = TestApp::spawn().await;
    assert!(app.config.metrics_listen.is_none() && app.config.metrics_bearer_token.is_none());
    app.get("/metrics", None)
        .await
        .assert_problem(404, "not_found");
    assert!(
        app.metrics_address.is_none(),
        "no metrics listener unless configured"
    );
}

#[tokio::test]
async fn the_metrics_listener_serves_metrics_and_nothing_else() {
    let app =
        TestApp::spawn_with(|config| config.metrics_listen = Some("127.0.0.1:0".into())).await;
    let metrics = app.scrape_metrics().await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("# TYPE tessera_logins_total counter"),
        "{}",
        metrics.text
    );
    // The public listener still does not serve them, and the metrics listener serves no API.
    app.get("/metrics", None)
        .await
        .assert_problem(404, "not_found");
    let base = app.metrics_address.clone().unwrap();
    for path in ["/healthz", "/v1/auth/me", "/openapi.json"] {
        let answer = app.send(app.client.get(format!("{base}{path}"))).await;
        answer.assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn metrics_on_the_public_listener_need_the_bearer_token() {
    let token = "a-long-random-scrape-token-0123456789";
    let app = TestApp::spawn_with(|config| {
        config.metrics_bearer_token = Some(token.to_owned().into());
    })
    .await;
    app.get("/metrics", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/metrics", Some("a-long-random-scrape-token-012345678"))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/metrics", Some(&format!("{token}9")))
        .await
        .assert_problem(401, "unauthorized");
    let metrics = app.get("/metrics", Some(token)).await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    assert!(metrics.content_type().starts_with("text/plain"));
    assert!(
        metrics.text.contains(
            "tessera_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"} 3"
        ),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn a_short_metrics_token_is_refused_at_start() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "metrics_bearer_token = \"short\"\n").unwrap();
    let err = tessera::config::Config::load(Some(file.path())).unwrap_err();
    assert!(
        format!("{err:#}").contains("at least 16 characters"),
        "{err:#}"
    );
    assert!(
        !format!("{err:#}").contains("short"),
        "the token is not repeated: {err:#}"
    );
}

/// The counters (not timings) of the exposition text, line by line, sorted: the format
/// gives the series of a family in no particular order.
fn counters(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("tessera_") && l.contains("_total"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn a_throttled_right_password_looks_like_a_wrong_one_in_the_metrics() {
    // After one failure the account's password step is blocked for 2 s: the right password
    // is then refused like a wrong one, and must count like one too.
    let spawn = || {
        TestApp::spawn_with(|config| {
            config.metrics_listen = Some("127.0.0.1:0".into());
            config.password_delay_after = 1;
        })
    };
    let throttled = spawn().await;
    let guessed = spawn().await;
    for (app, second) in [(&throttled, PASSWORD), (&guessed, "another wrong guess")] {
        assert_eq!(app.register("ann@example.com", PASSWORD).await.status, 201);
        app.login("ann@example.com", "a wrong guess")
            .await
            .assert_problem(401, "invalid_credentials");
        app.login("ann@example.com", second)
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let seen = throttled.scrape_metrics().await.text;
    assert!(!seen.contains("throttled"), "{seen}");
    assert_eq!(
        sample(&seen, "tessera_logins_total{outcome=\"wrong_password\"}"),
        2.0,
        "{seen}"
    );
    assert_eq!(
        counters(&seen),
        counters(&guessed.scrape_metrics().await.text),
        "a right password on a throttled account counts exactly like a wrong one"
    );
}

#[tokio::test]
async fn pruning_removes_expired_rows_and_keeps_live_ones() {
    let app = TestApp::spawn().await;
    let old = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&old).await;
    // A trusted device and a second step that will both expire, and a pending second step.
    let verified = app.login_with_code(&enrolled).await;
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    let device = app
        .post(
            "/v1/auth/2fa/trusted-devices",
            json!({"deviceName": "old laptop", "deviceType": "desktop", "deviceFingerprint": "fp-old"}),
            Some(&access),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    let _abandoned = app.two_factor_token(&old.email, PASSWORD).await;

    app.clock.advance(31 * 24 * 3600);
    let fresh = app.signed_in_user().await;
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&fresh.access_token))
        .await;
    assert_eq!(setup.status, 200);

    let sessions_before = count(&app, "sessions").await;
    let report = maintenance::run_once(&app.state).await.expect("prune");
    assert_eq!(report.abandoned_second_factors, 1, "{report:?}");
    assert_eq!(report.trusted_devices, 1, "{report:?}");
    assert!(
        report.sessions >= 2,
        "the old user's sessions expired: {report:?}"
    );
    assert_eq!(report.pending_setups, 0, "the fresh setup is still pending");
    assert_eq!(count(&app, "trusted_devices").await, 0);
    assert_eq!(
        count(&app, "sessions").await,
        sessions_before - report.sessions as i64
    );
    // The live session and the live pending setup survive.
    assert_eq!(
        app.get("/v1/auth/me", Some(&fresh.access_token))
            .await
            .status,
        200
    );
    let status = app
        .get("/v1/auth/2fa/status", Some(&fresh.access_token))
        .await;
    assert_eq!(status.body["setupPending"], true);

    // The pending setup expires after 10 minutes; a second pass removes it and the
    // reported second step, and reports nothing twice.
    app.clock.advance(11 * 60);
    let report = maintenance::run_once(&app.state).await.expect("prune");
    assert_eq!(report.pending_setups, 1, "{report:?}");
    assert_eq!(report.abandoned_second_factors, 0, "{report:?}");
    assert_eq!(count(&app, "two_factor_challenges").await, 0);

    // Security events older than the retention go; newer ones stay.
    let events_before = count(&app, "security_events").await;
    assert!(events_before > 0);
    app.clock.advance(366 * 24 * 3600);
    let report = maintenance::run_once(&app.state).await.expect("prune");
    assert_eq!(report.security_events as i64, events_before);
    assert_eq!(count(&app, "security_events").await, 0);
}
