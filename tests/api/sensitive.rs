//! Sensitive changes need a fresh second factor, and changing credentials revokes what
//! was granted under the old ones: trusted devices and every other session.

use serde_json::{Value, json};

use crate::helpers::{Enrolled, TestApp, TestResponse, TestUser, totp_code, verify_code};

const NEW_PASSWORD: &str = "a brand new passphrase 42";
const ELEVEN_MINUTES: i64 = 11 * 60;
const TEN_MINUTES: i64 = 10 * 60;

/// The three changes that need a fresh second factor.
#[derive(Debug, Clone, Copy)]
enum Change {
    Disable,
    RegenerateBackupCodes,
    AddTrustedDevice,
}

fn device_input(fingerprint: &str) -> Value {
    json!({"deviceName": "Laptop", "deviceType": "desktop", "deviceFingerprint": fingerprint})
}

/// Attempts `change` with `access`, optionally with a `code` in the same request.
async fn attempt(
    app: &TestApp,
    enrolled: &Enrolled,
    change: Change,
    access: &str,
    code: Option<&str>,
) -> TestResponse {
    let (path, mut body) = match change {
        Change::Disable => (
            "/v1/auth/2fa/disable",
            json!({"password": enrolled.user.password}),
        ),
        Change::RegenerateBackupCodes => ("/v1/auth/2fa/regenerate-backup-codes", json!({})),
        Change::AddTrustedDevice => ("/v1/auth/2fa/trusted-devices", device_input("fp-sensitive")),
    };
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    app.post(path, body, Some(access)).await
}

/// What the account looks like, as far as the three changes go.
#[derive(Debug, PartialEq)]
struct Snapshot {
    enabled: Value,
    backup_codes_generated_at: Value,
    trusted_devices: Value,
}

async fn snapshot(app: &TestApp, access: &str) -> Snapshot {
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.status, 200, "status: {}", status.text);
    let codes = app.get("/v1/auth/2fa/backup-codes", Some(access)).await;
    assert_eq!(codes.status, 200, "backup codes: {}", codes.text);
    Snapshot {
        enabled: status.body["enabled"].clone(),
        backup_codes_generated_at: codes.body["generatedAt"].clone(),
        trusted_devices: status.body["trustedDevices"].clone(),
    }
}

/// Asserts the change was made (the answer and its effect, read with `reader`).
async fn assert_applied(
    app: &TestApp,
    enrolled: &Enrolled,
    change: Change,
    answer: &TestResponse,
    reader: &str,
    before: &Snapshot,
) {
    match change {
        Change::Disable => {
            assert_eq!(answer.status, 200, "disable: {}", answer.text);
            assert_eq!(answer.body, json!({"enabled": false}));
            let after = snapshot(app, reader).await;
            assert_eq!(after.enabled, false);
        }
        Change::RegenerateBackupCodes => {
            assert_eq!(answer.status, 200, "regenerate: {}", answer.text);
            let codes = answer.body["backupCodes"].as_array().expect("backupCodes");
            assert_eq!(codes.len(), 10);
            for old in &enrolled.backup_codes {
                assert!(!codes.contains(&json!(old)), "new codes, not the old ones");
            }
            let after = snapshot(app, reader).await;
            assert_ne!(
                after.backup_codes_generated_at,
                before.backup_codes_generated_at
            );
        }
        Change::AddTrustedDevice => {
            assert_eq!(answer.status, 201, "add device: {}", answer.text);
            assert!(answer.body["deviceToken"].is_string());
            let after = snapshot(app, reader).await;
            assert_eq!(
                after.trusted_devices.as_i64().unwrap(),
                before.trusted_devices.as_i64().unwrap() + 1
            );
        }
    }
}

async fn fresh_login(app: &TestApp, enrolled: &Enrolled) -> TestResponse {
    app.clock.advance(30);
    let verified = app.login_with_code(enrolled).await;
    assert_eq!(verified.status, 200, "verify: {}", verified.text);
    verified
}

