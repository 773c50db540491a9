//! Imported authenticators (`tessera admin import-totp`) with their own hash, digits and
//! period, checked with RFC 6238's own values and an independent implementation
//! (`totp-lite`); clock drift learned from accepted codes and re-learned by an operator's
//! resync, with the injected clock.

use serde_json::{Value, json};
use tessera::admin::{self, AdminError, ImportFormat, Operator, UserRef};

use crate::helpers::{PASSWORD, TestApp, TestResponse, TestUser, totp_code, verify_code};

/// RFC 6238 appendix B's seeds, one per hash.
const SEED_SHA1: &[u8] = b"12345678901234567890";
const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
/// Appendix B's time 2000000000 and its 8-digit codes.
const RFC_TIME: i64 = 2_000_000_000;

fn operator() -> Operator {
    Operator::from_flag_or_env(Some("test operator".into())).unwrap()
}

fn b32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// An 8-digit code by `totp-lite` for `algorithm` at `unix_seconds`, 30-second period.
fn independent_code(algorithm: &str, secret: &[u8], unix_seconds: i64) -> String {
    let t = unix_seconds as u64;
    match algorithm {
        "SHA1" => totp_lite::totp_custom::<totp_lite::Sha1>(30, 8, secret, t),
        "SHA256" => totp_lite::totp_custom::<totp_lite::Sha256>(30, 8, secret, t),
        "SHA512" => totp_lite::totp_custom::<totp_lite::Sha512>(30, 8, secret, t),
        other => panic!("no such algorithm {other}"),
    }
}

/// Writes `text` to a file named `name` in the test's data dir and imports it.
async fn import(app: &TestApp, name: &str, text: &str) -> Result<String, AdminError> {
    let path = app.data_dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    admin::import_totp(&app.state, &path, None, false, &operator()).await
}

async fn sign_in(app: &TestApp, user: &TestUser, code: &str) -> TestResponse {
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    verify_code(app, &token, code).await
}

