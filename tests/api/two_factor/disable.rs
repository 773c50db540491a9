//! Disable: the password and a fresh second factor, and what switching off revokes.

use super::*;

#[tokio::test]
async fn disable_needs_the_password() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
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
               "backupCodesRemaining": 0, "trustedDevices": 0, "methods": [], "passkeys": 0})
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
