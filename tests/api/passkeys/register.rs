//! Registering a passkey: freshness, exclusion, origin and RP ID checks, ceremony expiry and
//! binding, the first second factor's backup codes, the authenticator allow-list, and the
//! relying party settings.

use std::sync::Arc;

use serde_json::json;
use tessera::clock::ManualClock;
use tessera::config::Config;
use tessera::startup::Application;

use super::*;

#[tokio::test]
async fn a_first_passkey_turns_two_factor_on_and_issues_backup_codes() {
    let app = spawn().await;
    let (user, mut first, registered) = user_with_passkey(&app).await;
    assert_eq!(registered["passkey"]["name"], "Laptop");
    assert_eq!(registered["passkey"]["disabled"], false);
    assert!(registered["passkey"]["lastUsedAt"].is_null());
    let codes = registered["backupCodes"].as_array().expect("backup codes");
    assert_eq!(codes.len(), 10);

    let status = app
        .get("/v1/auth/2fa/status", Some(&user.access_token))
        .await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.body["enabled"], true);
    assert_eq!(status.body["method"], Value::Null, "no authenticator app");
    assert_eq!(status.body["methods"], json!(["passkey", "backup_code"]));
    assert_eq!(status.body["passkeys"], 1);
    assert_eq!(status.body["backupCodesRemaining"], 10);

    let events = events(&app, &user.access_token).await;
    assert!(
        events
            .iter()
            .any(|(t, d)| t == "two_factor_enabled" && d["method"] == "passkey")
    );
    assert!(
        events
            .iter()
            .any(|(t, d)| t == "passkey_registered" && d["name"] == "Laptop")
    );

    // The second passkey is not a first second factor: no new codes. (Signed in with the
    // first one, so the second factor is fresh.)
    let mut second = SoftKey::new();
    let token = app.two_factor_token(&user.email, &user.password).await;
    let signed_in = second_step(&app, &token, &mut first).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let access = signed_in.body["accessToken"].as_str().unwrap();
    let finished = add_passkey(&app, access, &mut second, "Phone").await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    assert!(
        finished.body.get("backupCodes").is_none(),
        "{}",
        finished.text
    );
}

