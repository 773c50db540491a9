//! POST /authentication/enable-2fa: switching two-factor on and off, and its failures.

use super::*;

#[tokio::test]
async fn enable_2fa_without_a_valid_bearer_answers_the_fixed_problem() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let body = json!({"email": user.email, "password": PASSWORD, "enable": true});

    assert_unauthorized(&enable_2fa(&app, None, body.clone()).await);
    assert_unauthorized(&enable_2fa(&app, Some("garbage"), body.clone()).await);
    let basic = app
        .send(
            app.client
                .post(app.url("/authentication/enable-2fa"))
                .header("authorization", format!("Basic {}", user.access_token))
                .json(&body),
        )
        .await;
    assert_unauthorized(&basic);
    // A temporary two-factor token is not an access token.
    let temp = compat_temp_token(&app, &user.email).await;
    assert_unauthorized(&enable_2fa(&app, Some(&temp), body.clone()).await);
    // A tampered access token: one character of the signature changed.
    let (signed, signature) = enrolled.user.access_token.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{signed}.{first}{}", &signature[1..]);
    assert_unauthorized(&enable_2fa(&app, Some(&tampered), body.clone()).await);
    // A logged-out session.
    let logout = app
        .post("/v1/auth/logout", json!({}), Some(&user.access_token))
        .await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    assert_unauthorized(&enable_2fa(&app, Some(&user.access_token), body.clone()).await);
    // An expired access token.
    let fresh = app.signed_in_user().await;
    app.clock.advance(15 * 60 + 1);
    let fresh_body = json!({"email": fresh.email, "password": PASSWORD, "enable": true});
    assert_unauthorized(&enable_2fa(&app, Some(&fresh.access_token), fresh_body).await);
}

#[tokio::test]
async fn enable_2fa_full_cycle_keeps_the_authenticator() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;

    // A fresh second factor (from verify-2fa) turns 2FA off.
    let signed_in = compat_sign_in_with_code(&app, &enrolled).await;
    let access = signed_in.body["token"].as_str().unwrap().to_owned();
    let off = enable_2fa(
        &app,
        Some(&access),
        json!({"email": user.email, "password": PASSWORD, "enable": false}),
    )
    .await;
    assert_result(&off, 200, true);
    assert_eq!(
        off.body,
        json!({"isSuccess": true, "succeeded": true, "error": {"code": "", "description": ""}, "errors": []})
    );
    assert!(!two_factor_enabled(&app, &access).await);

    // Login no longer asks for a second factor, on either surface.
    let login = compat_login(&app, &user.email, PASSWORD).await;
    assert_signed_in(&login, LOGIN_KEYS, "Login successful");
    assert_eq!(login.body["requires2FA"], false);
    assert_eq!(login.body["user"]["twoFactorEnabled"], false);
    let v1_login = app.login(&user.email, PASSWORD).await;
    assert_eq!(v1_login.body["requires2FA"], false, "{}", v1_login.text);

    // Turning it on again needs only the password: the authenticator was kept.
    let plain_access = login.body["token"].as_str().unwrap().to_owned();
    let on = enable_2fa(
        &app,
        Some(&plain_access),
        json!({"email": user.email, "password": PASSWORD, "enable": true}),
    )
    .await;
    assert_result(&on, 200, true);
    assert!(two_factor_enabled(&app, &plain_access).await);
    let status = app.get("/v1/auth/2fa/status", Some(&plain_access)).await;
    assert_eq!(
        status.body["backupCodesRemaining"], 10,
        "the backup codes were kept: {}",
        status.text
    );

    // Login asks for 2FA again, and the SAME secret still produces valid codes.
    app.clock.advance(30);
    let temp = compat_temp_token(&app, &user.email).await;
    let verified = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    assert_signed_in(&verified, SIGNED_IN_KEYS, "2FA verification successful");
    assert_eq!(verified.body["user"]["twoFactorEnabled"], true);
    app.clock.advance(30);
    let v1_verified = app.login_with_code(&enrolled).await;
    assert_eq!(v1_verified.status, 200, "{}", v1_verified.text);

    // Turning on what is already on succeeds and changes nothing.
    let again = enable_2fa(
        &app,
        Some(&plain_access),
        json!({"email": user.email, "password": PASSWORD, "enable": true}),
    )
    .await;
    assert_result(&again, 200, true);
    assert!(two_factor_enabled(&app, &plain_access).await);
}

