//! TOTP two-factor authentication over HTTP: `/v1/auth/2fa/*` (SalesOS), from setup to
//! disable, with codes computed independently (`totp-lite`) and time moved by the clock.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{Enrolled, PASSWORD, TestApp, TestResponse, TestUser, totp_code};

// ---------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------

/// The decoded payload (middle part) of a JWT, read without any library.
fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("payload is base64url");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?} is not RFC 3339: {e}"))
        .unix_timestamp()
}

/// A 6-digit code that is not the code of any step near `now` (so it is wrong for sure).
fn wrong_code(secret: &str, now: i64) -> String {
    let near: Vec<String> = (-4..=4).map(|k| totp_code(secret, now + 30 * k)).collect();
    (0..10u32)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .expect("ten candidates cannot all be near codes")
}

async fn verify(app: &TestApp, two_factor_token: &str, code: &str) -> TestResponse {
    app.post(
        "/v1/auth/2fa/verify",
        json!({ "code": code }),
        Some(two_factor_token),
    )
    .await
}

async fn status(app: &TestApp, access: &str) -> TestResponse {
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.status, 200, "status: {}", status.text);
    status
}

async fn setup(app: &TestApp, user: &TestUser) -> TestResponse {
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
        .await;
    assert_eq!(setup.status, 200, "setup: {}", setup.text);
    setup
}

/// A full 2FA login at the current clock; returns (access token, refresh token).
async fn sign_in_with_code(app: &TestApp, enrolled: &Enrolled) -> (String, String) {
    let verified = app.login_with_code(enrolled).await;
    assert_eq!(verified.status, 200, "verify: {}", verified.text);
    (
        verified.body["accessToken"].as_str().unwrap().to_owned(),
        verified.body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

/// Values for a `code` field that are never a code: each must be a 400.
fn garbage_codes() -> Vec<Value> {
    vec![
        json!(""),
        json!("   "),
        json!("abcdef"),
        json!("12345"),
        json!("1234567"),
        json!("x".repeat(10 * 1024)),
        json!("1".repeat(10 * 1024)),
        json!("１２３４５６"),
        json!("١٢٣٤٥٦"),
        json!("123456\u{0}"),
        json!(123456),
        json!(12.5),
        json!(["123456"]),
        json!({ "code": "123456" }),
        json!(null),
        json!(true),
    ]
}

#[track_caller]
fn assert_validation_on(response: &TestResponse, field: &str) {
    response.assert_problem(400, "validation_failed");
    assert!(
        response.body["errors"][field].is_array(),
        "errors name the field {field}: {}",
        response.text.chars().take(500).collect::<String>()
    );
}

// ---------------------------------------------------------------------------------------
// The whole flow
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn full_flow_setup_confirm_login_verify_and_use_the_new_access_token() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;

    let setup = setup(&app, &user).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "verify-setup: {}", confirmed.text);
    assert_eq!(confirmed.body["enabled"], true);
    assert_eq!(confirmed.body["backupCodes"].as_array().unwrap().len(), 10);
    app.clock.advance(30);

    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status, 200, "login: {}", login.text);
    assert_eq!(login.body["requires2FA"], true);
    let token = login.body["twoFactorToken"]
        .as_str()
        .expect("twoFactorToken")
        .to_owned();
    assert!(!token.is_empty());
    assert_eq!(
        unix(login.body["twoFactorTokenExpiry"].as_str().unwrap()),
        app.now() + 300
    );
    assert_eq!(login.body["methods"], json!(["totp", "backup_code"]));
    assert!(
        login.body.get("accessToken").is_none(),
        "no access token before the second factor: {}",
        login.text
    );
    assert!(
        login.body.get("refreshToken").is_none(),
        "no refresh token before the second factor"
    );

    let verified = verify(&app, &token, &totp_code(&secret, app.now())).await;
    assert_eq!(verified.status, 200, "verify: {}", verified.text);
    assert_eq!(verified.body["tokenType"], "Bearer");
    assert_eq!(verified.body["expiresIn"], 900);
    assert!(
        verified.body["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(verified.body["user"]["id"], user.id);
    assert_eq!(verified.body["user"]["twoFactorEnabled"], true);
    let access = verified.body["accessToken"].as_str().unwrap();
    let claims = jwt_payload(access);
    assert_eq!(claims["sub"], user.id);
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .expect("amr is an array")
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(amr.contains(&"otp"), "amr has otp: {amr:?}");
    assert!(amr.contains(&"pwd"), "amr has pwd: {amr:?}");

    let me = app.get("/v1/auth/me", Some(access)).await;
    assert_eq!(me.status, 200, "me: {}", me.text);
    assert_eq!(me.body["id"], user.id);
    assert_eq!(me.body["twoFactorEnabled"], true);
}

// ---------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn setup_answers_exactly_the_contract_fields_and_a_qr_code_of_the_otpauth_url() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let setup = setup(&app, &user).await;

    let body = setup.body.as_object().expect("an object");
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accountName",
            "algorithm",
            "digits",
            "expiresAt",
            "issuer",
            "otpauthUrl",
            "period",
            "qrCode",
            "secret"
        ],
        "exactly the contract fields"
    );
    assert_eq!(body["algorithm"], "SHA1");
    assert_eq!(body["digits"], 6);
    assert_eq!(body["period"], 30);
    assert_eq!(body["accountName"], user.email);
    let issuer = body["issuer"].as_str().unwrap();
    assert_eq!(issuer, app.config.issuer);
    assert_eq!(
        unix(body["expiresAt"].as_str().unwrap()),
        app.now() + 600,
        "pending for 10 minutes"
    );

    let secret = body["secret"].as_str().unwrap();
    let raw = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("secret is unpadded base32");
    assert_eq!(raw.len(), 20, "a 160-bit secret");

    let url = body["otpauthUrl"].as_str().unwrap();
    let account = user.email.replace('@', "%40");
    assert_eq!(
        url,
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period=30"
        )
    );

    let qr = body["qrCode"].as_str().unwrap();
    let png_b64 = qr
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URI");
    let png = base64::engine::general_purpose::STANDARD
        .decode(png_b64)
        .expect("base64 PNG");
    let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .expect("a PNG image")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    assert_eq!(content, url, "the QR code holds exactly otpauthUrl");

    // A setup is not yet an enrolment.
    let status = status(&app, &user.access_token).await;
    assert_eq!(status.body["enabled"], false);
    assert_eq!(status.body["setupPending"], true);
}