fn access_of(login: &TestResponse) -> String {
    login.body["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned()
}

fn refresh_of(login: &TestResponse) -> String {
    login.body["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_owned()
}

async fn login_with_device(
    app: &TestApp,
    email: &str,
    password: &str,
    device_token: &str,
    fingerprint: &str,
) -> TestResponse {
    app.post(
        "/v1/auth/login",
        json!({"email": email, "password": password, "deviceToken": device_token, "deviceFingerprint": fingerprint}),
        None,
    )
    .await
}

/// Refused with every kind of stale token, and nothing changed.
async fn assert_refused_with_stale_tokens(change: Change) {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    // A password-only token, from before 2FA was enabled.
    let password_only = user.access_token.clone();
    let enrolled = app.enable_two_factor(&user).await;

    let second_factor_login = fresh_login(&app, &enrolled).await;
    let two_factor_access = access_of(&second_factor_login);
    let device = app
        .post(
            "/v1/auth/2fa/trusted-devices",
            device_input("fp-known"),
            Some(&two_factor_access),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    let device_token = device.body["deviceToken"].as_str().unwrap().to_owned();

    app.clock.advance(ELEVEN_MINUTES);
    // A login by trusted device: password now, but no second factor at all.
    let by_device = login_with_device(
        &app,
        &enrolled.user.email,
        &enrolled.user.password,
        &device_token,
        "fp-known",
    )
    .await;
    assert_eq!(by_device.body["requires2FA"], false, "{}", by_device.text);
    let device_access = access_of(&by_device);
    // A refresh keeps the original auth_time, so it does not make the token fresh.
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": refresh_of(&second_factor_login)}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let refreshed_access = access_of(&refreshed);

    let before = snapshot(&app, &two_factor_access).await;
    let stale = [
        ("second factor 11 minutes ago", &two_factor_access),
        ("refreshed from that login", &refreshed_access),
        ("password only, from before 2FA", &password_only),
        ("trusted-device login", &device_access),
    ];
    for (label, token) in stale {
        let answer = attempt(&app, &enrolled, change, token, None).await;
        assert_eq!(
            answer.status, 403,
            "{change:?} with {label}: {}",
            answer.text
        );
        answer.assert_problem(403, "reauthentication_required");
    }
    assert_eq!(
        snapshot(&app, &two_factor_access).await,
        before,
        "{change:?}: nothing changed"
    );
}

/// Accepted with a fresh second factor in the token: right after it, and still at
/// exactly ten minutes.
async fn assert_accepted_with_fresh_token(change: Change) {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    let access = access_of(&fresh_login(&app, &enrolled).await);
    if !matches!(change, Change::Disable) {
        let before = snapshot(&app, &access).await;
        app.clock.advance(1);
        let answer = attempt(&app, &enrolled, change, &access, None).await;
        assert_applied(&app, &enrolled, change, &answer, &access, &before).await;
        app.clock.advance(TEN_MINUTES - 2);
    } else {
        app.clock.advance(TEN_MINUTES - 1);
    }
    // Ten minutes old, to the second.
    app.clock.advance(1);
    let before = snapshot(&app, &access).await;
    let answer = attempt(&app, &enrolled, change, &access, None).await;
    assert_applied(&app, &enrolled, change, &answer, &access, &before).await;
}

/// Accepted with a stale token when a `code` comes in the same request; a wrong code is
/// refused as such and changes nothing.
async fn assert_accepted_with_code_in_request(change: Change) {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let stale = user.access_token.clone();
    let enrolled = app.enable_two_factor(&user).await;
    let before = snapshot(&app, &stale).await;

    let valid: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|d| totp_code(&enrolled.secret, app.now() + d))
        .collect();
    let wrong = (0..100)
        .map(|n| format!("{:06}", 314_159 + n))
        .find(|c| !valid.contains(c))
        .unwrap();
    let refused = attempt(&app, &enrolled, change, &stale, Some(&wrong)).await;
    refused.assert_problem(401, "invalid_code");
    assert_eq!(
        snapshot(&app, &stale).await,
        before,
        "a wrong code changes nothing"
    );

    let code = totp_code(&enrolled.secret, app.now());
    let answer = attempt(&app, &enrolled, change, &stale, Some(&code)).await;
    assert_applied(&app, &enrolled, change, &answer, &stale, &before).await;
}

/// A backup code in the request counts as a second factor too (and is spent).
async fn assert_accepted_with_backup_code_in_request(change: Change) {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let stale = user.access_token.clone();
    let enrolled = app.enable_two_factor(&user).await;
    let before = snapshot(&app, &stale).await;
    let answer = attempt(
        &app,
        &enrolled,
        change,
        &stale,
        Some(&enrolled.backup_codes[3]),
    )
    .await;
    assert_applied(&app, &enrolled, change, &answer, &stale, &before).await;
}

#[tokio::test]
async fn disable_is_refused_with_a_stale_second_factor() {
    assert_refused_with_stale_tokens(Change::Disable).await;
}

#[tokio::test]
async fn disable_is_accepted_with_a_fresh_token() {
    assert_accepted_with_fresh_token(Change::Disable).await;
}

#[tokio::test]
async fn disable_is_accepted_with_a_code_in_the_request() {
    assert_accepted_with_code_in_request(Change::Disable).await;
}

#[tokio::test]
async fn regenerate_backup_codes_is_refused_with_a_stale_second_factor() {
    assert_refused_with_stale_tokens(Change::RegenerateBackupCodes).await;
}

#[tokio::test]
async fn regenerate_backup_codes_is_accepted_with_a_fresh_token() {
    assert_accepted_with_fresh_token(Change::RegenerateBackupCodes).await;
}

#[tokio::test]
async fn regenerate_backup_codes_is_accepted_with_a_code_in_the_request() {
    assert_accepted_with_code_in_request(Change::RegenerateBackupCodes).await;
}

#[tokio::test]
async fn add_trusted_device_is_refused_with_a_stale_second_factor() {
    assert_refused_with_stale_tokens(Change::AddTrustedDevice).await;
}

#[tokio::test]
async fn add_trusted_device_is_accepted_with_a_fresh_token() {
    assert_accepted_with_fresh_token(Change::AddTrustedDevice).await;
}

#[tokio::test]
async fn add_trusted_device_is_accepted_with_a_code_in_the_request() {
    assert_accepted_with_code_in_request(Change::AddTrustedDevice).await;
}

#[tokio::test]
async fn add_trusted_device_is_accepted_with_a_backup_code_in_the_request() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let stale = user.access_token.clone();
    let before = snapshot(&app, &stale).await;
    let used = &enrolled.backup_codes[0];
    let answer = attempt(
        &app,
        &enrolled,
        Change::AddTrustedDevice,
        &stale,
        Some(used),
    )
    .await;
    assert_applied(
        &app,
        &enrolled,
        Change::AddTrustedDevice,
        &answer,
        &stale,
        &before,
    )
    .await;
    // The backup code is spent by it.
    let status = app.get("/v1/auth/2fa/status", Some(&stale)).await;
    assert_eq!(status.body["backupCodesRemaining"], 9, "{}", status.text);
    let again = attempt(
        &app,
        &enrolled,
        Change::AddTrustedDevice,
        &stale,
        Some(used),
    )
    .await;
    again.assert_problem(401, "invalid_code");
}

#[tokio::test]
async fn disable_is_accepted_with_a_backup_code_in_the_request() {
    assert_accepted_with_backup_code_in_request(Change::Disable).await;
}

// ---- Revocation ----------------------------------------------------------------------

/// The sessions and the device of one enrolled user, for the revocation tests.
struct Granted {
    enrolled: Enrolled,
    /// The password-only session from before 2FA was enabled.
    password_only: (String, String),
    /// The session that will make the change.
    changer: (String, String),
    /// Another second-factor session (another browser, say).
    other: (String, String),
    /// A session opened by the trusted device.
    by_device: (String, String),
    device_token: String,
}

const FINGERPRINT: &str = "fp-revocation";

async fn grant_everything(app: &TestApp) -> Granted {
    let user = app.signed_in_user().await;
    let password_only = (user.access_token.clone(), user.refresh_token.clone());
    let enrolled = app.enable_two_factor(&user).await;
    let changer_login = fresh_login(app, &enrolled).await;
    let changer = (access_of(&changer_login), refresh_of(&changer_login));
    let other_login = fresh_login(app, &enrolled).await;
    let other = (access_of(&other_login), refresh_of(&other_login));
    let device = app
        .post(
            "/v1/auth/2fa/trusted-devices",
            device_input(FINGERPRINT),
            Some(&changer.0),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    let device_token = device.body["deviceToken"].as_str().unwrap().to_owned();
    let device_login = login_with_device(
        app,
        &enrolled.user.email,
        &enrolled.user.password,
        &device_token,
        FINGERPRINT,
    )
    .await;
    assert_eq!(
        device_login.body["requires2FA"], false,
        "the device works before: {}",
        device_login.text
    );
    let by_device = (access_of(&device_login), refresh_of(&device_login));
    // Every session works before the change.
    for (access, _) in [&password_only, &changer, &other, &by_device] {
        let me = app.get("/v1/auth/me", Some(access)).await;
        assert_eq!(me.status, 200, "{}", me.text);
    }
    Granted {
        enrolled,
        password_only,
        changer,
        other,
        by_device,
        device_token,
    }
}

/// Both the access token and the refresh token of a session are refused.
async fn assert_session_revoked(app: &TestApp, label: &str, (access, refresh): &(String, String)) {
    let me = app.get("/v1/auth/me", Some(access)).await;
    assert_eq!(
        me.status, 401,
        "{label}: access token still works: {}",
        me.text
    );
    me.assert_problem(401, "unauthorized");
    let refreshed = app
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(
        refreshed.status, 401,
        "{label}: refresh token still works: {}",
        refreshed.text
    );
    refreshed.assert_problem(401, "invalid_refresh_token");
}

/// The access token works and the refresh token rotates.
async fn assert_session_alive(app: &TestApp, label: &str, (access, refresh): &(String, String)) {
    let me = app.get("/v1/auth/me", Some(access)).await;
    assert_eq!(me.status, 200, "{label}: access token refused: {}", me.text);
    let refreshed = app
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(
        refreshed.status, 200,
        "{label}: refresh refused: {}",
        refreshed.text
    );
}

/// With 2FA on (again), the old device token does not skip the second factor.
async fn assert_device_token_dead(app: &TestApp, email: &str, password: &str, device_token: &str) {
    let login = login_with_device(app, email, password, device_token, FINGERPRINT).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(
        login.body["requires2FA"], true,
        "the old device token still skips 2FA: {}",
        login.text
    );
    assert!(login.body.get("accessToken").is_none());
}

/// Turns 2FA back on for the holder of `access`.
async fn re_enable(app: &TestApp, enrolled: &Enrolled, access: &str) -> Enrolled {
    let user = TestUser {
        access_token: access.to_owned(),
        ..enrolled.user.clone()
    };
    app.enable_two_factor(&user).await
}

#[tokio::test]
async fn password_change_revokes_devices_and_other_sessions() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;

    let changed = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": g.enrolled.user.password, "newPassword": NEW_PASSWORD}),
            Some(&g.changer.0),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);

    assert_session_revoked(&app, "other second-factor session", &g.other).await;
    assert_session_revoked(&app, "password-only session", &g.password_only).await;
    assert_session_revoked(&app, "trusted-device session", &g.by_device).await;
    assert_session_alive(&app, "the changer's session", &g.changer).await;

    let devices = app
        .get("/v1/auth/2fa/trusted-devices", Some(&g.changer.0))
        .await;
    assert_eq!(devices.body, json!([]), "{}", devices.text);
    assert_device_token_dead(&app, &g.enrolled.user.email, NEW_PASSWORD, &g.device_token).await;
    app.login(&g.enrolled.user.email, &g.enrolled.user.password)
        .await
        .assert_problem(401, "invalid_credentials");
    // 2FA itself stays on.
    let status = app.get("/v1/auth/2fa/status", Some(&g.changer.0)).await;
    assert_eq!(status.body["enabled"], true);
}