/// The events of `kind` of the holder of `access`, newest first.
async fn events_of(app: &TestApp, access: &str, kind: &str) -> Vec<Value> {
    let response = app
        .get("/v1/auth/security-events?limit=100", Some(access))
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.body["events"]
        .as_array()
        .or_else(|| response.body.as_array())
        .unwrap_or_else(|| panic!("events: {}", response.text))
        .iter()
        .filter(|e| e["type"] == kind || e["eventType"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn rfc6238_authenticators_of_every_hash_are_imported_and_sign_in() {
    let app = TestApp::spawn().await;
    app.clock.set(RFC_TIME);
    let users = [
        ("SHA1", SEED_SHA1, "69279037", app.signed_in_user().await),
        (
            "SHA256",
            SEED_SHA256,
            "90698825",
            app.signed_in_user().await,
        ),
        (
            "SHA512",
            SEED_SHA512,
            "38618901",
            app.signed_in_user().await,
        ),
    ];
    // The reference implementation agrees with the RFC on each hash.
    for (algorithm, seed, rfc_code, _) in &users {
        assert_eq!(independent_code(algorithm, seed, RFC_TIME), *rfc_code);
    }
    let file: String = users
        .iter()
        .map(|(algorithm, seed, _, user)| {
            json!({
                "email": user.email,
                "otpauth": format!(
                    "otpauth://totp/Old%20System:{}?secret={}&issuer=Old%20System&algorithm={algorithm}&digits=8&period=30",
                    user.email,
                    b32(seed)
                ),
            })
            .to_string()
                + "\n"
        })
        .collect();
    let report = import(&app, "authenticators.jsonl", &file)
        .await
        .expect("every line imported");
    assert!(
        report.contains("3 line(s): 3 imported, 0 refused"),
        "{report}"
    );
    for (algorithm, _, _, _) in &users {
        assert!(
            report.contains(&format!("{algorithm}, 8 digits, 30 s")),
            "{report}"
        );
    }

    for (algorithm, seed, rfc_code, user) in &users {
        // The password step now asks for the second factor; RFC 6238's own code passes it.
        let response = sign_in(&app, user, rfc_code).await;
        assert_eq!(response.status, 200, "{algorithm}: {}", response.text);
        // The same code again is a replay.
        sign_in(&app, user, rfc_code)
            .await
            .assert_problem(401, "invalid_code");
        // A 6-digit code of the same secret is not this authenticator's code.
        let six = totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, seed, RFC_TIME as u64 + 30);
        app.clock.advance(30);
        if *algorithm == "SHA1" {
            sign_in(&app, user, &six)
                .await
                .assert_problem(401, "invalid_code");
        }
        let next = independent_code(algorithm, seed, app.now());
        let response = sign_in(&app, user, &next).await;
        assert_eq!(
            response.status, 200,
            "{algorithm} next step: {}",
            response.text
        );
        app.clock.set(RFC_TIME);
    }
    let shown = admin::show_user(&app.state, &UserRef::Email(users[1].3.email.clone()))
        .await
        .unwrap();
    assert!(
        shown.contains("on (totp [SHA256, 8 digits, 30 s"),
        "{shown}"
    );
    let imported = events_of(&app, &users[0].3.access_token, "totp_imported").await;
    assert_eq!(imported.len(), 1, "one totp_imported event");
    assert_eq!(imported[0]["details"]["operator"], "test operator");
    assert_eq!(imported[0]["details"]["algorithm"], "SHA1");
    assert!(
        !imported[0].to_string().contains(&b32(SEED_SHA1)),
        "no secret in the event"
    );
}

#[tokio::test]
async fn a_step_used_elsewhere_stays_used_and_csv_names_users_by_id() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = b32(SEED_SHA256);
    let step = app.now() / 60;
    let file = format!(
        "id,secret,algorithm,digits,period,last_step\n{},{secret},sha256,6,60,{step}\n",
        user.id
    );
    let report = import(&app, "authenticators.csv", &file).await.unwrap();
    assert!(report.contains("1 imported"), "{report}");
    let code = |t: i64| totp_lite::totp_custom::<totp_lite::Sha256>(60, 6, SEED_SHA256, t as u64);
    // The current step was used in the old system: refused here too.
    sign_in(&app, &user, &code(app.now()))
        .await
        .assert_problem(401, "invalid_code");
    app.clock.advance(60);
    let response = sign_in(&app, &user, &code(app.now())).await;
    assert_eq!(response.status, 200, "next step: {}", response.text);
    // Backup codes are not made by an import: the user makes their own once signed in.
    let access = response.body["accessToken"].as_str().unwrap();
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.body["enabled"], true, "{}", status.text);
    assert_eq!(status.body["backupCodesRemaining"], 0, "{}", status.text);
}

