//! The admin API's credential routes: TOTP import (checked with RFC 6238's SHA-256 seed and
//! `totp-lite` codes), an operator's drift resync on the moved clock, signing-key rotation
//! (an access token signed before still works and the JWKS keeps its key), and an
//! account's passkeys; each with no key, a key without the scope and the right key.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestResponse, verify_code};

/// RFC 6238 appendix B's SHA-256 seed.
const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";

fn b32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The 8-digit SHA-256 code of the seed at `unix_seconds`, by `totp-lite`.
fn code_at(unix_seconds: i64) -> String {
    totp_lite::totp_custom::<totp_lite::Sha256>(30, 8, SEED_SHA256, unix_seconds as u64)
}

async fn call(app: &TestApp, path: &str, body: Value, key: Option<&str>) -> TestResponse {
    app.post(path, body, key).await
}

/// The account's events of `kind`, read through the admin API.
async fn events_of(app: &TestApp, user_id: &str, key: &str, kind: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/admin/v1/users/{user_id}/security-events?limit=100"),
            Some(key),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn totp_is_imported_per_entry_and_resynced_through_the_admin_api() {
    let app = TestApp::spawn().await;
    let reader = app.admin_key("reader", &["users:read"]).await;
    let writer = app.admin_key("writer", &["users:write"]).await;
    let user = app.signed_in_user().await;
    let body = json!({"entries": [
        {"email": user.email, "secret": b32(SEED_SHA256), "algorithm": "SHA256", "digits": 8},
        {"email": "nobody@example.com", "secret": b32(SEED_SHA256)},
        {"email": user.email},
    ]});

    call(&app, "/admin/v1/totp-imports", body.clone(), None)
        .await
        .assert_problem(401, "invalid_api_key");
    call(&app, "/admin/v1/totp-imports", body.clone(), Some(&reader))
        .await
        .assert_problem(403, "insufficient_scope");
    call(
        &app,
        "/admin/v1/totp-imports",
        json!({"entries": "x"}),
        Some(&writer),
    )
    .await
    .assert_problem(400, "validation_failed");

    // A dry run judges every entry and stores nothing.
    let mut dry = body.clone();
    dry["dryRun"] = json!(true);
    let report = call(&app, "/admin/v1/totp-imports", dry, Some(&writer)).await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.body["imported"], 1, "{}", report.text);
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);

    let report = call(&app, "/admin/v1/totp-imports", body, Some(&writer)).await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.body["dryRun"], false);
    assert_eq!(report.body["imported"], 1, "{}", report.text);
    assert_eq!(report.body["refused"], 2, "{}", report.text);
    let entries = report.body["entries"].as_array().unwrap();
    assert_eq!(entries[0]["entry"], 1);
    assert_eq!(entries[0]["imported"], true);
    assert_eq!(entries[0]["algorithm"], "SHA256");
    assert_eq!(entries[0]["digits"], 8);
    assert_eq!(entries[0]["enabledTwoFactor"], true);
    assert_eq!(entries[0]["userId"], user.id.as_str());
    assert_eq!(entries[1]["imported"], false);
    assert!(
        entries[1]["reason"]
            .as_str()
            .unwrap()
            .contains("no such account"),
        "{}",
        report.text
    );
    assert_eq!(entries[2]["entry"], 3);
    assert!(
        !report.text.contains(&b32(SEED_SHA256)),
        "no secret in the report"
    );

    // The account now signs in with its imported authenticator's codes.
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let signed_in = verify_code(&app, &token, &code_at(app.now())).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let imported = events_of(&app, &user.id, &reader, "totp_imported").await;
    assert_eq!(imported.len(), 1, "{imported:?}");
    assert_eq!(imported[0]["details"]["apiKeyName"], "writer");
    // Recorded with where the admin API call came from, not as the command line.
    assert_eq!(imported[0]["ipAddress"], "127.0.0.1");

    // Resync: the authenticator's clock runs 8 steps ahead. The user reads a code, and
    // the next one 30 seconds later.
    let path = format!("/admin/v1/users/{}/totp-resync", user.id);
    let ahead = app.now() + 8 * 30;
    app.clock.advance(30);
    let codes = json!({"code1": code_at(ahead), "code2": code_at(ahead + 30)});
    call(&app, &path, codes.clone(), Some(&reader))
        .await
        .assert_problem(403, "insufficient_scope");
    let wrong = json!({"code1": code_at(ahead), "code2": code_at(ahead + 90)});
    let refused = call(&app, &path, wrong, Some(&writer)).await;
    refused.assert_problem(400, "validation_failed");
    assert!(refused.text.contains("code2"), "{}", refused.text);
    let resynced = call(&app, &path, codes.clone(), Some(&writer)).await;
    assert_eq!(resynced.status, 200, "{}", resynced.text);
    assert_eq!(resynced.body["previousDrift"], 0);
    assert_eq!(resynced.body["drift"], 8);
    // Neither code works again, and the drift is an event naming the key.
    call(&app, &path, codes, Some(&writer))
        .await
        .assert_problem(400, "validation_failed");
    let drift = events_of(&app, &user.id, &reader, "totp_drift_changed").await;
    assert!(
        drift
            .iter()
            .any(|e| e["details"]["apiKeyName"] == "writer" && e["ipAddress"] == "127.0.0.1"),
        "{drift:?}"
    );
    // A sign-in now takes the drifted authenticator's code of the moment.
    app.clock.advance(60);
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let drifted = verify_code(&app, &token, &code_at(app.now() + 8 * 30)).await;
    assert_eq!(drifted.status, 200, "{}", drifted.text);

    // An account without an authenticator has nothing to resync.
    let other = app.signed_in_user().await;
    call(
        &app,
        &format!("/admin/v1/users/{}/totp-resync", other.id),
        json!({"code1": "123456", "code2": "654321"}),
        Some(&writer),
    )
    .await
    .assert_problem(409, "no_authenticator");
}

