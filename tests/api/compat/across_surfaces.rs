//! Across surfaces: the rules /authentication shares with /v1 (replay, lockout, sessions).

use super::*;

#[tokio::test]
async fn a_code_used_on_one_surface_is_a_replay_on_the_other() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;

    // /v1 first, then the compatibility surface.
    let code = totp_code(&enrolled.secret, app.now());
    let v1_token = app.two_factor_token(&user.email, PASSWORD).await;
    let v1 = verify_code(&app, &v1_token, &code).await;
    assert_eq!(v1.status, 200, "{}", v1.text);
    let temp = compat_temp_token(&app, &user.email).await;
    let replay = verify_2fa(&app, &temp, &code).await;
    assert_eq!(
        replay.body,
        json!({
            "success": false, "token": null, "refreshToken": null, "user": null,
            "message": "2FA verification failed", "errors": ["Invalid two-factor authentication code"],
        })
    );
    assert_eq!(replay.status, 401);

    // The compatibility surface first, then /v1.
    app.clock.advance(30);
    let code = totp_code(&enrolled.secret, app.now());
    let temp = compat_temp_token(&app, &user.email).await;
    assert_signed_in(
        &verify_2fa(&app, &temp, &code).await,
        SIGNED_IN_KEYS,
        "2FA verification successful",
    );
    let v1_token = app.two_factor_token(&user.email, PASSWORD).await;
    let replay = verify_code(&app, &v1_token, &code).await;
    replay.assert_problem(401, "invalid_code");
}

#[tokio::test]
async fn failures_on_both_surfaces_share_one_lockout() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let wrong = wrong_code(&enrolled.secret, app.now());

    let v1_token = app.two_factor_token(&user.email, PASSWORD).await;
    for _ in 0..3 {
        let response = verify_code(&app, &v1_token, &wrong).await;
        response.assert_problem(401, "invalid_code");
    }
    let temp = compat_temp_token(&app, &user.email).await;
    for _ in 0..2 {
        let response = verify_2fa(&app, &temp, &wrong).await;
        assert_failure(&response, 401, "2FA verification failed");
    }

    // Five in a row across the two surfaces: the right code is refused on both.
    let right = totp_code(&enrolled.secret, app.now());
    let temp = compat_temp_token(&app, &user.email).await;
    let compat = verify_2fa(&app, &temp, &right).await;
    assert_failure(&compat, 429, "2FA verification failed");
    assert!(
        compat
            .header("retry-after")
            .is_some_and(|v| v.parse::<i64>().is_ok_and(|s| s > 0))
    );
    let v1_token = app.two_factor_token(&user.email, PASSWORD).await;
    let v1 = verify_code(&app, &v1_token, &right).await;
    v1.assert_problem(429, "second_factor_locked");
    assert!(v1.header("retry-after").is_some());
}

#[tokio::test]
async fn failures_on_compat_then_v1_share_one_lockout() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let wrong = wrong_code(&enrolled.secret, app.now());

    let temp = compat_temp_token(&app, &user.email).await;
    for _ in 0..4 {
        assert_failure(
            &verify_2fa(&app, &temp, &wrong).await,
            401,
            "2FA verification failed",
        );
    }
    let v1_token = app.two_factor_token(&user.email, PASSWORD).await;
    let response = verify_code(&app, &v1_token, &wrong).await;
    response.assert_problem(401, "invalid_code");

    let right = totp_code(&enrolled.secret, app.now());
    let temp = compat_temp_token(&app, &user.email).await;
    assert_failure(
        &verify_2fa(&app, &temp, &right).await,
        429,
        "2FA verification failed",
    );
    let v1 = verify_code(&app, &v1_token, &right).await;
    v1.assert_problem(429, "second_factor_locked");
}

#[tokio::test]
async fn refresh_tokens_work_across_surfaces_and_rotate_across_them() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;

    // A /v1 refresh token, used on the compatibility surface.
    let from_compat = refresh(&app, &user.refresh_token).await;
    assert_signed_in(&from_compat, SIGNED_IN_KEYS, "Token refreshed successfully");
    assert_eq!(from_compat.body["user"]["id"], user.id);
    let compat_token = from_compat.body["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // The /v1 token was retired by that use: presenting it on /v1 is theft, which ends
    // the session, so the token the compatibility surface issued dies too.
    let replay = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
        )
        .await;
    replay.assert_problem(401, "invalid_refresh_token");
    assert_failure(
        &refresh(&app, &compat_token).await,
        401,
        "Token refresh failed",
    );

    // A compatibility-surface refresh token, used on /v1.
    let login = compat_login(&app, &user.email, PASSWORD).await;
    let compat_refresh = login.body["refreshToken"].as_str().unwrap().to_owned();
    let v1 = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": compat_refresh}),
            None,
        )
        .await;
    assert_eq!(v1.status, 200, "{}", v1.text);
    let v1_refresh = v1.body["refreshToken"].as_str().unwrap().to_owned();
    let replay = refresh(&app, &compat_refresh).await;
    assert_failure(&replay, 401, "Token refresh failed");
    let after = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": v1_refresh}),
            None,
        )
        .await;
    after.assert_problem(401, "invalid_refresh_token");

    // Without theft, rotation simply continues across surfaces.
    let login = compat_login(&app, &user.email, PASSWORD).await;
    let mut token = login.body["refreshToken"].as_str().unwrap().to_owned();
    for round in 0..4 {
        token = if round % 2 == 0 {
            let r = app
                .post("/v1/auth/refresh", json!({"refreshToken": token}), None)
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["refreshToken"].as_str().unwrap().to_owned()
        } else {
            let r = refresh(&app, &token).await;
            assert_signed_in(&r, SIGNED_IN_KEYS, "Token refreshed successfully");
            r.body["refreshToken"].as_str().unwrap().to_owned()
        };
    }
}

#[tokio::test]
async fn enable_2fa_off_on_compat_is_seen_by_v1_and_revokes_other_sessions() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let other_session = app.login_with_code(&enrolled).await;
    assert_eq!(other_session.status, 200, "{}", other_session.text);
    let other_access = other_session.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    app.clock.advance(30);
    let signed_in = compat_sign_in_with_code(&app, &enrolled).await;
    let access = signed_in.body["token"].as_str().unwrap().to_owned();
    let off = enable_2fa(
        &app,
        Some(&access),
        json!({"email": user.email, "password": PASSWORD, "enable": false}),
    )
    .await;
    assert_result(&off, 200, true);

    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    assert_eq!(status.body["enabled"], false, "{}", status.text);
    let me = app.get("/v1/auth/me", Some(&access)).await;
    assert_eq!(me.body["twoFactorEnabled"], false, "{}", me.text);
    // Sessions granted under 2FA elsewhere end; the caller's own stays.
    let other = app.get("/v1/auth/me", Some(&other_access)).await;
    other.assert_problem(401, "unauthorized");
    assert_eq!(me.status, 200);
}
