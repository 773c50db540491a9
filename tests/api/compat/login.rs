//! POST /authentication/login: success, a pending second factor, and its documented failures.

use super::*;

#[tokio::test]
async fn login_without_2fa_answers_the_signed_in_envelope() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    app.clock.advance(5);
    let response = compat_login(&app, &user.email, PASSWORD).await;
    assert_signed_in(&response, LOGIN_KEYS, "Login successful");
    let body = &response.body;
    assert_eq!(body["requires2FA"], false);
    assert_compat_user(&body["user"], &user, false, app.now());
    let expiry = assert_rfc3339_utc(&body["refreshTokenExpiry"]);
    assert_eq!(
        expiry,
        app.now() + 30 * 24 * 3600,
        "refresh tokens live 30 days"
    );

    // The token is an access token of the account.
    let me = app.get("/v1/auth/me", body["token"].as_str()).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], user.id);
}

#[tokio::test]
async fn login_by_user_name_ignores_unknown_fields_and_shows_name_and_phone() {
    let app = TestApp::spawn().await;
    let email = format!("named-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = app
        .post(
            "/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "userName": "Ada.Lovelace", "phoneNumber": "+44 20 7946 0000"}),
            None,
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let response = app
        .post(
            "/authentication/login",
            json!({"userName": "ada.lovelace", "password": PASSWORD, "rememberMe": true}),
            None,
        )
        .await;
    assert_signed_in(&response, LOGIN_KEYS, "Login successful");
    let user = &response.body["user"];
    assert_keys(user, USER_KEYS);
    assert_eq!(user["id"], registered.body["id"]);
    assert_eq!(user["email"], email);
    assert_eq!(user["userName"], "Ada.Lovelace");
    assert_eq!(user["phoneNumber"], "+44 20 7946 0000");
    assert_eq!(user["twoFactorEnabled"], false);
}

#[tokio::test]
async fn login_with_2fa_answers_the_temporary_token_and_nulls() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let response = compat_login(&app, &user.email, PASSWORD).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_json(&response);
    let body = &response.body;
    assert_keys(body, LOGIN_KEYS);
    assert_eq!(body["success"], true);
    assert_eq!(body["requires2FA"], true);
    assert!(
        body["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["refreshToken"], Value::Null);
    assert_eq!(body["refreshTokenExpiry"], Value::Null);
    assert_eq!(body["user"], Value::Null);
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(body["errors"], Value::Null);

    // The temporary token is no access token...
    let temp = body["token"].as_str().unwrap();
    let me = app.get("/v1/auth/me", Some(temp)).await;
    me.assert_problem(401, "unauthorized");
    // ...but completes the sign-in with a code.
    let verified = verify_2fa(&app, temp, &totp_code(&enrolled.secret, app.now())).await;
    assert_signed_in(&verified, SIGNED_IN_KEYS, "2FA verification successful");
}

#[tokio::test]
async fn login_wrong_password_and_unknown_account_answer_the_same_failure() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let wrong = compat_login(&app, &user.email, "not the password").await;
    let errors = assert_failure(&wrong, 401, "Login failed");
    assert_eq!(errors, vec!["Invalid email or password"]);
    let unknown = compat_login(&app, "nobody@example.com", PASSWORD).await;
    assert_failure(&unknown, 401, "Login failed");
    assert_eq!(
        unknown.body, wrong.body,
        "an unknown account is not told apart"
    );
    let by_name = app
        .post(
            "/authentication/login",
            json!({"userName": "nobody-at-all", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(by_name.body, wrong.body);
}

#[tokio::test]
async fn login_with_bad_input_answers_400_in_the_failure_envelope() {
    let app = TestApp::spawn().await;
    let cases = [
        json!({"password": PASSWORD}),
        json!({"email": "someone@example.com"}),
        json!({"email": "someone@example.com", "password": ""}),
        json!({"email": "someone@example.com", "password": 12345678}),
        json!({"email": 7, "password": PASSWORD}),
        json!(["not", "an", "object"]),
    ];
    for body in cases {
        let response = app.post("/authentication/login", body.clone(), None).await;
        let errors = assert_failure(&response, 400, "Login failed");
        assert!(errors.iter().all(|e| !e.is_empty()), "{body}: {errors:?}");
    }
    let missing_email = app
        .post("/authentication/login", json!({"password": PASSWORD}), None)
        .await;
    let errors = assert_failure(&missing_email, 400, "Login failed");
    assert!(errors.iter().any(|e| e.contains("email")), "{errors:?}");

    let malformed = app
        .send(
            app.client
                .post(app.url("/authentication/login"))
                .header("content-type", "application/json")
                .body("{\"email\": "),
        )
        .await;
    assert_failure(&malformed, 400, "Login failed");

    let not_json = app
        .send(
            app.client
                .post(app.url("/authentication/login"))
                .header("content-type", "text/plain")
                .body("email=a&password=b"),
        )
        .await;
    assert_failure(&not_json, 415, "Login failed");
}