#[tokio::test]
async fn setup_while_two_factor_is_on_is_a_conflict_and_keeps_the_secret() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let (access, _) = sign_in_with_code(&app, &enrolled).await;

    let again = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&access))
        .await;
    again.assert_problem(409, "two_factor_already_enabled");
    assert!(!again.text.contains(&enrolled.secret));

    // The enrolled secret still signs in.
    app.clock.advance(30);
    sign_in_with_code(&app, &enrolled).await;
}

#[tokio::test]
async fn a_second_setup_replaces_the_pending_secret() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let first = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second, "a new secret each time");

    let with_first = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&first, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    with_first.assert_problem(401, "invalid_code");
    assert_eq!(
        status(&app, &user.access_token).await.body["enabled"],
        false
    );

    let with_second = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&second, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(with_second.status, 200, "{}", with_second.text);
    assert_eq!(status(&app, &user.access_token).await.body["enabled"], true);
}

#[tokio::test]
async fn a_pending_setup_expires_after_ten_minutes() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    app.clock.advance(601);
    let status_now = status(&app, &user.access_token).await;
    assert_eq!(
        status_now.body["setupPending"], false,
        "an expired setup is not pending"
    );
    // The sign-in is no longer recent either, so the password comes along.
    let late = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()), "password": PASSWORD }),
            Some(&user.access_token),
        )
        .await;
    late.assert_problem(409, "no_pending_setup");
    assert_eq!(
        status(&app, &user.access_token).await.body["enabled"],
        false
    );
}

#[tokio::test]
async fn a_pending_setup_still_confirms_just_before_ten_minutes() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(599);
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
}

#[tokio::test]
async fn verify_setup_without_a_setup_is_a_conflict() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let response = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": "123456" }),
            Some(&user.access_token),
        )
        .await;
    response.assert_problem(409, "no_pending_setup");
}

#[tokio::test]
async fn verify_setup_with_a_wrong_code_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let wrong = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": wrong_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    wrong.assert_problem(401, "invalid_code");
    assert!(wrong.body.get("backupCodes").is_none());
    let status_now = status(&app, &user.access_token).await;
    assert_eq!(status_now.body["enabled"], false);
    assert_eq!(
        status_now.body["setupPending"], true,
        "the pending secret survives a wrong code"
    );
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(
        login.body["requires2FA"], false,
        "still a password-only account"
    );

    let right = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.text);
}

// ---------------------------------------------------------------------------------------
// Status and backup-code summary
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn status_before_during_and_after_enabling() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;

    let before = status(&app, &user.access_token).await;
    assert_eq!(
        before.body,
        json!({"enabled": false, "method": null, "enabledAt": null, "setupPending": false,
               "backupCodesRemaining": 0, "trustedDevices": 0})
    );

    let secret = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let during = status(&app, &user.access_token).await;
    assert_eq!(during.body["enabled"], false);
    assert_eq!(during.body["setupPending"], true);
    assert_eq!(during.body["method"], Value::Null);

    let enabled_at = app.now();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    let after = status(&app, &user.access_token).await;
    assert_eq!(after.body["enabled"], true);
    assert_eq!(after.body["method"], "totp");
    assert_eq!(unix(after.body["enabledAt"].as_str().unwrap()), enabled_at);
    assert_eq!(after.body["setupPending"], false);
    assert_eq!(after.body["backupCodesRemaining"], 10);
    assert_eq!(after.body["trustedDevices"], 0);
    assert_eq!(
        after.body.as_object().unwrap().len(),
        6,
        "exactly the contract fields: {}",
        after.text
    );
}

#[tokio::test]
async fn backup_code_summary_counts_down_after_a_backup_code_login() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let generated_at = app.now();
    let enrolled = app.enable_two_factor(&user).await;

    let summary = app
        .get("/v1/auth/2fa/backup-codes", Some(&user.access_token))
        .await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert_eq!(summary.body["total"], 10);
    assert_eq!(summary.body["remaining"], 10);
    assert_eq!(summary.body["used"], 0);
    assert_eq!(
        unix(summary.body["generatedAt"].as_str().unwrap()),
        generated_at
    );

    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let used = verify(&app, &token, &enrolled.backup_codes[3]).await;
    assert_eq!(used.status, 200, "{}", used.text);
    let access = used.body["accessToken"].as_str().unwrap();
    let amr = jwt_payload(access)["amr"].clone();
    assert!(
        amr.as_array().unwrap().contains(&json!("otp")),
        "a backup code is a second factor: {amr}"
    );

    let summary = app.get("/v1/auth/2fa/backup-codes", Some(access)).await;
    assert_eq!(summary.body["total"], 10);
    assert_eq!(summary.body["remaining"], 9);
    assert_eq!(summary.body["used"], 1);
    assert_eq!(
        unix(summary.body["generatedAt"].as_str().unwrap()),
        generated_at
    );
    assert_eq!(status(&app, access).await.body["backupCodesRemaining"], 9);
}