#[tokio::test]
async fn wrong_current_password_revokes_nothing() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;
    let refused = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": "not my password at all", "newPassword": NEW_PASSWORD}),
            Some(&g.changer.0),
        )
        .await;
    refused.assert_problem(401, "invalid_credentials");
    assert_session_alive(&app, "other session", &g.other).await;
    let login = login_with_device(
        &app,
        &g.enrolled.user.email,
        &g.enrolled.user.password,
        &g.device_token,
        FINGERPRINT,
    )
    .await;
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);
}

#[tokio::test]
async fn disabling_two_factor_revokes_devices_and_other_sessions() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;

    let disabled = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": g.enrolled.user.password}),
            Some(&g.changer.0),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);

    assert_session_revoked(&app, "other second-factor session", &g.other).await;
    assert_session_revoked(&app, "password-only session", &g.password_only).await;
    assert_session_revoked(&app, "trusted-device session", &g.by_device).await;
    assert_session_alive(&app, "the disabling session", &g.changer).await;

    let status = app.get("/v1/auth/2fa/status", Some(&g.changer.0)).await;
    assert_eq!(status.body["enabled"], false);
    assert_eq!(status.body["trustedDevices"], 0, "{}", status.text);
    let devices = app
        .get("/v1/auth/2fa/trusted-devices", Some(&g.changer.0))
        .await;
    assert_eq!(devices.body, json!([]), "{}", devices.text);

    // Turned on again, the old device does not count.
    re_enable(&app, &g.enrolled, &g.changer.0).await;
    assert_device_token_dead(
        &app,
        &g.enrolled.user.email,
        &g.enrolled.user.password,
        &g.device_token,
    )
    .await;
}

