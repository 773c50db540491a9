//! Trusted devices: adding, listing and removing them over HTTP, isolation between users,
//! and a login with a `deviceToken` skipping the second factor only when it should.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{
    Enrolled, TestApp, TestResponse, totp_code, unix_time, verify_code, wrong_code,
};

const THIRTY_DAYS: i64 = 30 * 24 * 3600;

/// The claims of an access token (its payload, not verified: the server verified it).
fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("payload is base64url");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

fn amr(access_token: &str) -> Vec<String> {
    claims(access_token)["amr"]
        .as_array()
        .expect("amr is an array")
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn key_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

const DEVICE_FIELDS: &[&str] = &[
    "id",
    "deviceName",
    "deviceType",
    "browserInfo",
    "ipAddress",
    "location",
    "createdAt",
    "lastUsedAt",
    "expiresAt",
];

fn device_input(fingerprint: &str) -> Value {
    json!({
        "deviceName": "Work laptop",
        "deviceType": "desktop",
        "deviceFingerprint": fingerprint,
        "browserInfo": "Firefox 128 on Linux",
        "ipAddress": "203.0.113.7",
        "location": "Lisbon, PT",
    })
}

/// A fresh access token (password and TOTP just now), moving the clock one step first
/// so the code is never a replay.
async fn fresh_access_token(app: &TestApp, enrolled: &Enrolled) -> String {
    app.clock.advance(30);
    let verified = app.login_with_code(enrolled).await;
    assert_eq!(verified.status, 200, "verify: {}", verified.text);
    verified.body["accessToken"].as_str().unwrap().to_owned()
}

/// An enrolled user and a fresh access token of theirs.
async fn enrolled_user(app: &TestApp) -> (Enrolled, String) {
    let enrolled = app.enrolled_user().await;
    let access = fresh_access_token(app, &enrolled).await;
    (enrolled, access)
}

/// Trusts a device for the holder of `access` (which must be fresh); returns the
/// creation answer.
async fn trust(app: &TestApp, access: &str, fingerprint: &str) -> TestResponse {
    let created = app
        .post(
            "/v1/auth/2fa/trusted-devices",
            device_input(fingerprint),
            Some(access),
        )
        .await;
    assert_eq!(created.status, 201, "trust device: {}", created.text);
    created
}

async fn login_with_device(
    app: &TestApp,
    enrolled: &Enrolled,
    device_token: &str,
    fingerprint: &str,
) -> TestResponse {
    app.post(
        "/v1/auth/login",
        json!({
            "email": enrolled.user.email,
            "password": enrolled.user.password,
            "deviceToken": device_token,
            "deviceFingerprint": fingerprint,
        }),
        None,
    )
    .await
}

/// The answer of a login that needs the second factor: exactly the shape a login
/// without any device token gets, with nothing saying why the device did not count.
#[track_caller]
fn assert_second_factor_required(login: &TestResponse) {
    assert_eq!(login.status, 200, "login: {}", login.text);
    assert_eq!(login.body["requires2FA"], true, "login: {}", login.text);
    assert_eq!(
        keys(&login.body),
        key_set(&[
            "requires2FA",
            "twoFactorToken",
            "twoFactorTokenExpiry",
            "methods"
        ]),
        "same shape as a plain 2FA login: {}",
        login.text
    );
    assert_eq!(login.body["methods"], json!(["totp", "backup_code"]));
}

#[track_caller]
fn assert_signed_in_by_device(login: &TestResponse) {
    assert_eq!(login.status, 200, "login: {}", login.text);
    assert_eq!(login.body["requires2FA"], false, "login: {}", login.text);
    let access = login.body["accessToken"].as_str().expect("an access token");
    let methods = amr(access);
    assert!(
        methods.iter().any(|m| m == "device"),
        "amr says device: {methods:?}"
    );
    assert!(
        !methods.iter().any(|m| m == "otp"),
        "no otp was presented: {methods:?}"
    );
    assert!(login.body["refreshToken"].is_string());
    assert!(login.body.get("twoFactorToken").is_none(), "{}", login.text);
}

async fn list(app: &TestApp, access: &str) -> Vec<Value> {
    let listed = app.get("/v1/auth/2fa/trusted-devices", Some(access)).await;
    assert_eq!(listed.status, 200, "list: {}", listed.text);
    listed.body.as_array().expect("a JSON array").clone()
}

#[tokio::test]
async fn device_crud_round_trip_with_exact_fields() {
    let app = TestApp::spawn().await;
    let (_enrolled, access) = enrolled_user(&app).await;
    let created_at = app.now();

    let created = trust(&app, &access, "fp-laptop").await;
    let mut expected = key_set(DEVICE_FIELDS);
    expected.insert("deviceToken".into());
    assert_eq!(
        keys(&created.body),
        expected,
        "creation fields: {}",
        created.text
    );
    let device = &created.body;
    assert_eq!(device["deviceName"], "Work laptop");
    assert_eq!(device["deviceType"], "desktop");
    assert_eq!(device["browserInfo"], "Firefox 128 on Linux");
    assert_eq!(
        device["ipAddress"], "127.0.0.1",
        "the address the request came from, not the one the body claims"
    );
    assert_eq!(device["location"], "Lisbon, PT");
    assert_eq!(device["lastUsedAt"], Value::Null);
    assert_eq!(unix_time(&device["createdAt"]), created_at);
    assert_eq!(
        unix_time(&device["expiresAt"]),
        created_at + THIRTY_DAYS,
        "devices live 30 days"
    );
    let first_id = device["id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&first_id).expect("id is a UUID");
    let first_token = device["deviceToken"].as_str().unwrap().to_owned();
    assert!(
        first_token.len() >= 32,
        "a long random token: {first_token}"
    );

    // Only the required fields: the optional ones are null, the IP is the caller's.
    app.clock.advance(5);
    let minimal = app
        .post(
            "/v1/auth/2fa/trusted-devices",
            json!({"deviceName": "Phone", "deviceType": "mobile", "deviceFingerprint": "fp-phone"}),
            Some(&access),
        )
        .await;
    assert_eq!(minimal.status, 201, "{}", minimal.text);
    assert_eq!(
        minimal.body["ipAddress"], "127.0.0.1",
        "the caller's address"
    );
    assert_eq!(minimal.body["browserInfo"], Value::Null);
    assert_eq!(minimal.body["location"], Value::Null);
    let second_id = minimal.body["id"].as_str().unwrap().to_owned();
    let second_token = minimal.body["deviceToken"].as_str().unwrap().to_owned();
    assert_ne!(first_token, second_token);

    let listed = app.get("/v1/auth/2fa/trusted-devices", Some(&access)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let devices = listed.body.as_array().unwrap();
    assert_eq!(devices.len(), 2, "{}", listed.text);
    for device in devices {
        assert_eq!(
            keys(device),
            key_set(DEVICE_FIELDS),
            "list fields (no deviceToken): {device}"
        );
    }
    assert!(
        !listed.text.contains(&first_token) && !listed.text.contains(&second_token),
        "tokens are shown once"
    );
    let ids: BTreeSet<&str> = devices.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([first_id.as_str(), second_id.as_str()]));
    let listed_first = devices
        .iter()
        .find(|d| d["id"] == first_id.as_str())
        .unwrap();
    let mut created_view = created.body.clone();
    created_view.as_object_mut().unwrap().remove("deviceToken");
    assert_eq!(
        listed_first, &created_view,
        "the list shows what creation answered"
    );

    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    assert_eq!(status.body["trustedDevices"], 2, "{}", status.text);

    let removed = app
        .delete(
            &format!("/v1/auth/2fa/trusted-devices/{first_id}"),
            Some(&access),
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert!(removed.text.is_empty(), "204 has no body: {}", removed.text);
    let devices = list(&app, &access).await;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["id"], second_id.as_str());

    let again = app
        .delete(
            &format!("/v1/auth/2fa/trusted-devices/{first_id}"),
            Some(&access),
        )
        .await;
    again.assert_problem(404, "not_found");
    let unknown = app
        .delete(
            &format!("/v1/auth/2fa/trusted-devices/{}", uuid::Uuid::new_v4()),
            Some(&access),
        )
        .await;
    unknown.assert_problem(404, "not_found");
    let not_a_uuid = app
        .delete("/v1/auth/2fa/trusted-devices/not-a-uuid", Some(&access))
        .await;
    not_a_uuid.assert_problem(404, "not_found");

    let all = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&access))
        .await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.body, json!({"removed": 1}));
    assert!(list(&app, &access).await.is_empty());
    let none_left = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&access))
        .await;
    assert_eq!(none_left.body, json!({"removed": 0}), "{}", none_left.text);
    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    assert_eq!(status.body["trustedDevices"], 0, "{}", status.text);
}