// ---------------------------------------------------------------------------------------
// Replay and the time window
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_code_twice_is_refused_the_second_time() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let first = app.two_factor_token(&user.email, PASSWORD).await;
    let second = app.two_factor_token(&user.email, PASSWORD).await;
    let code = totp_code(&enrolled.secret, app.now());

    assert_eq!(verify(&app, &first, &code).await.status, 200);
    verify(&app, &second, &code)
        .await
        .assert_problem(401, "invalid_code");

    // The second token is still good for the next step's code.
    app.clock.advance(30);
    let next = verify(&app, &second, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(next.status, 200, "{}", next.text);
}

#[tokio::test]
async fn the_code_that_confirmed_the_setup_does_not_log_in() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = totp_code(&secret, app.now());
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": code }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    let token = app.two_factor_token(&user.email, PASSWORD).await;
    verify(&app, &token, &code)
        .await
        .assert_problem(401, "invalid_code");
    app.clock.advance(30);
    let next = verify(&app, &token, &totp_code(&secret, app.now())).await;
    assert_eq!(next.status, 200, "{}", next.text);
}

#[tokio::test]
async fn an_older_step_is_refused_after_a_newer_one_was_accepted() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let now = app.now();

    let ahead = app.two_factor_token(&user.email, PASSWORD).await;
    assert_eq!(
        verify(&app, &ahead, &totp_code(&enrolled.secret, now + 30))
            .await
            .status,
        200,
        "next step accepted"
    );

    let current = app.two_factor_token(&user.email, PASSWORD).await;
    verify(&app, &current, &totp_code(&enrolled.secret, now))
        .await
        .assert_problem(401, "invalid_code");
}

#[tokio::test]
async fn codes_one_step_either_side_are_accepted_and_two_steps_out_refused() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    // The enrolment used the step two steps ago (enable_two_factor moved one step); move
    // on so that even the previous step is newer than anything accepted so far.
    app.clock.advance(60);
    let now = app.now();
    for (label, offset) in [("previous", -30), ("current", 0), ("next", 30)] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        let response = verify(&app, &token, &totp_code(&enrolled.secret, now + offset)).await;
        assert_eq!(response.status, 200, "{label} step: {}", response.text);
    }

    // Far ahead of every accepted step, so only the window can refuse these.
    app.clock.advance(300);
    let now = app.now();
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    for (label, offset) in [
        ("two steps back", -60),
        ("two steps ahead", 60),
        ("three steps back", -90),
    ] {
        let response = verify(&app, &token, &totp_code(&enrolled.secret, now + offset)).await;
        assert_eq!(response.status, 401, "{label}: {}", response.text);
        assert_eq!(response.body["code"], "invalid_code", "{label}");
    }
    let current = verify(&app, &token, &totp_code(&enrolled.secret, now)).await;
    assert_eq!(
        current.status, 200,
        "the current step still works: {}",
        current.text
    );
}

#[tokio::test]
async fn the_window_edges_on_fresh_accounts() {
    // The same edges, each on an account that has accepted nothing since enrolment.
    let app = TestApp::spawn().await;
    for (offset, accepted) in [
        (-30, true),
        (0, true),
        (30, true),
        (-60, false),
        (60, false),
    ] {
        let user = app.signed_in_user().await;
        let enrolled = app.enable_two_factor(&user).await;
        app.clock.advance(60);
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        let response = verify(
            &app,
            &token,
            &totp_code(&enrolled.secret, app.now() + offset),
        )
        .await;
        if accepted {
            assert_eq!(response.status, 200, "offset {offset}: {}", response.text);
        } else {
            response.assert_problem(401, "invalid_code");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Backup codes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn backup_codes_are_ten_distinct_codes_in_display_form() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    assert_eq!(enrolled.backup_codes.len(), 10);
    for code in &enrolled.backup_codes {
        let (left, right) = code
            .split_once('-')
            .unwrap_or_else(|| panic!("{code} has a dash"));
        assert_eq!(left.len(), 5, "{code}");
        assert_eq!(right.len(), 5, "{code}");
        assert!(
            left.chars()
                .chain(right.chars())
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
            "{code} is lowercase alphanumeric"
        );
    }
    let mut distinct = enrolled.backup_codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "all different");
}

#[tokio::test]
async fn a_backup_code_logs_in_case_and_dash_insensitively_and_only_once() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let code = &enrolled.backup_codes[0];
    let shouted = code.replace('-', "").to_uppercase();

    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let first = verify(&app, &token, &shouted).await;
    assert_eq!(
        first.status, 200,
        "uppercase without a dash: {}",
        first.text
    );

    for form in [code.clone(), shouted.clone(), code.to_uppercase()] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        verify(&app, &token, &form)
            .await
            .assert_problem(401, "invalid_code");
    }
    // Another code still works.
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    assert_eq!(
        verify(&app, &token, &enrolled.backup_codes[1]).await.status,
        200
    );
}