#[tokio::test]
async fn the_signing_key_rotates_over_the_admin_api_without_signing_anyone_out() {
    let app = TestApp::spawn().await;
    let writer = app.admin_key("writer", &["users:write"]).await;
    let root = app.admin_key("root", &["admin"]).await;
    let user = app.signed_in_user().await;
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids(&app.get("/.well-known/jwks.json", None).await.body);
    assert_eq!(before.len(), 1, "{before:?}");

    call(&app, "/admin/v1/signing-keys/rotate", json!({}), None)
        .await
        .assert_problem(401, "invalid_api_key");
    // Every account's sessions depend on the key: users:write is not enough.
    call(
        &app,
        "/admin/v1/signing-keys/rotate",
        json!({}),
        Some(&writer),
    )
    .await
    .assert_problem(403, "insufficient_scope");

    let prepared = call(
        &app,
        "/admin/v1/signing-keys/rotate",
        json!({"prepare": true}),
        Some(&root),
    )
    .await;
    assert_eq!(prepared.status, 200, "{}", prepared.text);
    assert_eq!(prepared.body["change"], "prepared");
    let next = prepared.body["kid"].as_str().unwrap().to_owned();
    let published = kids(&app.get("/.well-known/jwks.json", None).await.body);
    assert!(published.contains(&next) && published.contains(&before[0]));

    let rotated = call(
        &app,
        "/admin/v1/signing-keys/rotate",
        json!({}),
        Some(&root),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.body["change"], "rotated");
    assert_eq!(rotated.body["kid"], next.as_str(), "the prepared key");
    assert_eq!(rotated.body["wasPrepared"], true);
    assert_eq!(rotated.body["retired"], json!([before[0]]));

    // The token signed before still works; a new sign-in is signed with the new key.
    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let fresh = app.login(&user.email, PASSWORD).await;
    let header = jsonwebtoken::decode_header(fresh.body["accessToken"].as_str().unwrap()).unwrap();
    assert_eq!(header.kid.as_deref(), Some(next.as_str()));
    // Both changes are in the audit log, naming the key.
    let log = app.get("/admin/v1/audit", Some(&root)).await;
    let actions: Vec<(&str, &str)> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["apiKeyName"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("signing_key_rotated", "root"),
            ("signing_key_prepared", "root")
        ],
        "{}",
        log.text
    );
}

#[tokio::test]
async fn an_accounts_passkeys_are_listed_for_a_reader_and_the_read_is_recorded() {
    let app = TestApp::spawn().await;
    let reader = app.admin_key("reader", &["users:read"]).await;
    let writer = app.admin_key("writer", &["users:write"]).await;
    let user = app.signed_in_user().await;
    let path = format!("/admin/v1/users/{}/passkeys", user.id);
    app.get(&path, None)
        .await
        .assert_problem(401, "invalid_api_key");
    app.get(&path, Some(&writer))
        .await
        .assert_problem(403, "insufficient_scope");
    let listed = app.get(&path, Some(&reader)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body, json!([]));
    let viewed = events_of(&app, &user.id, &reader, "account_viewed").await;
    assert!(
        viewed.iter().any(|e| e["details"]["viewed"] == "passkeys"),
        "{viewed:?}"
    );
    app.get(
        &format!("/admin/v1/users/{}/passkeys", uuid::Uuid::new_v4()),
        Some(&reader),
    )
    .await
    .assert_problem(404, "not_found");
}
