//! Regenerating backup codes: a fresh second factor, and the old codes die.

use super::*;

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
    let first_codes: Vec<String> = backup_codes_in(&first.body);
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
    let second_codes: Vec<String> = backup_codes_in(&second.body);
    assert_eq!(second_codes.len(), 10);

    // Earlier codes are dead; the newest work.
    for old in [&enrolled.backup_codes[0], &first_codes[0]] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        verify_code(&app, &token, old)
            .await
            .assert_problem(401, "invalid_code");
    }
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let fresh = verify_code(&app, &token, &second_codes[8]).await;
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
        verify_code(&app, &token, &enrolled.backup_codes[0])
            .await
            .status,
        200,
        "old codes untouched by a refusal"
    );
}