#[tokio::test]
async fn backup_codes_work_in_any_order() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    for index in [9, 2, 7, 0, 5] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        let response = verify(&app, &token, &enrolled.backup_codes[index]).await;
        assert_eq!(response.status, 200, "code #{index}: {}", response.text);
    }
    let summary = app
        .get("/v1/auth/2fa/backup-codes", Some(&user.access_token))
        .await;
    assert_eq!(summary.body["remaining"], 5);
    assert_eq!(summary.body["used"], 5);
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

async fn race_one_code(app: &TestApp, email: &str, code: &str) -> Vec<TestResponse> {
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(app.two_factor_token(email, PASSWORD).await);
    }
    futures::future::join_all(tokens.iter().map(|token| verify(app, token, code))).await
}

#[track_caller]
fn assert_exactly_one_success(responses: &[TestResponse]) {
    let successes = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        successes,
        1,
        "exactly one success; statuses {:?}",
        responses
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    );
    for response in responses.iter().filter(|r| r.status != 200) {
        let code = response.body["code"].as_str().unwrap_or_default();
        assert!(
            (response.status == 401 && code == "invalid_code")
                || (response.status == 429 && code == "second_factor_locked"),
            "a loser is refused as a wrong code or by the lock: {}",
            response.text
        );
    }
}

#[tokio::test]
async fn twenty_concurrent_verifies_with_one_totp_code_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let code = totp_code(&enrolled.secret, app.now());
    let responses = race_one_code(&app, &user.email, &code).await;
    assert_exactly_one_success(&responses);
}

#[tokio::test]
async fn twenty_concurrent_uses_of_one_backup_code_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let responses = race_one_code(&app, &user.email, &enrolled.backup_codes[4]).await;
    assert_exactly_one_success(&responses);

    let summary = app
        .get("/v1/auth/2fa/backup-codes", Some(&user.access_token))
        .await;
    assert_eq!(
        summary.body["used"], 1,
        "the code was spent once: {}",
        summary.text
    );
}

