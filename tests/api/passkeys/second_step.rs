//! A passkey as the second step of a password login: offered in `methods`, checked under
//! the same token, lockout, trusted-device and event rules as codes.

use serde_json::json;

use super::*;

#[tokio::test]
async fn a_login_offers_the_passkey_and_accepts_it() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let login = app.login(&user.email, &user.password).await;
    assert_eq!(login.body["requires2FA"], true, "{}", login.text);
    assert_eq!(login.body["methods"], json!(["passkey", "backup_code"]));
    let token = login.body["twoFactorToken"].as_str().unwrap();

    let signed_in = second_step(&app, token, &mut key).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let access = signed_in.body["accessToken"].as_str().unwrap();
    let claims = jwt_payload(access);
    assert_eq!(claims["amr"], json!(["pwd", "swk", "mfa"]), "{claims}");

    let events = events(&app, access).await;
    assert!(
        events
            .iter()
            .any(|(t, d)| t == "login_succeeded" && d["secondFactor"] == "passkey"),
        "{events:?}"
    );
    let list = app.get("/v1/auth/passkeys", Some(access)).await;
    assert!(list.body[0]["lastUsedAt"].is_string(), "{}", list.text);

    // The token is spent.
    verify_start(&app, token)
        .await
        .assert_problem(401, "invalid_two_factor_token");
}

/// A Sapfiai login of an account whose only second factor is a passkey: its `verify-2fa`
/// takes 6 digits only, so the client finishes on `/v1` with the same temporary token, as
/// the README says, and the refresh token it gets works on both surfaces.
#[tokio::test]
async fn a_sapfiai_login_of_a_passkey_only_account_finishes_on_v1() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let login = app
        .post(
            "/authentication/login",
            json!({"email": user.email, "password": user.password}),
            None,
        )
        .await;
    assert_eq!(login.body["requires2FA"], true, "{}", login.text);
    let token = login.body["token"].as_str().unwrap();

    let signed_in = second_step(&app, token, &mut key).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let refreshed = app
        .post(
            "/authentication/refresh-token",
            json!({"refreshToken": signed_in.body["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.body["success"], true, "{}", refreshed.text);
}

/// A passkey bound to its authenticator is a hardware key, `hwk`, in the second step too.
#[tokio::test]
async fn a_device_bound_passkey_is_a_hardware_key() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_key(&app, SoftKey::device_bound(), "Security key").await;
    let token = app.two_factor_token(&user.email, &user.password).await;
    let signed_in = second_step(&app, &token, &mut key).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let claims = jwt_payload(signed_in.body["accessToken"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]), "{claims}");
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let token = app.two_factor_token(&user.email, &user.password).await;
    let started = verify_start(&app, &token).await;
    let credential = key.get(&started.body["options"], ORIGIN).await;
    let ceremony = &started.body["ceremonyId"];
    let first = verify_finish(&app, &token, ceremony, &credential).await;
    assert_eq!(first.status, 200, "{}", first.text);
    verify_finish(&app, &token, ceremony, &credential)
        .await
        .assert_problem(401, "invalid_two_factor_token");

    // Sent again within a new login, against a new ceremony: the challenge differs.
    let token = app.two_factor_token(&user.email, &user.password).await;
    let started = verify_start(&app, &token).await;
    let ceremony = &started.body["ceremonyId"];
    verify_finish(&app, &token, ceremony, &credential)
        .await
        .assert_problem(401, "invalid_passkey");
    // That wrong answer used the ceremony up.
    verify_finish(&app, &token, ceremony, &credential)
        .await
        .assert_problem(409, "invalid_ceremony");
    let events = events(&app, first.body["accessToken"].as_str().unwrap()).await;
    assert!(
        events
            .iter()
            .any(|(t, d)| t == "second_factor_failed" && d["method"] == "passkey"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_ceremony_of_another_login_is_refused() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let mine = app.two_factor_token(&user.email, &user.password).await;
    let theirs = app.two_factor_token(&user.email, &user.password).await;
    let started = verify_start(&app, &theirs).await;
    let credential = key.get(&started.body["options"], ORIGIN).await;
    let ceremony = &started.body["ceremonyId"];
    verify_finish(&app, &mine, ceremony, &credential)
        .await
        .assert_problem(409, "invalid_ceremony");
    // Judging nothing, that took nothing: the right token still finishes it.
    let ok = verify_finish(&app, &theirs, ceremony, &credential).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let app = TestApp::spawn_with(|c| {
        configure(c);
        c.two_factor_token_ttl_secs = 3600;
    })
    .await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let token = app.two_factor_token(&user.email, &user.password).await;
    let started = verify_start(&app, &token).await;
    let credential = key.get(&started.body["options"], ORIGIN).await;
    app.clock.advance(5 * 60);
    verify_finish(&app, &token, &started.body["ceremonyId"], &credential)
        .await
        .assert_problem(409, "invalid_ceremony");
}

#[tokio::test]
async fn wrong_answers_count_toward_the_lockout() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    assert_eq!(app.config.lockout_threshold, 5);
    let token = app.two_factor_token(&user.email, &user.password).await;
    for _ in 0..5 {
        let started = verify_start(&app, &token).await;
        assert_eq!(started.status, 200, "{}", started.text);
        // Signed for a page the relying party does not list.
        let forged = key
            .get(&started.body["options"], "https://evil.tessera.example")
            .await;
        verify_finish(&app, &token, &started.body["ceremonyId"], &forged)
            .await
            .assert_problem(401, "invalid_passkey");
    }
    // The token has no attempt left.
    verify_start(&app, &token)
        .await
        .assert_problem(401, "invalid_two_factor_token");
    // Locked now, even for a right answer.
    let token = app.two_factor_token(&user.email, &user.password).await;
    let locked = second_step(&app, &token, &mut key).await;
    locked.assert_problem(429, "second_factor_locked");
}

#[tokio::test]
async fn the_second_step_can_trust_the_device() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let token = app.two_factor_token(&user.email, &user.password).await;
    let started = verify_start(&app, &token).await;
    let credential = key.get(&started.body["options"], ORIGIN).await;
    let finished = app
        .post(
            "/v1/auth/passkeys/verify/finish",
            json!({
                "ceremonyId": started.body["ceremonyId"],
                "credential": credential,
                "trustDevice": {"deviceName": "Laptop", "deviceType": "desktop", "deviceFingerprint": "fp-1"}
            }),
            Some(&token),
        )
        .await;
    assert_eq!(finished.status, 200, "{}", finished.text);
    let device_token = finished.body["deviceToken"].as_str().expect("device token");
    let login = app
        .post(
            "/v1/auth/login",
            json!({"email": user.email, "password": user.password, "deviceToken": device_token, "deviceFingerprint": "fp-1"}),
            None,
        )
        .await;
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);
}

#[tokio::test]
async fn an_account_without_passkeys_cannot_start_one() {
    let app = spawn().await;
    let enrolled = app.enrolled_user().await;
    let token = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    verify_start(&app, &token)
        .await
        .assert_problem(409, "no_passkey");
    verify_start(&app, "nonsense")
        .await
        .assert_problem(401, "invalid_two_factor_token");
}
