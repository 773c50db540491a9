//! Garbage input: every malformed code is a validation failure that changes and spends nothing.

use super::*;

#[tokio::test]
async fn garbage_codes_on_verify_setup_are_validation_failures_and_change_nothing() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = pending_secret(&app, &user).await;

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
    let response = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let access = response.body["accessToken"].as_str().unwrap();
    assert_eq!(status(&app, access).await.body["backupCodesRemaining"], 10);
}

#[tokio::test]
async fn garbage_on_disable_is_a_validation_failure_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
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