// ---------------------------------------------------------------------------------------
// The two-factor token
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_two_factor_token_dies_after_five_wrong_codes() {
    // The account lockout is pushed out of the way, so only the token's own limit applies.
    let app = TestApp::spawn_with(|config| config.lockout_threshold = 1_000).await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    for attempt in 1..=5 {
        let response = verify(&app, &token, &wrong).await;
        assert_eq!(response.status, 401, "attempt {attempt}: {}", response.text);
        assert_eq!(response.body["code"], "invalid_code", "attempt {attempt}");
    }
    let right = totp_code(&enrolled.secret, app.now());
    verify(&app, &token, &right)
        .await
        .assert_problem(401, "invalid_two_factor_token");
    verify(&app, &token, &enrolled.backup_codes[0])
        .await
        .assert_problem(401, "invalid_two_factor_token");

    // The account itself is fine: a new token with the same code works.
    let fresh = app.two_factor_token(&user.email, PASSWORD).await;
    let response = verify(&app, &fresh, &right).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn concurrent_wrong_codes_on_one_token_get_at_most_five_checks() {
    // With the account lockout out of the way, only the token limits the guesses, and
    // that limit must hold for concurrent requests too.
    let app = TestApp::spawn_with(|config| config.lockout_threshold = 1_000).await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    let responses = futures::future::join_all((0..20).map(|_| verify(&app, &token, &wrong))).await;
    let codes: Vec<&str> = responses
        .iter()
        .map(|r| r.body["code"].as_str().unwrap_or(""))
        .collect();
    let checked = codes.iter().filter(|c| **c == "invalid_code").count();
    let refused = codes
        .iter()
        .filter(|c| **c == "invalid_two_factor_token")
        .count();
    assert_eq!(checked, 5, "exactly five guesses are checked: {codes:?}");
    assert_eq!(refused, 15, "the rest find the token dead: {codes:?}");
    let right = verify(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    right.assert_problem(401, "invalid_two_factor_token");
}

#[tokio::test]
async fn a_two_factor_token_survives_four_wrong_codes() {
    let app = TestApp::spawn_with(|config| config.lockout_threshold = 1_000).await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    for _ in 0..4 {
        verify(&app, &token, &wrong)
            .await
            .assert_problem(401, "invalid_code");
    }
    let response = verify(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn a_two_factor_token_is_single_use() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    assert_eq!(
        verify(&app, &token, &totp_code(&enrolled.secret, app.now()))
            .await
            .status,
        200
    );

    // A new, valid code (next step) and a valid backup code: the token is what is refused.
    app.clock.advance(30);
    verify(&app, &token, &totp_code(&enrolled.secret, app.now()))
        .await
        .assert_problem(401, "invalid_two_factor_token");
    verify(&app, &token, &enrolled.backup_codes[0])
        .await
        .assert_problem(401, "invalid_two_factor_token");
    let summary = app
        .get("/v1/auth/2fa/backup-codes", Some(&user.access_token))
        .await;
    assert_eq!(
        summary.body["used"], 0,
        "a refused token spends no backup code"
    );
}

#[tokio::test]
async fn a_two_factor_token_expires_after_five_minutes() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let early = app.two_factor_token(&user.email, PASSWORD).await;
    let late = app.two_factor_token(&user.email, PASSWORD).await;

    app.clock.advance(299);
    let in_time = verify(&app, &early, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(in_time.status, 200, "still live at 299 s: {}", in_time.text);

    app.clock.advance(32);
    verify(&app, &late, &totp_code(&enrolled.secret, app.now()))
        .await
        .assert_problem(401, "invalid_two_factor_token");
    verify(&app, &late, &enrolled.backup_codes[0])
        .await
        .assert_problem(401, "invalid_two_factor_token");
}

#[tokio::test]
async fn a_two_factor_token_is_refused_everywhere_but_the_second_step() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let device =
        json!({"deviceName": "Phone", "deviceType": "mobile", "deviceFingerprint": "fp-1"});

    let mut answers = vec![
        (
            "GET /v1/auth/me",
            app.get("/v1/auth/me", Some(&token)).await,
        ),
        (
            "GET /2fa/status",
            app.get("/v1/auth/2fa/status", Some(&token)).await,
        ),
        (
            "POST /2fa/setup",
            app.post("/v1/auth/2fa/setup", json!({}), Some(&token))
                .await,
        ),
        (
            "POST /2fa/verify-setup",
            app.post(
                "/v1/auth/2fa/verify-setup",
                json!({"code": totp_code(&enrolled.secret, app.now())}),
                Some(&token),
            )
            .await,
        ),
        (
            "POST /2fa/disable",
            app.post(
                "/v1/auth/2fa/disable",
                json!({"password": PASSWORD}),
                Some(&token),
            )
            .await,
        ),
        (
            "GET /2fa/backup-codes",
            app.get("/v1/auth/2fa/backup-codes", Some(&token)).await,
        ),
        (
            "POST /2fa/regenerate-backup-codes",
            app.post(
                "/v1/auth/2fa/regenerate-backup-codes",
                json!({}),
                Some(&token),
            )
            .await,
        ),
        (
            "GET /2fa/trusted-devices",
            app.get("/v1/auth/2fa/trusted-devices", Some(&token)).await,
        ),
        (
            "POST /2fa/trusted-devices",
            app.post("/v1/auth/2fa/trusted-devices", device, Some(&token))
                .await,
        ),
        (
            "DELETE /2fa/trusted-devices",
            app.delete("/v1/auth/2fa/trusted-devices", Some(&token))
                .await,
        ),
        (
            "POST /v1/auth/logout",
            app.post("/v1/auth/logout", json!({}), Some(&token)).await,
        ),
        (
            "POST /v1/auth/password",
            app.post(
                "/v1/auth/password",
                json!({"currentPassword": PASSWORD, "newPassword": "another long password"}),
                Some(&token),
            )
            .await,
        ),
        (
            "GET /v1/auth/security-events",
            app.get("/v1/auth/security-events", Some(&token)).await,
        ),
    ];
    answers.push((
        "POST /authentication/enable-2fa",
        app.post(
            "/authentication/enable-2fa",
            json!({"email": user.email, "password": PASSWORD, "enable": false}),
            Some(&token),
        )
        .await,
    ));
    for (route, response) in &answers {
        assert_eq!(
            response.status, 401,
            "{route} refuses a twoFactorToken: {}",
            response.text
        );
    }
    let as_refresh = app
        .post("/v1/auth/refresh", json!({"refreshToken": token}), None)
        .await;
    as_refresh.assert_problem(401, "invalid_refresh_token");

    // Nothing changed, and the token is still good for what it is for.
    let status_now = status(&app, &user.access_token).await;
    assert_eq!(status_now.body["enabled"], true);
    assert_eq!(status_now.body["backupCodesRemaining"], 10);
    let response = verify(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

// ---------------------------------------------------------------------------------------
// Disable
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn disable_needs_the_password() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let (access, _) = sign_in_with_code(&app, &enrolled).await;

    let wrong = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": "not the password"}),
            Some(&access),
        )
        .await;
    wrong.assert_problem(401, "invalid_credentials");
    let missing = app
        .post("/v1/auth/2fa/disable", json!({}), Some(&access))
        .await;
    assert_validation_on(&missing, "password");
    // A right code does not stand in for the password.
    app.clock.advance(30);
    let code_only = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": "not the password", "code": totp_code(&enrolled.secret, app.now())}),
            Some(&access),
        )
        .await;
    code_only.assert_problem(401, "invalid_credentials");

    let status_now = status(&app, &access).await;
    assert_eq!(status_now.body["enabled"], true);
    assert_eq!(status_now.body["backupCodesRemaining"], 10);
}

#[tokio::test]
async fn disable_with_a_fresh_second_factor_turns_everything_off_and_revokes_other_sessions() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    // Another session, on a trusted device.
    let other_token = app.two_factor_token(&user.email, PASSWORD).await;
    let other = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": totp_code(&enrolled.secret, app.now()),
                   "trustDevice": {"deviceName": "Laptop", "deviceType": "desktop", "deviceFingerprint": "fp-laptop"}}),
            Some(&other_token),
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.text);
    let other_access = other.body["accessToken"].as_str().unwrap().to_owned();
    let other_refresh = other.body["refreshToken"].as_str().unwrap().to_owned();
    let device_token = other.body["deviceToken"]
        .as_str()
        .expect("a device token")
        .to_owned();
    let trusted_login = app
        .post(
            "/v1/auth/login",
            json!({"email": user.email, "password": PASSWORD, "deviceToken": device_token, "deviceFingerprint": "fp-laptop"}),
            None,
        )
        .await;
    assert_eq!(
        trusted_login.body["requires2FA"], false,
        "the trusted device skips 2FA: {}",
        trusted_login.text
    );
    let trusted_access = trusted_login.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // This session, 9 minutes old: still fresh.
    app.clock.advance(30);
    let (access, _) = sign_in_with_code(&app, &enrolled).await;
    assert_eq!(status(&app, &access).await.body["trustedDevices"], 1);
    app.clock.advance(9 * 60);

    let disabled = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD}),
            Some(&access),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.body, json!({"enabled": false}));

    let status_now = status(&app, &access).await;
    assert_eq!(
        status_now.body,
        json!({"enabled": false, "method": null, "enabledAt": null, "setupPending": false,
               "backupCodesRemaining": 0, "trustedDevices": 0})
    );
    let summary = app.get("/v1/auth/2fa/backup-codes", Some(&access)).await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert_eq!(
        summary.body["total"], 0,
        "backup codes are gone: {}",
        summary.text
    );
    assert_eq!(summary.body["remaining"], 0);
    assert_eq!(summary.body["generatedAt"], Value::Null);

    // Login no longer asks for a second factor.
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["requires2FA"], false);
    assert!(login.body["accessToken"].is_string());

    // The disabling session lives on; every other one is over.
    assert_eq!(app.get("/v1/auth/me", Some(&access)).await.status, 200);
    assert_eq!(
        app.get("/v1/auth/me", Some(&trusted_access)).await.status,
        401,
        "the trusted-device session is revoked"
    );
    assert_eq!(
        app.get("/v1/auth/me", Some(&other_access)).await.status,
        401,
        "the other 2FA session is revoked"
    );
    assert_eq!(
        app.get("/v1/auth/me", Some(&user.access_token))
            .await
            .status,
        401,
        "the pre-2FA session is revoked"
    );
    app.post(
        "/v1/auth/refresh",
        json!({"refreshToken": other_refresh}),
        None,
    )
    .await
    .assert_problem(401, "invalid_refresh_token");
    app.post(
        "/v1/auth/refresh",
        json!({"refreshToken": user.refresh_token}),
        None,
    )
    .await
    .assert_problem(401, "invalid_refresh_token");

    // Disabling twice is a conflict; a new setup can start.
    let again = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD}),
            Some(&access),
        )
        .await;
    again.assert_problem(409, "two_factor_not_enabled");
    let new_setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&access))
        .await;
    assert_eq!(new_setup.status, 200, "{}", new_setup.text);
    assert_ne!(new_setup.body["secret"], enrolled.secret.as_str());

    // With 2FA on again, the device trusted before the disable is trusted no more.
    let new_secret = new_setup.body["secret"].as_str().unwrap();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": totp_code(new_secret, app.now())}),
            Some(&access),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let with_device = app
        .post(
            "/v1/auth/login",
            json!({"email": user.email, "password": PASSWORD, "deviceToken": device_token, "deviceFingerprint": "fp-laptop"}),
            None,
        )
        .await;
    assert_eq!(with_device.status, 200, "{}", with_device.text);
    assert_eq!(
        with_device.body["requires2FA"], true,
        "the old device token no longer skips 2FA"
    );
}

