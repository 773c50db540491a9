//! Cancellation is an input: a client that hangs up at any moment of a request that
//! decides a security outcome leaves the account's counters, locks and single-use records
//! consistent. Each test sweeps the moment of the hang-up (from right after the last byte
//! to 10 ms later, and halfway through the body), waits until the server has carried out
//! whatever the hung-up request started, and then checks that the next requests behave as
//! the rules say: a wrong code is counted, a right one accepted, a real lock has a real
//! `Retry-After`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{PASSWORD, TestApp, totp_code, verify_code, wrong_code};

/// When the client hangs up.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// This long after the last byte of the request.
    After(Duration),
    /// Halfway through the body: the request never arrives whole.
    MidBody,
}

fn cuts() -> Vec<Cut> {
    let mut cuts: Vec<Cut> = [0u64, 100, 300, 600, 1_000, 2_000, 4_000, 10_000]
        .into_iter()
        .map(|micros| Cut::After(Duration::from_micros(micros)))
        .collect();
    cuts.push(Cut::MidBody);
    cuts
}

/// Waits `delay` while letting the server (on this test's runtime) run: the timer wheel's
/// millisecond grain is too coarse for the short delays, so they spin on `yield_now`.
async fn pause(delay: Duration) {
    let start = Instant::now();
    if delay >= Duration::from_millis(1) {
        tokio::time::sleep(delay).await;
        return;
    }
    while start.elapsed() < delay {
        tokio::task::yield_now().await;
    }
}

/// Sends a JSON POST on a raw connection and hangs up at `cut`: the write half is closed,
/// so the server reads end-of-stream (what a client that closes its socket looks like to
/// it) and drops the request if it is still running. Returns once the server is done with
/// the connection and every use case the request started has finished.
async fn hang_up(app: &TestApp, path: &str, body: Value, bearer: Option<&str>, cut: Cut) {
    let body = body.to_string();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send head");
    match cut {
        Cut::After(delay) => {
            stream.write_all(body.as_bytes()).await.expect("send body");
            pause(delay).await;
        }
        Cut::MidBody => {
            stream
                .write_all(&body.as_bytes()[..body.len() / 2])
                .await
                .expect("send half the body");
        }
    }
    let _ = stream.shutdown().await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the server closes a connection its client hung up on")
        .ok();
    tokio::time::timeout(Duration::from_secs(10), app.state.use_cases.wait_idle())
        .await
        .expect("the hung-up request's work finishes");
}

fn retry_after(answer: &crate::helpers::TestResponse) -> i64 {
    answer
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("429 without Retry-After: {}", answer.text))
}

#[tokio::test]
async fn a_second_step_hung_up_at_any_moment_leaves_the_counters_consistent() {
    let app = TestApp::spawn().await;
    let lock_secs = app.config.lockout_base_secs;
    for cut in cuts() {
        let enrolled = app.enable_two_factor(&app.signed_in_user().await).await;
        let email = &enrolled.user.email;
        let wrong = wrong_code(&enrolled.secret, app.now());
        let token = app.two_factor_token(email, PASSWORD).await;
        for _ in 0..4 {
            verify_code(&app, &token, &wrong)
                .await
                .assert_problem(401, "invalid_code");
        }

        // The fifth wrong code would lock the second factor; its client hangs up.
        hang_up(
            &app,
            "/v1/auth/2fa/verify",
            json!({"code": wrong}),
            Some(&token),
            cut,
        )
        .await;

        // Either the fifth failure happened whole (a real lock) or not at all (a right code
        // is accepted). Never a stuck attempt that refuses right codes without a lock.
        let right = app.login_with_code(&enrolled).await;
        match right.status.as_u16() {
            200 => {}
            429 => {
                assert!(
                    !matches!(cut, Cut::MidBody),
                    "a request that never arrived whole locked the account"
                );
                let retry = retry_after(&right);
                assert!(
                    retry > lock_secs - 5 && retry <= lock_secs,
                    "a lock of the configured length, not a leaked attempt: Retry-After {retry} after {cut:?}"
                );
                app.clock.advance(retry);
                let after_lock = app.login_with_code(&enrolled).await;
                assert_eq!(
                    after_lock.status, 200,
                    "after the lock ({cut:?}): {}",
                    after_lock.text
                );
            }
            other => panic!("unexpected {other} after {cut:?}: {}", right.text),
        }
        app.clock.advance(30);

        // The counters started over: five wrong codes lock again, the fifth with a lock.
        let token = app.two_factor_token(email, PASSWORD).await;
        let wrong = wrong_code(&enrolled.secret, app.now());
        for _ in 0..5 {
            verify_code(&app, &token, &wrong)
                .await
                .assert_problem(401, "invalid_code");
        }
        let locked = app.login_with_code(&enrolled).await;
        locked.assert_problem(429, "second_factor_locked");
        assert!(retry_after(&locked) > 60, "after {cut:?}: {}", locked.text);
        // Unlock for the next round (a new account is used anyway).
        app.clock.advance(24 * 3600);
    }
}