#[tokio::test]
async fn device_routes_need_an_access_token() {
    let app = TestApp::spawn().await;
    let (enrolled, _access) = enrolled_user(&app).await;
    app.get("/v1/auth/2fa/trusted-devices", None)
        .await
        .assert_problem(401, "unauthorized");
    app.post("/v1/auth/2fa/trusted-devices", device_input("fp"), None)
        .await
        .assert_problem(401, "unauthorized");
    app.delete("/v1/auth/2fa/trusted-devices", None)
        .await
        .assert_problem(401, "unauthorized");
    app.delete(
        &format!("/v1/auth/2fa/trusted-devices/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await
    .assert_problem(401, "unauthorized");
    // A twoFactorToken is not an access token either.
    let challenge = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    app.get("/v1/auth/2fa/trusted-devices", Some(&challenge))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn devices_are_isolated_between_users() {
    let app = TestApp::spawn().await;
    let (alice, alice_access) = enrolled_user(&app).await;
    let (bob, bob_access) = enrolled_user(&app).await;
    let created = trust(&app, &alice_access, "alice-fp").await;
    let alice_device = created.body["id"].as_str().unwrap().to_owned();
    let alice_token = created.body["deviceToken"].as_str().unwrap().to_owned();

    // Bob cannot see it.
    assert!(
        list(&app, &bob_access).await.is_empty(),
        "Bob sees none of Alice's devices"
    );
    let status = app.get("/v1/auth/2fa/status", Some(&bob_access)).await;
    assert_eq!(status.body["trustedDevices"], 0);

    // Bob cannot delete it, one by one or all at once.
    let foreign = app
        .delete(
            &format!("/v1/auth/2fa/trusted-devices/{alice_device}"),
            Some(&bob_access),
        )
        .await;
    foreign.assert_problem(404, "not_found");
    let bob_all = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&bob_access))
        .await;
    assert_eq!(bob_all.body, json!({"removed": 0}), "{}", bob_all.text);
    let alice_devices = list(&app, &alice_access).await;
    assert_eq!(
        alice_devices.len(),
        1,
        "Alice's device survived Bob's deletes"
    );
    assert_eq!(alice_devices[0]["id"], alice_device.as_str());

    // Bob cannot use it to skip his own second factor.
    app.clock.advance(60);
    assert_second_factor_required(&login_with_device(&app, &bob, &alice_token, "alice-fp").await);
    assert_eq!(
        list(&app, &alice_access).await[0]["lastUsedAt"],
        Value::Null,
        "not touched by Bob's login"
    );

    // Alice still can.
    assert_signed_in_by_device(&login_with_device(&app, &alice, &alice_token, "alice-fp").await);
}

#[tokio::test]
async fn device_input_validation_failures_are_400() {
    let app = TestApp::spawn().await;
    let (enrolled, access) = enrolled_user(&app).await;
    let without = |field: &str| {
        let mut body = device_input("fp");
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let with = |field: &str, value: Value| {
        let mut body = device_input("fp");
        body[field] = value;
        body
    };
    let cases = [
        (without("deviceName"), "deviceName"),
        (without("deviceType"), "deviceType"),
        (without("deviceFingerprint"), "deviceFingerprint"),
        (with("deviceName", json!("   ")), "deviceName"),
        (with("deviceName", json!(null)), "deviceName"),
        (with("deviceType", json!(42)), "deviceType"),
        (with("deviceName", json!("x".repeat(201))), "deviceName"),
        (
            with("deviceFingerprint", json!("f".repeat(513))),
            "deviceFingerprint",
        ),
        (with("ipAddress", json!("1".repeat(65))), "ipAddress"),
        (with("ipAddress", json!(7)), "ipAddress"),
        (with("location", json!(["Lisbon"])), "location"),
        (with("deviceToken", json!("made-up")), "deviceToken"),
    ];
    for (body, field) in cases {
        let answer = app
            .post("/v1/auth/2fa/trusted-devices", body.clone(), Some(&access))
            .await;
        answer.assert_problem(400, "validation_failed");
        assert!(
            answer.body["errors"][field].is_array(),
            "error names {field} for {body}: {}",
            answer.text
        );
    }
    let not_json = app
        .send(
            app.client
                .post(app.url("/v1/auth/2fa/trusted-devices"))
                .bearer_auth(&access)
                .header("content-type", "application/json")
                .body("{\"deviceName\":"),
        )
        .await;
    not_json.assert_problem(400, "malformed_json");
    assert!(
        list(&app, &access).await.is_empty(),
        "no invalid request made a device"
    );

    // The same input rules hold for `trustDevice` on /2fa/verify, named by its path, and
    // a refused request leaves the twoFactorToken usable.
    let challenge = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    app.clock.advance(30);
    let code = totp_code(&enrolled.secret, app.now());
    let bad = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": code, "trustDevice": {"deviceType": "desktop", "deviceFingerprint": "fp"}}),
            Some(&challenge),
        )
        .await;
    bad.assert_problem(400, "validation_failed");
    assert!(
        bad.body["errors"]["trustDevice.deviceName"].is_array(),
        "{}",
        bad.text
    );
    let not_object = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": code, "trustDevice": true}),
            Some(&challenge),
        )
        .await;
    not_object.assert_problem(400, "validation_failed");
    let good = verify_code(&app, &challenge, &code).await;
    assert_eq!(good.status, 200, "{}", good.text);
    assert!(
        good.body.get("deviceToken").is_none(),
        "nothing trusted: {}",
        good.text
    );
    assert!(list(&app, &access).await.is_empty());
}

