//! The two-factor token: its wrong-code budget, single use, expiry and where it is refused.

use super::*;

#[tokio::test]
async fn a_two_factor_token_dies_after_five_wrong_codes() {
    // The account lockout is pushed out of the way, so only the token's own limit applies.
    let app = TestApp::spawn_with(|config| config.lockout_threshold = 1_000).await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    for attempt in 1..=5 {
        let response = verify_code(&app, &token, &wrong).await;
        assert_eq!(response.status, 401, "attempt {attempt}: {}", response.text);
        assert_eq!(response.body["code"], "invalid_code", "attempt {attempt}");
    }
    let right = totp_code(&enrolled.secret, app.now());
    verify_code(&app, &token, &right)
        .await
        .assert_problem(401, "invalid_two_factor_token");
    verify_code(&app, &token, &enrolled.backup_codes[0])
        .await
        .assert_problem(401, "invalid_two_factor_token");

    // The account itself is fine: a new token with the same code works.
    let fresh = app.two_factor_token(&user.email, PASSWORD).await;
    let response = verify_code(&app, &fresh, &right).await;
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
    let responses =
        futures::future::join_all((0..20).map(|_| verify_code(&app, &token, &wrong))).await;
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
    let right = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
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
        verify_code(&app, &token, &wrong)
            .await
            .assert_problem(401, "invalid_code");
    }
    let response = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn a_two_factor_token_is_single_use() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    assert_eq!(
        verify_code(&app, &token, &totp_code(&enrolled.secret, app.now()))
            .await
            .status,
        200
    );

    // A new, valid code (next step) and a valid backup code: the token is what is refused.
    app.clock.advance(30);
    verify_code(&app, &token, &totp_code(&enrolled.secret, app.now()))
        .await
        .assert_problem(401, "invalid_two_factor_token");
    verify_code(&app, &token, &enrolled.backup_codes[0])
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
    let in_time = verify_code(&app, &early, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(in_time.status, 200, "still live at 299 s: {}", in_time.text);

    app.clock.advance(32);
    verify_code(&app, &late, &totp_code(&enrolled.secret, app.now()))
        .await
        .assert_problem(401, "invalid_two_factor_token");
    verify_code(&app, &late, &enrolled.backup_codes[0])
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
    let response = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "{}", response.text);
}