#[tokio::test]
async fn disable_with_a_stale_or_password_only_token_needs_a_code() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;

    // A token whose session never saw a second factor (amr: pwd only).
    let password_only = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD}),
            Some(&user.access_token),
        )
        .await;
    password_only.assert_problem(403, "reauthentication_required");

    let (access, refresh) = sign_in_with_code(&app, &enrolled).await;
    let auth_time = jwt_payload(&access)["auth_time"].clone();
    app.clock.advance(11 * 60);
    let refreshed = app
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let stale = refreshed.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        jwt_payload(&stale)["auth_time"],
        auth_time,
        "refresh keeps auth_time"
    );

    let refused = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD}),
            Some(&stale),
        )
        .await;
    refused.assert_problem(403, "reauthentication_required");
    let wrong = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD, "code": wrong_code(&enrolled.secret, app.now())}),
            Some(&stale),
        )
        .await;
    wrong.assert_problem(401, "invalid_code");
    assert_eq!(
        status(&app, &stale).await.body["enabled"],
        true,
        "still on after the refusals"
    );

    let with_code = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD, "code": totp_code(&enrolled.secret, app.now())}),
            Some(&stale),
        )
        .await;
    assert_eq!(with_code.status, 200, "{}", with_code.text);
    assert_eq!(with_code.body, json!({"enabled": false}));
    assert_eq!(status(&app, &stale).await.body["enabled"], false);
}

#[tokio::test]
async fn disable_accepts_a_backup_code_as_the_fresh_factor() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let disabled = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD, "code": enrolled.backup_codes[6]}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(
        status(&app, &user.access_token).await.body["enabled"],
        false
    );
}

// ---------------------------------------------------------------------------------------
// Regenerating backup codes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn regenerating_backup_codes_needs_a_fresh_second_factor_and_replaces_them() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let (access, refresh) = sign_in_with_code(&app, &enrolled).await;

    // Fresh token: no code needed.
    let first = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(&access),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first_codes: Vec<String> = first.body["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(first_codes.len(), 10);
    assert_eq!(unix(first.body["generatedAt"].as_str().unwrap()), app.now());
    assert!(
        first_codes
            .iter()
            .all(|c| !enrolled.backup_codes.contains(c)),
        "all new codes"
    );

    // Stale token: refused without a code, accepted with one.
    app.clock.advance(11 * 60);
    let refreshed = app
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}), None)
        .await;
    let stale = refreshed.body["accessToken"].as_str().unwrap().to_owned();
    let refused = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(&stale),
        )
        .await;
    refused.assert_problem(403, "reauthentication_required");
    assert!(refused.body.get("backupCodes").is_none());
    let pwd_only = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(&user.access_token),
        )
        .await;
    pwd_only.assert_problem(403, "reauthentication_required");

    let second = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({"code": totp_code(&enrolled.secret, app.now())}),
            Some(&stale),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second_codes: Vec<String> = second.body["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(second_codes.len(), 10);

    // Earlier codes are dead; the newest work.
    for old in [&enrolled.backup_codes[0], &first_codes[0]] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        verify(&app, &token, old)
            .await
            .assert_problem(401, "invalid_code");
    }
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let fresh = verify(&app, &token, &second_codes[8]).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    let summary = app.get("/v1/auth/2fa/backup-codes", Some(&stale)).await;
    assert_eq!(summary.body["total"], 10);
    assert_eq!(summary.body["used"], 1);
    assert_eq!(summary.body["remaining"], 9);
}

