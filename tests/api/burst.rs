//! An enrolment burst on the default database: many clients registering, signing in,
//! enrolling and signing in with their second factor at once. Every answer must be a
//! success, and none may stall: a writer waits its turn in the queue, it never waits on a
//! connection held by someone waiting on it. The bound is a stall detector (the failure it
//! guards against held requests for the full 10-second acquire timeout), not a speed
//! target; speed is measured by the load benchmark.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, totp_code};

const CLIENTS: usize = 64;
const ROUNDS: usize = 3;
const STALL: Duration = Duration::from_secs(2);

/// One request of a flow: its answer must be `expected`, within the stall bound.
async fn step(
    app: &TestApp,
    slowest: &mut Duration,
    path: &str,
    body: Value,
    bearer: Option<&str>,
    expected: u16,
) -> Value {
    let started = Instant::now();
    let answer = app.post(path, body, bearer).await;
    let took = started.elapsed();
    *slowest = (*slowest).max(took);
    assert_eq!(answer.status.as_u16(), expected, "{path}: {}", answer.text);
    assert!(took < STALL, "{path} took {took:?}");
    answer.body
}

/// Register, log in, set up, confirm, log in again with the second factor, refresh.
async fn flow(app: &TestApp, client: usize, round: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    let email = format!(
        "burst-{client}-{round}-{}@example.com",
        uuid::Uuid::new_v4().simple()
    );
    let credentials = json!({"email": email, "password": PASSWORD});
    step(
        app,
        &mut slowest,
        "/v1/auth/register",
        credentials.clone(),
        None,
        201,
    )
    .await;
    let login = step(
        app,
        &mut slowest,
        "/v1/auth/login",
        credentials.clone(),
        None,
        200,
    )
    .await;
    let access = login["accessToken"].as_str().unwrap().to_owned();
    let setup = step(
        app,
        &mut slowest,
        "/v1/auth/2fa/setup",
        json!({}),
        Some(&access),
        200,
    )
    .await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    step(
        app,
        &mut slowest,
        "/v1/auth/2fa/verify-setup",
        json!({"code": totp_code(&secret, app.now())}),
        Some(&access),
        200,
    )
    .await;
    let pending = step(app, &mut slowest, "/v1/auth/login", credentials, None, 200).await;
    let token = pending["twoFactorToken"].as_str().unwrap().to_owned();
    // The next step's code: accepted (one step of skew) and later than the one enrolment used.
    let signed_in = step(
        app,
        &mut slowest,
        "/v1/auth/2fa/verify",
        json!({"code": totp_code(&secret, app.now() + 30)}),
        Some(&token),
        200,
    )
    .await;
    let refresh = signed_in["refreshToken"].as_str().unwrap().to_owned();
    step(
        app,
        &mut slowest,
        "/v1/auth/refresh",
        json!({"refreshToken": refresh}),
        None,
        200,
    )
    .await;
    slowest
}

/// Ignored in the plain `cargo test`: its bound is about this server alone, and the suite
/// runs dozens of other servers on the same two cores at once. CI runs it by itself on both
/// backends: `cargo test --test api -- --ignored burst`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing: run alone, as CI does (cargo test --test api -- --ignored burst)"]
async fn sixty_four_clients_enrolling_and_signing_in_at_once_all_succeed_without_stalls() {
    // Cheap password hashing: this test is about the write path, not Argon2's cost. No
    // per-address limit: every client comes from 127.0.0.1.
    let app = std::sync::Arc::new(
        TestApp::spawn_with(|c| {
            c.argon2_memory_kib = 256;
            c.argon2_iterations = 1;
            c.rate_limit_per_minute = 0;
        })
        .await,
    );
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                for round in 0..ROUNDS {
                    slowest = slowest.max(flow(&app, client, round).await);
                }
                slowest
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for client in clients {
        slowest = slowest.max(client.await.expect("a client's flows all succeed"));
    }
    eprintln!("{CLIENTS} clients x {ROUNDS} flows: slowest answer {slowest:?}");
}