#[tokio::test]
async fn bad_lines_are_reported_and_only_good_lines_are_imported() {
    let app = TestApp::spawn().await;
    let good = app.signed_in_user().await;
    let enrolled = app.enrolled_user().await;
    let untouched = app.signed_in_user().await;
    let secret = b32(SEED_SHA1);
    let lines = [
        json!({"email": good.email, "secret": secret.to_lowercase(), "digits": 8}).to_string(),
        json!({"email": "nobody@example.com", "secret": secret}).to_string(),
        json!({"email": untouched.email, "secret": "not base32!"}).to_string(),
        json!({"email": untouched.email, "secret": secret, "digits": 7}).to_string(),
        json!({"email": untouched.email, "otpauth": format!("otpauth://hotp/x?secret={secret}&counter=0")}).to_string(),
        json!({"email": untouched.email, "otpauth": format!("otpauth://totp/x?secret={secret}"), "secret": secret}).to_string(),
        json!({"email": untouched.email, "secret": secret, "lastStep": i64::MAX / 2}).to_string(),
        json!({"email": enrolled.user.email, "secret": secret}).to_string(),
        format!("{{\"email\": \"{}\", \"secret\": ", untouched.email),
        json!({"secret": secret}).to_string(),
        json!({"email": untouched.email, "secret": secret, "colour": "blue"}).to_string(),
    ];
    let err = import(&app, "mixed.jsonl", &lines.join("\n"))
        .await
        .expect_err("a file with refused lines is reported as partly done");
    let AdminError::Partial(report) = err else {
        panic!("a partial report, got {err:?}")
    };
    let expect = [
        (1, "imported"),
        (2, "no such account"),
        (3, "not base32"),
        (4, "digits must be 6 or 8"),
        (5, "HOTP"),
        (6, "both otpauth and secret"),
        (7, "in the future"),
        (8, "already has an authenticator"),
        (9, "not a valid JSON line"),
        (10, "no account"),
        (11, "not a valid JSON line"),
    ];
    for (line, what) in expect {
        let reported = report
            .lines()
            .find(|l| l.starts_with(&format!("line {line}: ")))
            .unwrap_or_else(|| panic!("line {line} reported: {report}"));
        assert!(reported.contains(what), "line {line}: {reported}");
    }
    assert!(
        report.contains("11 line(s): 1 imported, 10 refused"),
        "{report}"
    );
    assert!(!report.contains(&secret), "no secret in the report");

    // The good line is whole: 2FA on, 8-digit codes work.
    let code = totp_lite::totp_custom::<totp_lite::Sha1>(30, 8, SEED_SHA1, app.now() as u64);
    let response = sign_in(&app, &good, &code).await;
    assert_eq!(response.status, 200, "{}", response.text);
    // The refused lines left nothing behind: no second factor for this account, and the
    // enrolled account keeps its own authenticator.
    let login = app.login(&untouched.email, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(login.body["accessToken"].is_string(), "{}", login.text);
    app.clock.advance(30);
    let response = app.login_with_code(&enrolled).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn a_dry_run_stores_nothing() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let path = app.data_dir.path().join("dry.jsonl");
    std::fs::write(
        &path,
        json!({"user": user.email, "secret": b32(SEED_SHA1)}).to_string(),
    )
    .unwrap();
    let report = admin::import_totp(
        &app.state,
        &path,
        Some(ImportFormat::Jsonl),
        true,
        &operator(),
    )
    .await
    .unwrap();
    assert!(report.contains("would import"), "{report}");
    let login = app.login(&user.email, PASSWORD).await;
    assert!(login.body["accessToken"].is_string(), "{}", login.text);
}

#[tokio::test]
async fn drift_is_learned_from_codes_one_step_ahead_and_behind() {
    let app = TestApp::spawn().await;
    for direction in [1i64, -1] {
        let enrolled = app.enrolled_user().await;
        let user = &enrolled.user;
        app.clock.advance(300);
        // A code one step off the server's clock is accepted and teaches the drift.
        let off = totp_code(&enrolled.secret, app.now() + 30 * direction);
        let response = sign_in(&app, user, &off).await;
        assert_eq!(response.status, 200, "{direction}: {}", response.text);
        let access = response.body["accessToken"].as_str().unwrap();
        let drift = events_of(&app, access, "totp_drift_changed").await;
        assert_eq!(drift.len(), 1, "{direction}: {drift:?}");
        assert_eq!(drift[0]["details"]["driftSteps"], direction);
        assert_eq!(drift[0]["details"]["reason"], "sign_in");

        // The window is now centred one step off: two steps off is accepted, and the far
        // side of the server's clock is not (the window did not grow).
        app.clock.advance(300);
        let other_side = totp_code(&enrolled.secret, app.now() - 30 * direction);
        sign_in(&app, user, &other_side)
            .await
            .assert_problem(401, "invalid_code");
        app.clock.advance(300);
        let two_off = totp_code(&enrolled.secret, app.now() + 60 * direction);
        let response = sign_in(&app, user, &two_off).await;
        assert_eq!(response.status, 200, "{direction}: {}", response.text);
        let access = response.body["accessToken"].as_str().unwrap();
        let drift = events_of(&app, access, "totp_drift_changed").await;
        assert_eq!(
            drift[0]["details"]["driftSteps"],
            2 * direction,
            "{drift:?}"
        );
    }
}

#[tokio::test]
async fn an_operator_resync_relearns_an_authenticator_eight_steps_ahead() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    let user = &enrolled.user;
    app.clock.advance(300);
    let ahead = |app: &TestApp, steps: i64| totp_code(&enrolled.secret, app.now() + 30 * steps);
    // Eight steps ahead is far outside the window.
    sign_in(&app, user, &ahead(&app, 8))
        .await
        .assert_problem(401, "invalid_code");

    let who = UserRef::Email(user.email.clone());
    // Codes that are not consecutive are refused.
    let err = admin::resync_totp(
        &app.state,
        &who,
        &ahead(&app, 6),
        &ahead(&app, 8),
        &operator(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not consecutive"), "{err}");
    // The user reads a code, and the next one 30 seconds later.
    let first = ahead(&app, 8);
    app.clock.advance(30);
    let second = ahead(&app, 8);
    let done = admin::resync_totp(&app.state, &who, &first, &second, &operator())
        .await
        .unwrap();
    assert!(done.contains("drift 8 step(s)"), "{done}");
    // The resync's codes are spent.
    sign_in(&app, user, &second)
        .await
        .assert_problem(401, "invalid_code");
    app.clock.advance(30);
    let response = sign_in(&app, user, &ahead(&app, 8)).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let access = response.body["accessToken"].as_str().unwrap();
    let drift = events_of(&app, access, "totp_drift_changed").await;
    let resync = drift
        .iter()
        .find(|e| e["details"]["reason"] == "resync")
        .unwrap_or_else(|| panic!("a resync event: {drift:?}"));
    assert_eq!(resync["details"]["driftSteps"], 8);
    assert_eq!(resync["details"]["operator"], "test operator");
    let shown = admin::show_user(&app.state, &who).await.unwrap();
    assert!(shown.contains("clock drift +8 step(s)"), "{shown}");

    // Beyond totp_max_drift_steps (10), a resync is refused rather than learned.
    app.clock.advance(300);
    let first = ahead(&app, 15);
    app.clock.advance(30);
    let err = admin::resync_totp(&app.state, &who, &first, &ahead(&app, 15), &operator())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("beyond totp_max_drift_steps"),
        "{err}"
    );
}

#[tokio::test]
async fn the_drift_settings_bound_learning_and_resync() {
    let app = TestApp::spawn_with(|c| {
        c.totp_max_drift_steps = 0;
        c.totp_resync_window_secs = 120;
    })
    .await;
    let enrolled = app.enrolled_user().await;
    let user = &enrolled.user;
    app.clock.advance(300);
    // A code one step ahead is inside the window, but with no drift allowed nothing is
    // learned: two steps ahead stays outside.
    let response = sign_in(&app, user, &totp_code(&enrolled.secret, app.now() + 30)).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let access = response.body["accessToken"].as_str().unwrap().to_owned();
    assert!(
        events_of(&app, &access, "totp_drift_changed")
            .await
            .is_empty()
    );
    app.clock.advance(300);
    sign_in(&app, user, &totp_code(&enrolled.secret, app.now() + 60))
        .await
        .assert_problem(401, "invalid_code");
    // A resync only looks 120 s (four steps) either side: seven steps ahead is not found.
    let first = totp_code(&enrolled.secret, app.now() + 7 * 30);
    app.clock.advance(30);
    let second = totp_code(&enrolled.secret, app.now() + 7 * 30);
    let who = UserRef::Email(user.email.clone());
    let err = admin::resync_totp(&app.state, &who, &first, &second, &operator())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not consecutive"), "{err}");
}