#[tokio::test]
async fn regenerating_with_a_password_only_token_needs_a_code() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let refused = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(&user.access_token),
        )
        .await;
    refused.assert_problem(403, "reauthentication_required");
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    assert_eq!(
        verify(&app, &token, &enrolled.backup_codes[0]).await.status,
        200,
        "old codes untouched by a refusal"
    );
}

// ---------------------------------------------------------------------------------------
// Secrets and codes are shown once
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_secret_and_backup_codes_never_appear_after_they_are_shown() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let setup = setup(&app, &user).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let otpauth = setup.body["otpauthUrl"].as_str().unwrap().to_owned();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": totp_code(&secret, app.now())}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200);
    let backup: Vec<String> = confirmed.body["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let mut later: Vec<(&str, TestResponse)> = vec![("verify-setup", confirmed)];
    app.clock.advance(30);

    later.push((
        "status",
        app.get("/v1/auth/2fa/status", Some(&user.access_token))
            .await,
    ));
    let login = app.login(&user.email, PASSWORD).await;
    let token = login.body["twoFactorToken"].as_str().unwrap().to_owned();
    later.push(("login", login));
    later.push((
        "wrong verify",
        verify(&app, &token, &wrong_code(&secret, app.now())).await,
    ));
    let verified = verify(&app, &token, &totp_code(&secret, app.now())).await;
    assert_eq!(verified.status, 200);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    let refresh = verified.body["refreshToken"].as_str().unwrap().to_owned();
    later.push(("verify", verified));
    later.push(("me", app.get("/v1/auth/me", Some(&access)).await));
    later.push((
        "status again",
        app.get("/v1/auth/2fa/status", Some(&access)).await,
    ));
    later.push((
        "backup-codes",
        app.get("/v1/auth/2fa/backup-codes", Some(&access)).await,
    ));
    later.push((
        "setup again",
        app.post("/v1/auth/2fa/setup", json!({}), Some(&access))
            .await,
    ));
    later.push((
        "security events",
        app.get("/v1/auth/security-events", Some(&access)).await,
    ));
    later.push((
        "refresh",
        app.post("/v1/auth/refresh", json!({"refreshToken": refresh}), None)
            .await,
    ));
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    later.push((
        "verify with a backup code",
        verify(&app, &token, &backup[0]).await,
    ));
    later.push((
        "status after a backup code",
        app.get("/v1/auth/2fa/status", Some(&access)).await,
    ));
    let regenerated = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(&access),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let new_codes: Vec<String> = regenerated.body["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    later.push(("regenerate", regenerated));
    later.push((
        "backup-codes after",
        app.get("/v1/auth/2fa/backup-codes", Some(&access)).await,
    ));
    later.push((
        "status after",
        app.get("/v1/auth/2fa/status", Some(&access)).await,
    ));
    later.push((
        "security events after",
        app.get("/v1/auth/security-events", Some(&access)).await,
    ));
    later.push((
        "trusted devices",
        app.get("/v1/auth/2fa/trusted-devices", Some(&access)).await,
    ));

    let raw_secret = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let secret_forms = [
        secret.clone(),
        secret.to_lowercase(),
        otpauth.clone(),
        base64::engine::general_purpose::STANDARD.encode(&raw_secret),
        data_encoding::HEXLOWER.encode(&raw_secret),
    ];
    for (label, response) in &later {
        assert!(response.status.as_u16() < 500, "{label}: {}", response.text);
        for form in &secret_forms {
            assert!(
                !response.text.contains(form.as_str()),
                "{label} leaks the secret: {}",
                response.text
            );
        }
        for code in &backup {
            let shown = *label == "verify-setup";
            let normalized = code.replace('-', "");
            assert_eq!(
                response.text.contains(code.as_str()),
                shown,
                "{label} and backup code {code}"
            );
            assert!(
                shown || !response.text.contains(&normalized),
                "{label} leaks backup code {code}"
            );
        }
        for code in &new_codes {
            let shown = *label == "regenerate";
            assert_eq!(
                response.text.contains(code.as_str()),
                shown,
                "{label} and new backup code {code}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Garbage input
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn garbage_codes_on_verify_setup_are_validation_failures_and_change_nothing() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = setup(&app, &user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut bodies: Vec<Value> = garbage_codes()
        .into_iter()
        .map(|code| json!({ "code": code }))
        .collect();
    bodies.push(json!({}));
    bodies.push(json!({"code": "abcde-fghjk"})); // a backup code's shape does not confirm a setup
    for body in bodies {
        let response = app
            .post(
                "/v1/auth/2fa/verify-setup",
                body.clone(),
                Some(&user.access_token),
            )
            .await;
        assert_validation_on(&response, "code");
        assert!(response.body.get("backupCodes").is_none(), "{body}");
    }
    let status_now = status(&app, &user.access_token).await;
    assert_eq!(status_now.body["enabled"], false);
    assert_eq!(status_now.body["setupPending"], true);

    let right = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": totp_code(&secret, app.now())}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.text);
}

#[tokio::test]
async fn garbage_codes_on_verify_are_validation_failures_and_spend_nothing() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;

    let mut bodies: Vec<Value> = garbage_codes()
        .into_iter()
        .map(|code| json!({ "code": code }))
        .collect();
    bodies.push(json!({}));
    for body in &bodies {
        let response = app
            .post("/v1/auth/2fa/verify", body.clone(), Some(&token))
            .await;
        assert_validation_on(&response, "code");
        assert!(response.body.get("accessToken").is_none());
    }
    // Far more than five bad requests, yet neither the token nor the account counted them.
    let response = verify(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let access = response.body["accessToken"].as_str().unwrap();
    assert_eq!(status(&app, access).await.body["backupCodesRemaining"], 10);
}

#[tokio::test]
async fn garbage_on_disable_is_a_validation_failure_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let (access, _) = sign_in_with_code(&app, &enrolled).await;

    // `password`: anything that is not a non-empty string of at most 1024 bytes.
    let bad_passwords = [
        json!(""),
        json!("   "),
        json!("p".repeat(10 * 1024)),
        json!(12345678),
        json!(["correct horse battery staple"]),
        json!({"password": PASSWORD}),
        json!(null),
        json!(true),
    ];
    for password in bad_passwords {
        let response = app
            .post(
                "/v1/auth/2fa/disable",
                json!({ "password": password }),
                Some(&access),
            )
            .await;
        assert_validation_on(&response, "password");
    }
    // Strings that merely look like garbage are passwords: checked, and wrong.
    for password in ["abcdef", "1234567", "１２３４５６"] {
        let response = app
            .post(
                "/v1/auth/2fa/disable",
                json!({ "password": password }),
                Some(&access),
            )
            .await;
        response.assert_problem(401, "invalid_credentials");
    }

    // `code` (optional): garbage with the right password. An empty string or null counts
    // as no code at all (see the report), so they are not in this list.
    let bad_codes = garbage_codes()
        .into_iter()
        .filter(|c| !c.is_null() && c.as_str().is_none_or(|s| !s.trim().is_empty()));
    for code in bad_codes {
        let response = app
            .post(
                "/v1/auth/2fa/disable",
                json!({ "password": PASSWORD, "code": code }),
                Some(&access),
            )
            .await;
        assert_validation_on(&response, "code");
    }
    let unknown = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD, "passwrd": "x"}),
            Some(&access),
        )
        .await;
    unknown.assert_problem(400, "validation_failed");

    let status_now = status(&app, &access).await;
    assert_eq!(status_now.body["enabled"], true);
    assert_eq!(status_now.body["backupCodesRemaining"], 10);

    // No lockout and no spent attempts: a code-checked disable still works.
    app.clock.advance(30);
    let disabled = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD, "code": totp_code(&enrolled.secret, app.now())}),
            Some(&access),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
}