#[tokio::test]
async fn enable_2fa_off_accepts_a_code_in_the_body_instead_of_a_fresh_token() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    // user.access_token is from a password-only login: not a fresh second factor.
    let code = totp_code(&enrolled.secret, app.now());
    let off = enable_2fa(
        &app,
        Some(&user.access_token),
        json!({"email": user.email, "password": PASSWORD, "enable": false, "code": code}),
    )
    .await;
    assert_result(&off, 200, true);
    assert!(!two_factor_enabled(&app, &user.access_token).await);
    let login = compat_login(&app, &user.email, PASSWORD).await;
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);
}

#[tokio::test]
async fn enable_2fa_off_with_a_stale_token_and_no_code_needs_reauthentication() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let body = json!({"email": user.email, "password": PASSWORD, "enable": false});

    // A password-only token.
    let stale = enable_2fa(&app, Some(&user.access_token), body.clone()).await;
    assert_eq!(
        assert_result(&stale, 403, false),
        "TwoFactor.ReauthenticationRequired"
    );
    assert!(two_factor_enabled(&app, &user.access_token).await);

    // A second factor from more than 10 minutes ago, carried through a refresh.
    let signed_in = compat_sign_in_with_code(&app, &enrolled).await;
    app.clock.advance(10 * 60 + 1);
    let refreshed = refresh(&app, signed_in.body["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let old_factor = refreshed.body["token"].as_str().unwrap().to_owned();
    let stale = enable_2fa(&app, Some(&old_factor), body.clone()).await;
    assert_eq!(
        assert_result(&stale, 403, false),
        "TwoFactor.ReauthenticationRequired"
    );
    assert!(two_factor_enabled(&app, &old_factor).await);

    // A wrong code is refused and counted as a failed second factor.
    let wrong = enable_2fa(
        &app,
        Some(&old_factor),
        json!({"email": user.email, "password": PASSWORD, "enable": false, "code": wrong_code(&enrolled.secret, app.now())}),
    )
    .await;
    assert_eq!(assert_result(&wrong, 400, false), "TwoFactor.InvalidCode");
    assert!(two_factor_enabled(&app, &old_factor).await);
    let events = app.get("/v1/auth/security-events", Some(&old_factor)).await;
    assert!(
        events
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "second_factor_failed"),
        "{}",
        events.text
    );
}

#[tokio::test]
async fn enable_2fa_off_while_the_second_factor_is_locked_answers_429() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let temp = compat_temp_token(&app, &user.email).await;
    for _ in 0..5 {
        let wrong = verify_2fa(&app, &temp, &wrong_code(&enrolled.secret, app.now())).await;
        assert_failure(&wrong, 401, "2FA verification failed");
    }
    // Even the right code cannot turn 2FA off while locked.
    let code = totp_code(&enrolled.secret, app.now());
    let locked = enable_2fa(
        &app,
        Some(&user.access_token),
        json!({"email": user.email, "password": PASSWORD, "enable": false, "code": code}),
    )
    .await;
    assert_eq!(assert_result(&locked, 429, false), "TwoFactor.Locked");
    let retry_after: i64 = locked
        .header("retry-after")
        .expect("Retry-After on 429")
        .parse()
        .unwrap();
    assert!(
        (1..=15 * 60).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert!(two_factor_enabled(&app, &user.access_token).await);
}

#[tokio::test]
async fn enable_2fa_on_without_a_confirmed_authenticator_fails() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let body = json!({"email": user.email, "password": PASSWORD, "enable": true});

    let never = enable_2fa(&app, Some(&user.access_token), body.clone()).await;
    assert_eq!(
        assert_result(&never, 400, false),
        "TwoFactor.NoAuthenticator"
    );
    assert!(!two_factor_enabled(&app, &user.access_token).await);

    // A setup started but never confirmed is no authenticator either.
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let pending = enable_2fa(&app, Some(&user.access_token), body).await;
    assert_eq!(
        assert_result(&pending, 400, false),
        "TwoFactor.NoAuthenticator"
    );
    assert!(!two_factor_enabled(&app, &user.access_token).await);
    let login = compat_login(&app, &user.email, PASSWORD).await;
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);
}