#[tokio::test]
async fn login_with_valid_device_token_skips_second_factor_and_updates_last_used() {
    let app = TestApp::spawn().await;
    let (enrolled, access) = enrolled_user(&app).await;
    let created = trust(&app, &access, "fp-1").await;
    let token = created.body["deviceToken"].as_str().unwrap().to_owned();

    app.clock.advance(3600);
    let used_at = app.now();
    let login = login_with_device(&app, &enrolled, &token, "fp-1").await;
    assert_signed_in_by_device(&login);
    let device_access = login.body["accessToken"].as_str().unwrap();
    assert!(
        amr(device_access).iter().any(|m| m == "pwd"),
        "the password was checked"
    );
    assert_eq!(claims(device_access)["sub"], enrolled.user.id.as_str());
    let me = app.get("/v1/auth/me", Some(device_access)).await;
    assert_eq!(me.status, 200, "the token works: {}", me.text);
    assert_eq!(me.body["email"], enrolled.user.email.as_str());

    // (The first access token expired meanwhile; the device login's own one lists.)
    let devices = list(&app, device_access).await;
    assert_eq!(
        unix_time(&devices[0]["lastUsedAt"]),
        used_at,
        "lastUsedAt is the login time"
    );

    // It keeps working (until it expires or is revoked), moving lastUsedAt each time.
    app.clock.advance(86_400);
    let again = login_with_device(&app, &enrolled, &token, "fp-1").await;
    assert_signed_in_by_device(&again);
    let devices = list(&app, again.body["accessToken"].as_str().unwrap()).await;
    assert_eq!(unix_time(&devices[0]["lastUsedAt"]), app.now());
    assert_eq!(
        unix_time(&devices[0]["expiresAt"]),
        unix_time(&created.body["expiresAt"]),
        "using a device does not extend it"
    );

    // The wrong password is still the wrong password.
    let wrong = app
        .post(
            "/v1/auth/login",
            json!({"email": enrolled.user.email, "password": "not the password at all",
                   "deviceToken": token, "deviceFingerprint": "fp-1"}),
            None,
        )
        .await;
    wrong.assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn expired_device_token_does_not_skip_second_factor() {
    let app = TestApp::spawn().await;
    let (enrolled, access) = enrolled_user(&app).await;
    let token = trust(&app, &access, "fp").await.body["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();

    app.clock.advance(THIRTY_DAYS - 60);
    assert_signed_in_by_device(&login_with_device(&app, &enrolled, &token, "fp").await);
    app.clock.advance(60);
    assert_second_factor_required(&login_with_device(&app, &enrolled, &token, "fp").await);

    let access = fresh_access_token(&app, &enrolled).await;
    assert!(
        list(&app, &access).await.is_empty(),
        "an expired device is not listed"
    );
}

#[tokio::test]
async fn trusted_device_lifetime_is_configurable() {
    let app = TestApp::spawn_with(|config| config.trusted_device_ttl_secs = 3600).await;
    let (enrolled, access) = enrolled_user(&app).await;
    let created = trust(&app, &access, "fp").await;
    assert_eq!(
        unix_time(&created.body["expiresAt"]) - unix_time(&created.body["createdAt"]),
        3600
    );
    let token = created.body["deviceToken"].as_str().unwrap().to_owned();

    app.clock.advance(3599);
    assert_signed_in_by_device(&login_with_device(&app, &enrolled, &token, "fp").await);
    app.clock.advance(1);
    assert_second_factor_required(&login_with_device(&app, &enrolled, &token, "fp").await);
}

#[tokio::test]
async fn revoked_device_token_does_not_skip_second_factor() {
    let app = TestApp::spawn().await;
    let (enrolled, access) = enrolled_user(&app).await;
    let created = trust(&app, &access, "fp").await;
    let token = created.body["deviceToken"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap();
    assert_signed_in_by_device(&login_with_device(&app, &enrolled, &token, "fp").await);

    let removed = app
        .delete(&format!("/v1/auth/2fa/trusted-devices/{id}"), Some(&access))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_second_factor_required(&login_with_device(&app, &enrolled, &token, "fp").await);
}

#[tokio::test]
async fn another_users_device_token_does_not_skip_second_factor() {
    let app = TestApp::spawn().await;
    let (alice, alice_access) = enrolled_user(&app).await;
    let (bob, _bob_access) = enrolled_user(&app).await;
    let token = trust(&app, &alice_access, "shared-fp").await.body["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_second_factor_required(&login_with_device(&app, &bob, &token, "shared-fp").await);
    assert_eq!(
        list(&app, &alice_access).await[0]["lastUsedAt"],
        Value::Null
    );
    assert_signed_in_by_device(&login_with_device(&app, &alice, &token, "shared-fp").await);
}

#[tokio::test]
async fn mismatched_fingerprint_does_not_skip_second_factor() {
    let app = TestApp::spawn().await;
    let (enrolled, access) = enrolled_user(&app).await;
    let token = trust(&app, &access, "fp-original").await.body["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_second_factor_required(&login_with_device(&app, &enrolled, &token, "fp-other").await);
    assert_second_factor_required(&login_with_device(&app, &enrolled, &token, "FP-ORIGINAL").await);
    // The token without any fingerprint does not count either.
    let no_fingerprint = app
        .post(
            "/v1/auth/login",
            json!({"email": enrolled.user.email, "password": enrolled.user.password, "deviceToken": token}),
            None,
        )
        .await;
    assert_second_factor_required(&no_fingerprint);
    assert_eq!(
        list(&app, &access).await[0]["lastUsedAt"],
        Value::Null,
        "a mismatch is not a use"
    );
    assert_signed_in_by_device(&login_with_device(&app, &enrolled, &token, "fp-original").await);
}

#[tokio::test]
async fn garbage_device_token_does_not_skip_second_factor() {
    let app = TestApp::spawn().await;
    let (enrolled, access) = enrolled_user(&app).await;
    let token = trust(&app, &access, "fp").await.body["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let garbage = [
        "garbage".to_owned(),
        "x".repeat(512),
        token[..token.len() - 1].to_owned(),
        format!("{token}A"),
    ];
    for bad in &garbage {
        assert_second_factor_required(&login_with_device(&app, &enrolled, bad, "fp").await);
    }
    let too_long = login_with_device(&app, &enrolled, &"x".repeat(513), "fp").await;
    too_long.assert_problem(400, "validation_failed");
}

#[tokio::test]
async fn trusting_during_verify_returns_a_device_token_that_works_at_next_login() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;

    // A wrong code trusts nothing.
    let challenge = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    let current = totp_code(&enrolled.secret, app.now());
    let wrong = wrong_code(&enrolled.secret, app.now());
    let refused = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": wrong, "trustDevice": device_input("fp-verify")}),
            Some(&challenge),
        )
        .await;
    refused.assert_problem(401, "invalid_code");
    assert!(refused.body.get("deviceToken").is_none());

    let verified = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": current, "trustDevice": device_input("fp-verify")}),
            Some(&challenge),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    assert!(
        amr(&access).iter().any(|m| m == "otp"),
        "the verify login itself used the code"
    );
    let device_token = verified.body["deviceToken"]
        .as_str()
        .expect("deviceToken when trusted")
        .to_owned();

    let devices = list(&app, &access).await;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["deviceName"], "Work laptop");
    assert_eq!(devices[0]["ipAddress"], "127.0.0.1");
    assert!(
        !serde_json::to_string(&devices)
            .unwrap()
            .contains(&device_token)
    );

    app.clock.advance(600);
    let next = login_with_device(&app, &enrolled, &device_token, "fp-verify").await;
    assert_signed_in_by_device(&next);
    assert_eq!(
        unix_time(&list(&app, &access).await[0]["lastUsedAt"]),
        app.now()
    );
}

#[tokio::test]
async fn deleting_all_devices_revokes_every_device_token() {
    let app = TestApp::spawn().await;
    let (enrolled, access) = enrolled_user(&app).await;
    let first = trust(&app, &access, "fp-1").await.body["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = trust(&app, &access, "fp-2").await.body["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_signed_in_by_device(&login_with_device(&app, &enrolled, &first, "fp-1").await);
    assert_signed_in_by_device(&login_with_device(&app, &enrolled, &second, "fp-2").await);

    let removed = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&access))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body, json!({"removed": 2}));

    assert_second_factor_required(&login_with_device(&app, &enrolled, &first, "fp-1").await);
    assert_second_factor_required(&login_with_device(&app, &enrolled, &second, "fp-2").await);
    assert!(list(&app, &access).await.is_empty());
}

