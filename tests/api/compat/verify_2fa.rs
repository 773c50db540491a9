//! POST /authentication/verify-2fa: the second step, its failures, replay and lockout.

use super::*;

#[tokio::test]
async fn verify_2fa_answers_tokens_and_the_user() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let temp = compat_temp_token(&app, &user.email).await;
    let response = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    assert_signed_in(&response, SIGNED_IN_KEYS, "2FA verification successful");
    let body = &response.body;
    assert_compat_user(&body["user"], &user, true, app.now());
    assert_eq!(
        assert_rfc3339_utc(&body["refreshTokenExpiry"]),
        app.now() + 30 * 24 * 3600
    );

    // A real access token, carrying the second factor: a sensitive change needs no code.
    let access = body["token"].as_str().unwrap();
    let me = app.get("/v1/auth/me", Some(access)).await;
    assert_eq!(me.body["id"], user.id, "{}", me.text);
    let regenerated = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(access),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);

    // The temporary token is single use.
    app.clock.advance(30);
    let again = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    assert_failure(&again, 401, "2FA verification failed");
}

#[tokio::test]
async fn verify_2fa_wrong_code_answers_exactly_the_contract() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let temp = compat_temp_token(&app, &user.email).await;
    let response = verify_2fa(&app, &temp, &wrong_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 401, "{}", response.text);
    assert_json(&response);
    assert_eq!(
        response.body,
        json!({
            "success": false,
            "token": null,
            "refreshToken": null,
            "user": null,
            "message": "2FA verification failed",
            "errors": ["Invalid two-factor authentication code"],
        })
    );
    // The failure is recorded as a security event.
    let events = app
        .get("/v1/auth/security-events", Some(&user.access_token))
        .await;
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
async fn verify_2fa_code_must_be_exactly_six_digits() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let temp = compat_temp_token(&app, &user.email).await;
    let right = totp_code(&enrolled.secret, app.now());
    let cases = [
        json!({"token": temp, "code": "12345"}),
        json!({"token": temp, "code": "1234567"}),
        json!({"token": temp, "code": "12345a"}),
        json!({"token": temp, "code": format!(" {right}")}),
        json!({"token": temp, "code": "１２３４５６"}),
        json!({"token": temp, "code": enrolled.backup_codes[0]}),
        json!({"token": temp, "code": right.parse::<u64>().unwrap()}),
        json!({"token": temp, "code": ""}),
        json!({"token": temp}),
        json!({"token": temp, "code": null}),
    ];
    for body in &cases {
        let response = app
            .post("/authentication/verify-2fa", body.clone(), None)
            .await;
        let errors = assert_failure(&response, 400, "2FA verification failed");
        assert!(
            errors.iter().any(|e| e.contains("code")),
            "{body}: a clear message, got {errors:?}"
        );
    }
    let six = app
        .post(
            "/authentication/verify-2fa",
            json!({"token": temp, "code": "12345"}),
            None,
        )
        .await;
    let errors = assert_failure(&six, 400, "2FA verification failed");
    assert!(errors.iter().any(|e| e.contains("6 digits")), "{errors:?}");

    // None of them was a try: more than the lockout threshold of them, and the right
    // code on the same temporary token still works.
    let verified = verify_2fa(&app, &temp, &right).await;
    assert_signed_in(&verified, SIGNED_IN_KEYS, "2FA verification successful");
}

#[tokio::test]
async fn verify_2fa_refuses_a_bad_missing_used_or_expired_token() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let code = || totp_code(&enrolled.secret, app.now());

    let random = verify_2fa(&app, "not-a-real-token", &code()).await;
    let errors = assert_failure(&random, 401, "2FA verification failed");
    assert_eq!(errors, vec!["Invalid or expired two-factor token"]);

    let access = verify_2fa(&app, &user.access_token, &code()).await;
    assert_failure(&access, 401, "2FA verification failed");

    let missing = app
        .post("/authentication/verify-2fa", json!({"code": code()}), None)
        .await;
    let errors = assert_failure(&missing, 400, "2FA verification failed");
    assert!(errors.iter().any(|e| e.contains("token")), "{errors:?}");

    let temp = compat_temp_token(&app, &user.email).await;
    app.clock.advance(5 * 60 + 1);
    let expired = verify_2fa(&app, &temp, &code()).await;
    let errors = assert_failure(&expired, 401, "2FA verification failed");
    assert_eq!(errors, vec!["Invalid or expired two-factor token"]);

    // None of those reached the code check: the right code still works.
    let temp = compat_temp_token(&app, &user.email).await;
    let verified = verify_2fa(&app, &temp, &code()).await;
    assert_signed_in(&verified, SIGNED_IN_KEYS, "2FA verification successful");
}

#[tokio::test]
async fn verify_2fa_locks_after_five_failures_with_429_and_retry_after() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let temp = compat_temp_token(&app, &user.email).await;
    for _ in 0..5 {
        let wrong = verify_2fa(&app, &temp, &wrong_code(&enrolled.secret, app.now())).await;
        assert_failure(&wrong, 401, "2FA verification failed");
    }
    let temp = compat_temp_token(&app, &user.email).await;
    let locked = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    let errors = assert_failure(&locked, 429, "2FA verification failed");
    assert!(errors[0].contains("Try again"), "{errors:?}");
    let retry_after: i64 = locked
        .header("retry-after")
        .expect("Retry-After on 429")
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=15 * 60).contains(&retry_after),
        "Retry-After {retry_after}"
    );

    // After the lock, the right code works again.
    app.clock.advance(retry_after + 1);
    let temp = compat_temp_token(&app, &user.email).await;
    let verified = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    assert_signed_in(&verified, SIGNED_IN_KEYS, "2FA verification successful");
}

#[tokio::test]
async fn verify_2fa_answers_403_once_totp_is_suspended_and_a_backup_code_on_v1_lifts_it() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    // 100 consecutive failures, 5 per temporary token, waiting out each lock.
    for _ in 0..20 {
        let temp = compat_temp_token(&app, &user.email).await;
        for _ in 0..5 {
            let wrong = verify_2fa(&app, &temp, &wrong_code(&enrolled.secret, app.now())).await;
            assert_failure(&wrong, 401, "2FA verification failed");
        }
        app.clock.advance(24 * 3600 + 1);
    }
    let temp = compat_temp_token(&app, &user.email).await;
    let suspended = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    let errors = assert_failure(&suspended, 403, "2FA verification failed");
    assert_eq!(
        errors,
        vec!["Authenticator codes are suspended after too many failures"]
    );

    // Backup codes are taken on /v1; one lifts the suspension for both surfaces.
    let v1_token = app.two_factor_token(&user.email, PASSWORD).await;
    let backup = verify_code(&app, &v1_token, &enrolled.backup_codes[0]).await;
    assert_eq!(backup.status, 200, "{}", backup.text);
    let verified = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    assert_signed_in(&verified, SIGNED_IN_KEYS, "2FA verification successful");
}