#[tokio::test]
async fn enable_2fa_refuses_another_users_email() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let other = app.signed_in_user().await;
    let signed_in = compat_sign_in_with_code(&app, &enrolled).await;
    let access = signed_in.body["token"].as_str().unwrap().to_owned();

    // The password is right (both accounts share it here); the email is not the caller's.
    let response = enable_2fa(
        &app,
        Some(&access),
        json!({"email": other.email, "password": PASSWORD, "enable": false}),
    )
    .await;
    assert_eq!(assert_result(&response, 403, false), "User.EmailMismatch");
    let response = enable_2fa(
        &app,
        Some(&access),
        json!({"email": other.email, "password": PASSWORD, "enable": true}),
    )
    .await;
    assert_eq!(assert_result(&response, 403, false), "User.EmailMismatch");
    assert!(
        two_factor_enabled(&app, &access).await,
        "the caller's 2FA is unchanged"
    );
    let other_login = compat_login(&app, &other.email, PASSWORD).await;
    assert_eq!(other_login.body["requires2FA"], false);

    // The caller's email in another case is the caller's.
    let upper = enable_2fa(
        &app,
        Some(&access),
        json!({"email": user.email.to_uppercase(), "password": PASSWORD, "enable": false}),
    )
    .await;
    assert_result(&upper, 200, true);
}

#[tokio::test]
async fn enable_2fa_refuses_a_short_or_wrong_password() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let signed_in = compat_sign_in_with_code(&app, &enrolled).await;
    let access = signed_in.body["token"].as_str().unwrap().to_owned();

    let short = enable_2fa(
        &app,
        Some(&access),
        json!({"email": user.email, "password": "12345", "enable": false}),
    )
    .await;
    assert_eq!(assert_result(&short, 400, false), "Validation.Failed");
    let messages: Vec<&str> = short.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("at least 6 characters")),
        "{messages:?}"
    );
    assert!(two_factor_enabled(&app, &access).await);

    let wrong = enable_2fa(
        &app,
        Some(&access),
        json!({"email": user.email, "password": "wrong password", "enable": false}),
    )
    .await;
    assert_eq!(assert_result(&wrong, 400, false), "User.InvalidPassword");
    assert!(two_factor_enabled(&app, &access).await);

    // Same for turning it on.
    let plain = app.signed_in_user().await;
    let wrong_on = enable_2fa(
        &app,
        Some(&plain.access_token),
        json!({"email": plain.email, "password": "wrong password", "enable": true}),
    )
    .await;
    assert_eq!(assert_result(&wrong_on, 400, false), "User.InvalidPassword");
}

#[tokio::test]
async fn enable_2fa_refuses_missing_or_mistyped_fields() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let cases = [
        (json!({"password": PASSWORD, "enable": true}), "email"),
        (json!({"email": user.email, "enable": true}), "password"),
        (json!({"email": user.email, "password": PASSWORD}), "enable"),
        (
            json!({"email": user.email, "password": PASSWORD, "enable": "yes"}),
            "enable",
        ),
        (
            json!({"email": user.email, "password": PASSWORD, "enable": false, "code": "12"}),
            "code",
        ),
    ];
    for (body, field) in cases {
        let response = enable_2fa(&app, Some(&user.access_token), body.clone()).await;
        assert_eq!(
            assert_result(&response, 400, false),
            "Validation.Failed",
            "{body}"
        );
        let messages: Vec<&str> = response.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            messages.iter().any(|m| m.contains(field)),
            "{body}: {messages:?}"
        );
    }
    let not_object = enable_2fa(&app, Some(&user.access_token), json!([1, 2])).await;
    assert_result(&not_object, 400, false);
}