/// The body the SalesOS document gives as its example: every field `"string"`.
fn salesos_example() -> Value {
    json!({
        "deviceName": "string",
        "deviceType": "string",
        "browserInfo": "string",
        "ipAddress": "string",
        "location": "string",
        "deviceFingerprint": "string",
    })
}

#[tokio::test]
async fn a_device_is_recorded_with_the_observed_address_whatever_the_body_says() {
    // Behind a trusted proxy, so the observed address can differ from the TCP peer.
    let app = TestApp::spawn_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let (enrolled, access) = enrolled_user(&app).await;
    let add_from = |client: &'static str, body: Value| {
        let request = app
            .client
            .post(app.url("/v1/auth/2fa/trusted-devices"))
            .bearer_auth(&access)
            .header("x-forwarded-for", client)
            .json(&body);
        app.send(request)
    };

    // The seed document's own example is taken as it is: descriptions kept, the claimed
    // address ignored.
    let example = add_from("203.0.113.50", salesos_example()).await;
    assert_eq!(example.status, 201, "{}", example.text);
    assert_eq!(
        example.body["ipAddress"], "203.0.113.50",
        "{}",
        example.text
    );
    assert_eq!(example.body["browserInfo"], "string");
    assert_eq!(example.body["location"], "string");
    assert!(example.body["deviceToken"].is_string());

    // A well-formed address in the body is a claim too, and is not believed.
    let mut spoofed = device_input("fp-spoofed");
    spoofed["ipAddress"] = json!("198.51.100.9");
    let claimed = add_from("203.0.113.51", spoofed).await;
    assert_eq!(claimed.status, 201, "{}", claimed.text);
    assert_eq!(
        claimed.body["ipAddress"], "203.0.113.51",
        "{}",
        claimed.text
    );
    let listed: BTreeSet<String> = list(&app, &access)
        .await
        .iter()
        .map(|d| d["ipAddress"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from(["203.0.113.50".to_owned(), "203.0.113.51".to_owned()])
    );

    // Descriptive text still has a length limit, named per field.
    let mut too_long = salesos_example();
    too_long["ipAddress"] = json!("x".repeat(65));
    let refused = add_from("203.0.113.52", too_long).await;
    refused.assert_problem(400, "validation_failed");
    assert!(
        refused.body["errors"]["ipAddress"].is_array(),
        "{}",
        refused.text
    );

    // The same on the second step of login, through `trustDevice`.
    let challenge = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    app.clock.advance(30);
    let code = totp_code(&enrolled.secret, app.now());
    let verify_from = |body: Value| {
        let request = app
            .client
            .post(app.url("/v1/auth/2fa/verify"))
            .bearer_auth(&challenge)
            .header("x-forwarded-for", "203.0.113.53")
            .json(&body);
        app.send(request)
    };
    let mut too_long = salesos_example();
    too_long["ipAddress"] = json!("x".repeat(65));
    let refused = verify_from(json!({"code": code, "trustDevice": too_long})).await;
    refused.assert_problem(400, "validation_failed");
    assert!(
        refused.body["errors"]["trustDevice.ipAddress"].is_array(),
        "{}",
        refused.text
    );
    let verified = verify_from(json!({"code": code, "trustDevice": salesos_example()})).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(
        verified.body["trustedDevice"]["ipAddress"], "203.0.113.53",
        "{}",
        verified.text
    );
    assert!(verified.body["deviceToken"].is_string());
}
