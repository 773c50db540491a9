//! What one account, or anyone hammering at one account, can add to the database: the
//! event log records real changes only, caps the types anyone can repeat at will, never
//! drops the events that matter, and authenticated writes are rate-limited per account.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{Value, json};
use tessera::service::events::CAPPED_EVENTS_PER_HOUR;

use crate::helpers::{PASSWORD, TestApp, TestUser, wrong_code};

/// Every event of the account, newest first.
async fn all_events(app: &TestApp, access: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let page = app
            .get(
                &format!("/v1/auth/security-events?limit=100&offset={}", events.len()),
                Some(access),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let rows = page.body.as_array().expect("an array").clone();
        if rows.is_empty() {
            return events;
        }
        events.extend(rows);
    }
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// How many events the rows of `kind` stand for: one each, plus what each counts as
/// suppressed.
fn represented(events: &[Value], kind: &str) -> i64 {
    of_type(events, kind)
        .iter()
        .map(|e| 1 + e["details"]["suppressed"].as_i64().unwrap_or(0))
        .sum()
}

fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts
            .entry(event["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_failed_login_flood_adds_at_most_the_cap_and_events_that_matter_still_land() {
    // Throttles and limits out of the way, so every one of the flood's logins is a failed
    // password the log must deal with; cheap Argon2 so the flood is quick.
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_per_minute = 0;
        config.password_max_failures_per_hour = 1_000_000;
        config.password_delay_after = 1_000_000;
        config.ip_max_failures_per_hour = 1_000_000;
        config.ip_delay_after = 1_000_000;
        config.argon2_memory_kib = 64;
        config.argon2_iterations = 1;
    })
    .await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let verified = app.login_with_code(&enrolled).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    let refresh = verified.body["refreshToken"].as_str().unwrap().to_owned();
    let before = counts(&all_events(&app, &access).await);

    const FLOOD: i64 = 500;
    let statuses: Vec<u16> = futures::stream::iter(0..FLOOD)
        .map(|_| async {
            app.login(&user.email, "not the password")
                .await
                .status
                .as_u16()
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");

    let events = all_events(&app, &access).await;
    let failed = of_type(&events, "login_failed");
    assert!(
        failed.len() as i64 <= CAPPED_EVENTS_PER_HOUR,
        "{} login_failed rows for a flood of {FLOOD}",
        failed.len()
    );
    assert_eq!(
        represented(&events, "login_failed"),
        FLOOD,
        "every failure is counted, as a row or as suppressed"
    );
    let mut others = counts(&events);
    others.remove("login_failed");
    let mut others_before = before.clone();
    others_before.remove("login_failed");
    assert_eq!(others, others_before, "the flood added nothing else");

    // The events that matter are recorded in full, cap or not: a lock ...
    let challenge = app.two_factor_token(&user.email, PASSWORD).await;
    for _ in 0..app.config.lockout_threshold {
        let refused = app
            .post(
                "/v1/auth/2fa/verify",
                json!({"code": wrong_code(&enrolled.secret, app.now())}),
                Some(&challenge),
            )
            .await;
        refused.assert_problem(401, "invalid_code");
    }
    // ... a password change ...
    let changed = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"}),
            Some(&access),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    let events = all_events(&app, &access).await;
    assert_eq!(of_type(&events, "second_factor_locked").len(), 1);
    assert_eq!(of_type(&events, "password_changed").len(), 1);
    assert_eq!(
        of_type(&events, "second_factor_failed").len() as i64,
        app.config.lockout_threshold,
        "a type's cap is its own"
    );

    // ... and once the hour is over, failures are recorded again.
    app.clock.advance(3601);
    let wrong = app.login(&user.email, "still not the password").await;
    wrong.assert_problem(401, "invalid_credentials");
    let refreshed = app
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let access = refreshed.body["accessToken"].as_str().unwrap().to_owned();
    let events = all_events(&app, &access).await;
    assert_eq!(of_type(&events, "login_failed").len(), failed.len() + 1);
    assert_eq!(events[0]["type"], "login_failed", "the newest event");
    assert!(events[0]["details"].get("suppressed").is_none());
}

/// An account with 2FA on and a fresh access token (so it may trust devices).
async fn enrolled_with_fresh_token(app: &TestApp) -> (TestUser, String) {
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let verified = app.login_with_code(&enrolled).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    (user, access)
}

#[tokio::test]
async fn removing_devices_that_are_not_there_records_nothing() {
    let app = TestApp::spawn_with(|config| config.account_write_rate_per_minute = 0).await;
    let (_, access) = enrolled_with_fresh_token(&app).await;
    let before = all_events(&app, &access).await.len();

    for _ in 0..50 {
        let none = app
            .delete("/v1/auth/2fa/trusted-devices", Some(&access))
            .await;
        assert_eq!(none.status, 200, "{}", none.text);
        assert_eq!(none.body, json!({"removed": 0}));
        let unknown = app
            .delete(
                &format!("/v1/auth/2fa/trusted-devices/{}", uuid::Uuid::new_v4()),
                Some(&access),
            )
            .await;
        unknown.assert_problem(404, "not_found");
    }
    assert_eq!(
        all_events(&app, &access).await.len(),
        before,
        "nothing removed, nothing recorded"
    );

    // A removal that removes something is recorded, each kind once.
    for fingerprint in ["fp-1", "fp-2"] {
        let trusted = app
            .post(
                "/v1/auth/2fa/trusted-devices",
                json!({"deviceName": "Laptop", "deviceType": "desktop", "deviceFingerprint": fingerprint}),
                Some(&access),
            )
            .await;
        assert_eq!(trusted.status, 201, "{}", trusted.text);
    }
    let first = app.get("/v1/auth/2fa/trusted-devices", Some(&access)).await;
    let id = first.body[0]["id"].as_str().unwrap().to_owned();
    let one = app
        .delete(&format!("/v1/auth/2fa/trusted-devices/{id}"), Some(&access))
        .await;
    assert_eq!(one.status, 204, "{}", one.text);
    let rest = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&access))
        .await;
    assert_eq!(rest.body, json!({"removed": 1}));
    let events = all_events(&app, &access).await;
    assert_eq!(of_type(&events, "device_removed").len(), 1);
    let removed = of_type(&events, "devices_removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(
        removed[0]["details"],
        json!({"count": 1, "reason": "user_request"})
    );
    assert_eq!(events.len(), before + 4, "two trusted, two removals");
}

