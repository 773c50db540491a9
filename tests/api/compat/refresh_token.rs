//! POST /authentication/refresh-token: rotation and its failures.

use super::*;

#[tokio::test]
async fn refresh_token_rotates_and_answers_the_signed_in_envelope() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let signed_in = compat_sign_in_with_code(&app, &enrolled).await;
    let first = signed_in.body["refreshToken"].as_str().unwrap().to_owned();
    let first_expiry = signed_in.body["refreshTokenExpiry"].clone();

    app.clock.advance(60);
    let response = refresh(&app, &first).await;
    assert_signed_in(&response, SIGNED_IN_KEYS, "Token refreshed successfully");
    let body = &response.body;
    assert_keys(&body["user"], USER_KEYS);
    assert_eq!(body["user"]["id"], user.id);
    assert_eq!(body["user"]["twoFactorEnabled"], true);
    assert_eq!(
        body["refreshTokenExpiry"], first_expiry,
        "the session's expiry is kept"
    );
    let second = body["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "refresh tokens rotate");
    let me = app.get("/v1/auth/me", body["token"].as_str()).await;
    assert_eq!(me.status, 200, "{}", me.text);

    // The retired token fails, and presenting it ends the whole session.
    let replay = refresh(&app, &first).await;
    let errors = assert_failure(&replay, 401, "Token refresh failed");
    assert_eq!(errors, vec!["Invalid or expired refresh token"]);
    let after_theft = refresh(&app, &second).await;
    assert_failure(&after_theft, 401, "Token refresh failed");
}

#[tokio::test]
async fn refresh_token_failures_answer_the_failure_envelope() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;

    let unknown = refresh(&app, "no-such-refresh-token").await;
    let errors = assert_failure(&unknown, 401, "Token refresh failed");
    assert_eq!(errors, vec!["Invalid or expired refresh token"]);

    // An access token is no refresh token.
    let access = refresh(&app, &user.access_token).await;
    assert_failure(&access, 401, "Token refresh failed");

    for body in [
        json!({}),
        json!({"refreshToken": ""}),
        json!({"refreshToken": 42}),
        json!({"refreshToken": null}),
    ] {
        let response = app
            .post("/authentication/refresh-token", body.clone(), None)
            .await;
        let errors = assert_failure(&response, 400, "Token refresh failed");
        assert!(
            errors.iter().any(|e| e.contains("refreshToken")),
            "{body}: {errors:?}"
        );
    }

    app.clock.advance(30 * 24 * 3600 + 1);
    let expired = refresh(&app, &user.refresh_token).await;
    assert_failure(&expired, 401, "Token refresh failed");
}