#[tokio::test]
async fn admin_reset_revokes_devices_and_all_sessions() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;
    let user_id = uuid::Uuid::parse_str(&g.enrolled.user.id).unwrap();

    let actor = tessera::service::operator::Actor {
        ctx: tessera::service::operator::context(),
        details: serde_json::json!({}),
    };
    tessera::service::two_factor::admin_reset(&app.state, user_id, actor)
        .await
        .expect("admin reset");

    assert_session_revoked(&app, "other second-factor session", &g.other).await;
    assert_session_revoked(&app, "password-only session", &g.password_only).await;
    assert_session_revoked(&app, "trusted-device session", &g.by_device).await;
    assert_session_revoked(&app, "even the most recent session", &g.changer).await;

    // The password still signs in, now without a second factor.
    let login = app
        .login(&g.enrolled.user.email, &g.enrolled.user.password)
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);
    let access = access_of(&login);
    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    assert_eq!(status.body["enabled"], false);
    assert_eq!(status.body["trustedDevices"], 0);
    assert_eq!(status.body["backupCodesRemaining"], 0);

    re_enable(&app, &g.enrolled, &access).await;
    assert_device_token_dead(
        &app,
        &g.enrolled.user.email,
        &g.enrolled.user.password,
        &g.device_token,
    )
    .await;
}