#[tokio::test]
async fn enrolment_needs_a_recent_sign_in_or_the_password() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    // A stolen access token, used after the sign-in stopped being recent.
    app.clock.advance(app.config.fresh_second_factor_secs + 1);
    let bearer = Some(user.access_token.as_str());
    app.post("/v1/auth/2fa/setup", json!({}), bearer)
        .await
        .assert_problem(403, "reauthentication_required");
    app.post(
        "/v1/auth/2fa/setup",
        json!({"password": "not the password"}),
        bearer,
    )
    .await
    .assert_problem(401, "invalid_credentials");
    // A refreshed token keeps the original sign-in time: still not recent.
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let refreshed_access = refreshed.body["accessToken"].as_str().unwrap().to_owned();
    app.post("/v1/auth/2fa/setup", json!({}), Some(&refreshed_access))
        .await
        .assert_problem(403, "reauthentication_required");

    // With the password, the owner enrols.
    let setup = app
        .post("/v1/auth/2fa/setup", json!({"password": PASSWORD}), bearer)
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let code = totp_code(&secret, app.now());
    app.post("/v1/auth/2fa/verify-setup", json!({"code": code}), bearer)
        .await
        .assert_problem(403, "reauthentication_required");
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": code, "password": PASSWORD}),
            bearer,
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    // A fresh sign-in needs no password: the seed flow (log in, then set up) is unchanged.
    let other = app.signed_in_user().await;
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&other.access_token))
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
}

#[tokio::test]
async fn status_and_backup_codes_agree_while_two_factor_is_switched_off() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let login = app.login_with_code(&enrolled).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let access = login.body["accessToken"].as_str().unwrap().to_owned();
    let off = app
        .post(
            "/authentication/enable-2fa",
            json!({"email": user.email, "password": PASSWORD, "enable": false}),
            Some(&access),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);

    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    let codes = app.get("/v1/auth/2fa/backup-codes", Some(&access)).await;
    assert_eq!(status.body["enabled"], false, "{}", status.text);
    assert_eq!(
        status.body["backupCodesRemaining"], codes.body["remaining"],
        "one source of truth: status {} backup-codes {}",
        status.text, codes.text
    );
    assert_eq!(
        codes.body["remaining"], 10,
        "kept while switched off: {}",
        codes.text
    );
}