#[tokio::test]
async fn the_accounts_passkeys_are_excluded_and_the_user_handle_is_random() {
    let app = spawn().await;
    let (user, _key, registered) = user_with_passkey(&app).await;
    // The session that registered is recent and 2FA is now on: a code is needed.
    let code = registered["backupCodes"][0].as_str().unwrap();
    let started = register_start(&app, &user.access_token, json!({"code": code})).await;
    assert_eq!(started.status, 200, "{}", started.text);
    let options = &started.body["options"]["publicKey"];
    let excluded = options["excludeCredentials"].as_array().expect("excluded");
    assert_eq!(excluded.len(), 1, "{options}");
    let handle = options["user"]["id"].as_str().unwrap();
    let id_b64 = base64_url(uuid::Uuid::parse_str(&user.id).unwrap().as_bytes());
    assert_ne!(handle, id_b64, "the user handle is not the account id");
    assert!(!handle.contains(&user.email));
    assert_eq!(options["user"]["name"], user.email.as_str());
    assert_eq!(options["rp"]["id"], RP_ID);

    // The same handle every time for one account; another account has another.
    let other = app.signed_in_user().await;
    let theirs = register_start(&app, &other.access_token, json!({})).await;
    assert_ne!(theirs.body["options"]["publicKey"]["user"]["id"], handle);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn registration_needs_a_recent_sign_in_or_the_password() {
    let app = spawn().await;
    let user = app.signed_in_user().await;
    app.clock.advance(app.config.fresh_second_factor_secs + 1);
    register_start(&app, &user.access_token, json!({}))
        .await
        .assert_problem(403, "reauthentication_required");
    register_start(
        &app,
        &user.access_token,
        json!({"password": "wrong password!"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    let started =
        register_start(&app, &user.access_token, json!({"password": user.password})).await;
    assert_eq!(started.status, 200, "{}", started.text);
}

#[tokio::test]
async fn with_two_factor_on_registration_is_a_sensitive_change() {
    let app = spawn().await;
    let (user, _key, registered) = user_with_passkey(&app).await;
    // The password sign-in is recent but proved no second factor.
    register_start(&app, &user.access_token, json!({}))
        .await
        .assert_problem(403, "reauthentication_required");
    register_start(&app, &user.access_token, json!({"code": "aaaaa-bbbbb"}))
        .await
        .assert_problem(401, "invalid_code");
    let code = registered["backupCodes"][1].as_str().unwrap();
    let started = register_start(&app, &user.access_token, json!({"code": code})).await;
    assert_eq!(started.status, 200, "{}", started.text);
}

/// Tessera always asks for user verification (PIN or biometric), and refuses a passkey
/// made without it: nothing is stored and two-factor authentication stays off.
#[tokio::test]
async fn a_passkey_made_without_user_verification_is_refused() {
    let app = spawn().await;
    let user = app.signed_in_user().await;
    let started = register_start(&app, &user.access_token, json!({})).await;
    let selection = &started.body["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(
        selection["userVerification"], "required",
        "{}",
        started.text
    );
    let mut key = SoftKey::new();
    key.stop_verifying();
    let credential = key.create(&started.body["options"], ORIGIN).await;
    let ceremony = &started.body["ceremonyId"];
    register_finish(&app, &user.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(401, "invalid_passkey");
    let list = app.get("/v1/auth/passkeys", Some(&user.access_token)).await;
    assert_eq!(list.body, json!([]), "{}", list.text);
    let status = app
        .get("/v1/auth/2fa/status", Some(&user.access_token))
        .await;
    assert_eq!(status.body["enabled"], false, "{}", status.text);
}

#[tokio::test]
async fn an_answer_from_another_origin_is_refused_and_uses_the_ceremony_up() {
    let app = spawn().await;
    let user = app.signed_in_user().await;
    let started = register_start(&app, &user.access_token, json!({})).await;
    let ceremony = &started.body["ceremonyId"];
    let mut key = SoftKey::new();
    // A page on a subdomain the relying party does not list: the authenticator signs
    // (the RP ID is a suffix of it), the server must refuse.
    let credential = key
        .create(&started.body["options"], "https://evil.tessera.example")
        .await;
    register_finish(&app, &user.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(401, "invalid_passkey");
    let credential = key.create(&started.body["options"], ORIGIN).await;
    register_finish(&app, &user.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(409, "invalid_ceremony");
    let status = app
        .get("/v1/auth/2fa/status", Some(&user.access_token))
        .await;
    assert_eq!(status.body["enabled"], false);
}

#[tokio::test]
async fn an_answer_for_another_rp_id_is_refused() {
    let app = spawn().await;
    let user = app.signed_in_user().await;
    let started = register_start(&app, &user.access_token, json!({})).await;
    let ceremony = &started.body["ceremonyId"];
    let mut options = started.body["options"].clone();
    options["publicKey"]["rp"]["id"] = json!("other.example");
    let credential = SoftKey::new()
        .create(&options, "https://other.example")
        .await;
    register_finish(&app, &user.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(401, "invalid_passkey");
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let app = spawn().await;
    let user = app.signed_in_user().await;
    let started = register_start(&app, &user.access_token, json!({})).await;
    let ceremony = &started.body["ceremonyId"];
    let credential = SoftKey::new()
        .create(&started.body["options"], ORIGIN)
        .await;
    app.clock.advance(5 * 60);
    register_finish(&app, &user.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(409, "invalid_ceremony");
}

#[tokio::test]
async fn a_ceremony_is_finished_only_by_the_session_that_began_it() {
    let app = spawn().await;
    let user = app.signed_in_user().await;
    let other_session = app.login(&user.email, &user.password).await;
    let other = other_session.body["accessToken"].as_str().unwrap();
    let started = register_start(&app, &user.access_token, json!({})).await;
    let ceremony = &started.body["ceremonyId"];
    let mut key = SoftKey::new();
    let credential = key.create(&started.body["options"], ORIGIN).await;
    register_finish(&app, other, ceremony, &credential, "x")
        .await
        .assert_problem(409, "invalid_ceremony");
    // Another account's token cannot finish it either.
    let stranger = app.signed_in_user().await;
    register_finish(&app, &stranger.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(409, "invalid_ceremony");
    // Untouched by those: its own session finishes it, once.
    let finished = register_finish(&app, &user.access_token, ceremony, &credential, "x").await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    register_finish(&app, &user.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(409, "invalid_ceremony");
}

#[tokio::test]
async fn bad_bodies_are_problem_documents() {
    let app = spawn().await;
    let user = app.signed_in_user().await;
    let started = register_start(&app, &user.access_token, json!({})).await;
    let bad = app
        .post(
            "/v1/auth/passkeys/register/finish",
            json!({"ceremonyId": "not-a-uuid", "credential": {"id": 1}, "name": "x".repeat(101), "extra": 1}),
            Some(&user.access_token),
        )
        .await;
    bad.assert_problem(400, "validation_failed");
    for field in ["ceremonyId", "credential", "name", "extra"] {
        assert!(
            bad.body["errors"][field].is_array(),
            "{field}: {}",
            bad.text
        );
    }
    let _ = started;
}

#[tokio::test]
async fn the_authenticator_allow_list_admits_only_listed_models() {
    let model = uuid::Uuid::new_v4();
    let app = TestApp::spawn_with(|config| {
        configure(config);
        config.webauthn_allowed_aaguids = vec![model];
    })
    .await;
    let user = app.signed_in_user().await;

    let started = register_start(&app, &user.access_token, json!({})).await;
    let ceremony = &started.body["ceremonyId"];
    let unlisted = SoftKey::counting(*uuid::Uuid::new_v4().as_bytes())
        .create(&started.body["options"], ORIGIN)
        .await;
    register_finish(&app, &user.access_token, ceremony, &unlisted, "x")
        .await
        .assert_problem(403, "authenticator_not_allowed");

    let started = register_start(&app, &user.access_token, json!({})).await;
    let ceremony = &started.body["ceremonyId"];
    let listed = SoftKey::counting(*model.as_bytes())
        .create(&started.body["options"], ORIGIN)
        .await;
    let finished = register_finish(&app, &user.access_token, ceremony, &listed, "Key").await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    assert_eq!(finished.body["passkey"]["aaguid"], model.to_string());
}

async fn start_error(adjust: impl FnOnce(&mut Config)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    adjust(&mut config);
    match Application::build_with_clock(config, Arc::new(ManualClock::starting_now())).await {
        Ok(_) => panic!("the server started"),
        Err(err) => format!("{err:#}"),
    }
}

#[tokio::test]
async fn an_inconsistent_relying_party_stops_the_start_with_the_reason() {
    let error = start_error(|c| {
        c.webauthn_rp_id = Some("example.com".into());
        c.webauthn_origins = vec!["https://example.org".into()];
    })
    .await;
    assert!(
        error.contains("https://example.org") && error.contains("example.com"),
        "{error}"
    );
    let error = start_error(|c| c.webauthn_rp_id = Some("example.com".into())).await;
    assert!(error.contains("webauthn_origins"), "{error}");
    let error = start_error(|c| c.webauthn_rp_id = Some("127.0.0.1".into())).await;
    assert!(error.contains("IP address"), "{error}");
    // The same check when the settings come from the environment.
    let env = [
        ("TESSERA_WEBAUTHN_RP_ID", "example.com"),
        (
            "TESSERA_WEBAUTHN_ORIGINS",
            "https://example.com,http://example.com",
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let error = format!("{:#}", Config::load_from(None, env).unwrap_err());
    assert!(error.contains("http://example.com"), "{error}");
    let env = [
        ("TESSERA_WEBAUTHN_RP_ID", "example.com"),
        (
            "TESSERA_WEBAUTHN_ORIGINS",
            "https://example.com,https://login.example.com",
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config = Config::load_from(None, env).expect("consistent settings load");
    assert_eq!(config.webauthn_origins.len(), 2);
}

/// A login that must enrol a second factor first completes with a passkey: the enrolment
/// token starts and finishes the registration, the answer is a full session with a fresh
/// second factor and the backup codes, and the token is spent.
#[tokio::test]
async fn a_login_that_must_enrol_completes_with_a_passkey() {
    let (app, token) = must_enrol().await;
    let mut key = SoftKey::new();
    let finished = add_passkey(&app, &token, &mut key, "Phone").await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    assert_eq!(finished.body["backupCodes"].as_array().unwrap().len(), 10);
    let access = finished.body["accessToken"].as_str().unwrap();
    let amr = jwt_payload(access)["amr"].to_string();
    assert!(
        amr.contains("pwd") && amr.contains("swk") && amr.contains("mfa"),
        "{amr}"
    );
    assert_eq!(app.get("/v1/auth/me", Some(access)).await.status, 200);
    // Spent: the token starts nothing more.
    register_start(&app, &token, json!({}))
        .await
        .assert_problem(401, "unauthorized");
    // The passkey signs in alone from now on.
    let again = passwordless(&app, &mut key).await;
    assert_eq!(again.status, 200, "{}", again.text);
}

/// Enrolling with a passkey bound to its authenticator signs in as a hardware key, `hwk`,
/// where a synced passkey is `swk` (above).
#[tokio::test]
async fn a_login_that_enrols_a_device_bound_passkey_signs_in_as_a_hardware_key() {
    let (app, token) = must_enrol().await;
    let mut key = SoftKey::device_bound();
    let finished = add_passkey(&app, &token, &mut key, "Security key").await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    assert_eq!(
        finished.body["passkey"]["backupEligible"], false,
        "{}",
        finished.text
    );
    let access = finished.body["accessToken"].as_str().unwrap();
    assert_eq!(jwt_payload(access)["amr"], json!(["pwd", "hwk", "mfa"]));
}

/// An enrolment token dies after `two_factor_token_max_failures` wrong codes at
/// `verify-setup`, for every use of it: a passkey registration it started before cannot
/// finish, and it starts neither another registration nor a TOTP setup.
#[tokio::test]
async fn an_enrolment_token_dead_from_wrong_codes_registers_no_passkey() {
    let (app, token) = must_enrol().await;
    let started = register_start(&app, &token, json!({})).await;
    assert_eq!(started.status, 200, "{}", started.text);
    app.exhaust_enrolment_token(&token).await;

    let mut key = SoftKey::new();
    let credential = key.create(&started.body["options"], ORIGIN).await;
    register_finish(
        &app,
        &token,
        &started.body["ceremonyId"],
        &credential,
        "Phone",
    )
    .await
    .assert_problem(401, "unauthorized");
    register_start(&app, &token, json!({}))
        .await
        .assert_problem(401, "unauthorized");
    app.post("/v1/auth/2fa/setup", json!({}), Some(&token))
        .await
        .assert_problem(401, "unauthorized");
    // Nothing was kept: the next login must enrol again.
    let again = app
        .login("enrol@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(again.body["requiresEnrollment"], true, "{}", again.text);
}

/// A server where every account must enrol a second factor, and the enrolment token of a
/// new account's first password login.
async fn must_enrol() -> (TestApp, String) {
    let app = TestApp::spawn_with(|c| {
        configure(c);
        c.require_second_factor = tessera::config::SecondFactorPolicy::All;
    })
    .await;
    let email = "enrol@example.com";
    assert_eq!(
        app.register(email, crate::helpers::PASSWORD).await.status,
        201
    );
    let login = app.login(email, crate::helpers::PASSWORD).await;
    assert_eq!(login.body["requiresEnrollment"], true, "{}", login.text);
    assert_eq!(login.body["methods"], json!(["totp", "passkey"]));
    let token = login.body["enrollmentToken"].as_str().unwrap().to_owned();
    (app, token)
}