#[tokio::test]
async fn deleting_all_devices_revokes_device_tokens_but_no_session() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;

    let removed = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&g.changer.0))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body, json!({"removed": 1}));
    assert_device_token_dead(
        &app,
        &g.enrolled.user.email,
        &g.enrolled.user.password,
        &g.device_token,
    )
    .await;
    // Removing devices is not a credential change: sessions stay.
    assert_session_alive(&app, "other session", &g.other).await;
    assert_session_alive(&app, "trusted-device session", &g.by_device).await;
}

/// Password confirmations on signed-in routes count toward the same throttle as login,
/// so an access token is no free oracle for guessing the password.
#[tokio::test]
async fn wrong_passwords_on_signed_in_routes_are_throttled_like_logins() {
    let app = crate::helpers::TestApp::spawn().await;
    let user = app.signed_in_user().await;
    for _ in 0..5 {
        let wrong = app
            .post(
                "/v1/auth/password",
                serde_json::json!({"currentPassword": "not my password", "newPassword": "a brand new password"}),
                Some(&user.access_token),
            )
            .await;
        wrong.assert_problem(401, "invalid_credentials");
    }
    // The right password is refused while the delay lasts, here and at login.
    let right = app
        .post(
            "/v1/auth/password",
            serde_json::json!({"currentPassword": user.password, "newPassword": "a brand new password"}),
            Some(&user.access_token),
        )
        .await;
    right.assert_problem(401, "invalid_credentials");
    app.login(&user.email, &user.password)
        .await
        .assert_problem(401, "invalid_credentials");
    app.clock.advance(3);
    let right = app
        .post(
            "/v1/auth/password",
            serde_json::json!({"currentPassword": user.password, "newPassword": "a brand new password"}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(right.status, 204, "{}", right.text);
    let events = app
        .get(
            "/v1/auth/security-events?limit=100",
            Some(&user.access_token),
        )
        .await;
    let failed = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "password_confirmation_failed")
        .count();
    assert_eq!(
        failed, 6,
        "five wrong and one throttled confirmation are recorded"
    );
}

/// A pending second step on each surface, started with the password that is about to die.
async fn pending_second_steps(app: &TestApp, enrolled: &Enrolled) -> (String, String) {
    let v1 = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    let compat = app
        .post(
            "/authentication/login",
            json!({"email": enrolled.user.email, "password": enrolled.user.password}),
            None,
        )
        .await;
    assert_eq!(compat.body["requires2FA"], true, "{}", compat.text);
    (v1, compat.body["token"].as_str().unwrap().to_owned())
}

/// Neither pending second step can be finished, even with a right code.
async fn assert_second_steps_dead(
    app: &TestApp,
    enrolled: &Enrolled,
    (v1, compat): (String, String),
) {
    let backup = &enrolled.backup_codes[0];
    verify_code(app, &v1, backup)
        .await
        .assert_problem(401, "invalid_two_factor_token");
    let code = totp_code(&enrolled.secret, app.now());
    let answer = app
        .post(
            "/authentication/verify-2fa",
            json!({"code": code, "token": compat}),
            None,
        )
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_eq!(answer.body["success"], false, "{}", answer.text);
}

#[tokio::test]
async fn a_password_change_ends_the_pending_second_steps_started_with_the_old_password() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;
    let pending = pending_second_steps(&app, &g.enrolled).await;

    let changed = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": g.enrolled.user.password, "newPassword": NEW_PASSWORD}),
            Some(&g.changer.0),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);

    assert_second_steps_dead(&app, &g.enrolled, pending).await;
    // The new password starts a second step that works.
    let fresh = app
        .two_factor_token(&g.enrolled.user.email, NEW_PASSWORD)
        .await;
    let done = verify_code(&app, &fresh, &g.enrolled.backup_codes[1]).await;
    assert_eq!(done.status, 200, "{}", done.text);
}