/// A server whose write limit allows 3 writes at once, then one every 10 seconds.
async fn small_write_budget() -> TestApp {
    TestApp::spawn_with(|config| {
        config.account_write_rate_per_minute = 6;
        config.account_write_burst = 3;
    })
    .await
}

/// Spends the 3 writes of `access_token`'s session (see [`small_write_budget`]).
async fn spend_write_budget(app: &TestApp, access_token: &str) {
    for _ in 0..3 {
        let removed = app
            .delete("/v1/auth/2fa/trusted-devices", Some(access_token))
            .await;
        assert_eq!(removed.status, 200, "{}", removed.text);
    }
}

#[tokio::test]
async fn authenticated_writes_are_limited_per_session() {
    let app = small_write_budget().await;
    let ann = app.signed_in_user().await;
    let bob = app.signed_in_user().await;

    spend_write_budget(&app, &ann.access_token).await;
    let limited = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&ann.access_token))
        .await;
    limited.assert_problem(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("10"));
    // Any write of the account counts, on either surface ...
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&ann.access_token))
        .await;
    setup.assert_problem(429, "rate_limited");
    let compat = app
        .post(
            "/authentication/enable-2fa",
            json!({"email": ann.email, "password": PASSWORD, "enable": true}),
            Some(&ann.access_token),
        )
        .await;
    compat.assert_problem(429, "rate_limited");
    assert!(compat.header("retry-after").is_some());
    // ... reads do not, and another account has its own budget.
    let me = app.get("/v1/auth/me", Some(&ann.access_token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let status = app
        .get("/v1/auth/2fa/status", Some(&ann.access_token))
        .await;
    assert_eq!(status.status, 200, "{}", status.text);
    let bobs = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&bob.access_token))
        .await;
    assert_eq!(bobs.status, 200, "{}", bobs.text);

    // The bucket refills with time.
    app.clock.advance(10);
    let later = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&ann.access_token))
        .await;
    assert_eq!(later.status, 200, "{}", later.text);
    let again = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&ann.access_token))
        .await;
    again.assert_problem(429, "rate_limited");

    // Another session of the same account has its own budget: someone spending a stolen
    // token's writes cannot stop the owner from changing the password (which ends the
    // stolen session) and signing out.
    let owner = app.login(&ann.email, PASSWORD).await;
    assert_eq!(owner.status, 200, "{}", owner.text);
    let owner_access = owner.body["accessToken"].as_str().unwrap();
    let new_password = "a brand new passphrase for ann";
    let changed = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": new_password}),
            Some(owner_access),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    app.get("/v1/auth/me", Some(&ann.access_token))
        .await
        .assert_problem(401, "unauthorized");
    let signed_out = app
        .post("/v1/auth/logout", json!({}), Some(owner_access))
        .await;
    assert_eq!(signed_out.status, 204, "{}", signed_out.text);
}

#[tokio::test]
async fn the_session_write_limit_is_on_by_default_and_documented_on_every_write() {
    let app = TestApp::spawn().await;
    assert_eq!(app.config.account_write_rate_per_minute, 60);
    assert_eq!(app.config.account_write_burst, 30);

    let doc = app.get("/openapi.json", None).await.body;
    let mut writes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let bearer = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s.get("bearerAuth").is_some());
            if !bearer || method == "get" {
                continue;
            }
            if path == "/v1/auth/logout" {
                // Never limited, so never a 429 (see the test below).
                assert!(op["responses"]["429"].is_null(), "logout documents a 429");
                continue;
            }
            let limited = &op["responses"]["429"];
            assert!(
                limited.is_object(),
                "{method} {path} is an authenticated write but documents no 429"
            );
            assert!(
                limited["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("this session")),
                "{method} {path}: {limited}"
            );
            writes += 1;
        }
    }
    assert!(writes >= 10, "{writes} authenticated writes documented");
}

/// A session that has spent its write budget (someone scripting a stolen token, say) can
/// still be signed out: logout is never refused by the write limit.
#[tokio::test]
async fn a_session_over_its_write_limit_can_still_sign_out() {
    let app = small_write_budget().await;
    let ann = app.signed_in_user().await;
    spend_write_budget(&app, &ann.access_token).await;
    app.delete("/v1/auth/2fa/trusted-devices", Some(&ann.access_token))
        .await
        .assert_problem(429, "rate_limited");

    let signed_out = app
        .post(
            "/v1/auth/logout",
            json!({"refreshToken": ann.refresh_token}),
            Some(&ann.access_token),
        )
        .await;
    assert_eq!(signed_out.status, 204, "{}", signed_out.text);
    app.get("/v1/auth/me", Some(&ann.access_token))
        .await
        .assert_problem(401, "unauthorized");
}