#[tokio::test]
async fn a_refresh_hung_up_at_any_moment_rotates_whole_or_not_at_all() {
    let app = TestApp::spawn().await;
    for cut in cuts() {
        let user = app.signed_in_user().await;
        hang_up(
            &app,
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
            cut,
        )
        .await;
        let again = app
            .post(
                "/v1/auth/refresh",
                json!({"refreshToken": user.refresh_token}),
                None,
            )
            .await;
        match again.status.as_u16() {
            // Never rotated: the pair it returns works.
            200 => {
                let next = again.body["refreshToken"].as_str().unwrap();
                let rotated = app
                    .post("/v1/auth/refresh", json!({"refreshToken": next}), None)
                    .await;
                assert_eq!(rotated.status, 200, "after {cut:?}: {}", rotated.text);
            }
            // Rotated by the hung-up request: presenting the retired token again is reuse,
            // which ends the whole session at once.
            401 => {
                assert!(!matches!(cut, Cut::MidBody), "rotated by half a request");
                again.assert_problem(401, "invalid_refresh_token");
                app.get("/v1/auth/me", Some(&user.access_token))
                    .await
                    .assert_problem(401, "unauthorized");
            }
            other => panic!("unexpected {other} after {cut:?}: {}", again.text),
        }
    }
}

#[tokio::test]
async fn with_a_reuse_grace_a_client_that_hung_up_on_its_refresh_keeps_its_session() {
    let app = TestApp::spawn_with(|c| c.refresh_reuse_grace_secs = 10).await;
    for cut in cuts() {
        let user = app.signed_in_user().await;
        hang_up(
            &app,
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
            cut,
        )
        .await;
        let again = app
            .post(
                "/v1/auth/refresh",
                json!({"refreshToken": user.refresh_token}),
                None,
            )
            .await;
        assert_eq!(again.status, 200, "after {cut:?}: {}", again.text);
        let next = again.body["refreshToken"].as_str().unwrap();
        let rotated = app
            .post("/v1/auth/refresh", json!({"refreshToken": next}), None)
            .await;
        assert_eq!(rotated.status, 200, "after {cut:?}: {}", rotated.text);
    }
}

#[tokio::test]
async fn a_verify_setup_hung_up_at_any_moment_enrols_whole_or_not_at_all() {
    let app = TestApp::spawn().await;
    for cut in cuts() {
        let user = app.signed_in_user().await;
        let setup = app
            .post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
            .await;
        assert_eq!(setup.status, 200, "{}", setup.text);
        let secret = setup.body["secret"].as_str().unwrap().to_owned();
        hang_up(
            &app,
            "/v1/auth/2fa/verify-setup",
            json!({"code": totp_code(&secret, app.now())}),
            Some(&user.access_token),
            cut,
        )
        .await;
        let status = app
            .get("/v1/auth/2fa/status", Some(&user.access_token))
            .await;
        assert_eq!(status.status, 200, "{}", status.text);
        if status.body["enabled"] == true {
            assert!(!matches!(cut, Cut::MidBody), "enrolled by half a request");
            // On, with its codes, and the confirmed secret is the one in use.
            assert_eq!(status.body["backupCodesRemaining"], 10, "{}", status.text);
            assert_eq!(status.body["setupPending"], false, "{}", status.text);
            app.clock.advance(30);
            let token = app.two_factor_token(&user.email, PASSWORD).await;
            let verified = app
                .post(
                    "/v1/auth/2fa/verify",
                    json!({"code": totp_code(&secret, app.now())}),
                    Some(&token),
                )
                .await;
            assert_eq!(verified.status, 200, "after {cut:?}: {}", verified.text);
        } else {
            // Off, with nothing half-made: still pending, no codes; confirming works.
            assert_eq!(status.body["setupPending"], true, "{}", status.text);
            assert_eq!(status.body["backupCodesRemaining"], 0, "{}", status.text);
            let confirmed = app
                .post(
                    "/v1/auth/2fa/verify-setup",
                    json!({"code": totp_code(&secret, app.now())}),
                    Some(&user.access_token),
                )
                .await;
            assert_eq!(confirmed.status, 200, "after {cut:?}: {}", confirmed.text);
            assert_eq!(confirmed.body["backupCodes"].as_array().unwrap().len(), 10);
        }
    }
}