#[tokio::test]
async fn turning_two_factor_off_on_the_sapfiai_surface_ends_pending_second_steps() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;
    let pending = pending_second_steps(&app, &g.enrolled).await;
    let off = app
        .post(
            "/authentication/enable-2fa",
            json!({"email": g.enrolled.user.email, "password": g.enrolled.user.password, "enable": false}),
            Some(&g.changer.0),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_session_revoked(&app, "other session", &g.other).await;
    // Back on: the old pending steps stay dead, the old device token does not skip 2FA.
    let on = app
        .post(
            "/authentication/enable-2fa",
            json!({"email": g.enrolled.user.email, "password": g.enrolled.user.password, "enable": true}),
            Some(&g.changer.0),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_second_steps_dead(&app, &g.enrolled, pending).await;
    assert_device_token_dead(
        &app,
        &g.enrolled.user.email,
        &g.enrolled.user.password,
        &g.device_token,
    )
    .await;
}

#[tokio::test]
async fn an_admin_revocation_ends_sessions_devices_and_pending_second_steps() {
    let app = TestApp::spawn().await;
    let g = grant_everything(&app).await;
    let pending = pending_second_steps(&app, &g.enrolled).await;
    let who = tessera::admin::UserRef::Email(g.enrolled.user.email.clone());
    tessera::admin::revoke_sessions(
        &app.state,
        &who,
        &tessera::admin::Operator::from_flag_or_env(Some("test".into())).unwrap(),
    )
    .await
    .expect("revoke");
    assert_session_revoked(&app, "the changer's session", &g.changer).await;
    assert_session_revoked(&app, "other session", &g.other).await;
    assert_second_steps_dead(&app, &g.enrolled, pending).await;
    assert_device_token_dead(
        &app,
        &g.enrolled.user.email,
        &g.enrolled.user.password,
        &g.device_token,
    )
    .await;
}
