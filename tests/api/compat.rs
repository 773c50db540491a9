//! The Sapfiai compatibility surface under `/authentication`: every endpoint's success
//! and documented failures, the exact key sets and value types of its envelopes, and the
//! rules it shares with `/v1` (replay, lockout, refresh-token rotation).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Enrolled, PASSWORD, TestApp, TestResponse, TestUser, totp_code};

// ---------------------------------------------------------------------------------------
// Shapes of the contract.

/// `login` (success or second factor pending).
const LOGIN_KEYS: &[&str] = &[
    "errors",
    "message",
    "refreshToken",
    "refreshTokenExpiry",
    "requires2FA",
    "success",
    "token",
    "user",
];
/// `verify-2fa` and `refresh-token` success.
const SIGNED_IN_KEYS: &[&str] = &[
    "errors",
    "message",
    "refreshToken",
    "refreshTokenExpiry",
    "success",
    "token",
    "user",
];
/// Every failure of `login`, `verify-2fa` and `refresh-token`.
const FAILURE_KEYS: &[&str] = &[
    "errors",
    "message",
    "refreshToken",
    "success",
    "token",
    "user",
];
/// `user` inside the envelope.
const USER_KEYS: &[&str] = &[
    "email",
    "id",
    "lastLoginDate",
    "lastLoginIp",
    "phoneNumber",
    "twoFactorEnabled",
    "userName",
];
/// `enable-2fa`.
const RESULT_KEYS: &[&str] = &["error", "errors", "isSuccess", "succeeded"];
const RESULT_ERROR_KEYS: &[&str] = &["code", "description"];

/// Sorted keys of a JSON object (panics if it is not one).
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[track_caller]
fn assert_keys(value: &Value, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(keys(value), expected, "key set of {value}");
}

#[track_caller]
fn assert_rfc3339_utc(value: &Value) -> i64 {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 string, got {value}"));
    assert!(s.ends_with('Z'), "{s} is not UTC with a Z suffix");
    let parsed = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s} is not RFC 3339: {e}"));
    parsed.unix_timestamp()
}

#[track_caller]
fn assert_uuid(value: &Value) -> uuid::Uuid {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a UUID string, got {value}"));
    uuid::Uuid::parse_str(s).unwrap_or_else(|e| panic!("{s} is not a UUID: {e}"))
}

#[track_caller]
fn assert_json(response: &TestResponse) {
    assert!(
        response.content_type().starts_with("application/json"),
        "content type {:?}; body: {}",
        response.content_type(),
        response.text
    );
}

/// Checks the `user` object: exact keys and the type of every value.
#[track_caller]
fn assert_compat_user(user: &Value, expected: &TestUser, two_factor_enabled: bool, now: i64) {
    assert_keys(user, USER_KEYS);
    assert_eq!(assert_uuid(&user["id"]).to_string(), expected.id);
    assert_eq!(user["email"], expected.email);
    assert!(user["userName"].is_string(), "userName is a string: {user}");
    assert!(
        user["phoneNumber"].is_null() || user["phoneNumber"].is_string(),
        "phoneNumber: {user}"
    );
    assert_eq!(
        user["twoFactorEnabled"], two_factor_enabled,
        "twoFactorEnabled: {user}"
    );
    assert_eq!(
        assert_rfc3339_utc(&user["lastLoginDate"]),
        now,
        "lastLoginDate is this sign-in"
    );
    assert_eq!(user["lastLoginIp"], "127.0.0.1");
}

/// A successful sign-in envelope (`verify-2fa`, `refresh-token`, or `login` when
/// `requires2FA` is false): exact keys, types, and a token that works.
#[track_caller]
fn assert_signed_in(response: &TestResponse, keys: &[&str], message: &str) {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_json(response);
    let body = &response.body;
    assert_keys(body, keys);
    assert_eq!(body["success"], true);
    assert!(
        body["token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3),
        "token is a JWT: {body}"
    );
    assert!(
        body["refreshToken"].as_str().is_some_and(|t| !t.is_empty()),
        "refreshToken: {body}"
    );
    assert_rfc3339_utc(&body["refreshTokenExpiry"]);
    assert!(body["user"].is_object(), "user: {body}");
    assert_eq!(body["message"], message);
    assert_eq!(body["errors"], Value::Null);
}

/// The 6-key failure envelope with this status and message; returns its `errors`.
#[track_caller]
fn assert_failure(response: &TestResponse, status: u16, message: &str) -> Vec<String> {
    assert_eq!(
        response.status.as_u16(),
        status,
        "status; body: {}",
        response.text
    );
    assert_json(response);
    let body = &response.body;
    assert_keys(body, FAILURE_KEYS);
    assert_eq!(body["success"], false);
    assert_eq!(body["token"], Value::Null);
    assert_eq!(body["refreshToken"], Value::Null);
    assert_eq!(body["user"], Value::Null);
    assert_eq!(body["message"], message);
    let errors: Vec<String> = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors is an array: {body}"))
        .iter()
        .map(|e| {
            e.as_str()
                .unwrap_or_else(|| panic!("each error is a string: {body}"))
                .to_owned()
        })
        .collect();
    assert!(!errors.is_empty(), "a failure says why: {body}");
    errors
}

/// The `enable-2fa` result with this status; returns `error.code`.
#[track_caller]
fn assert_result(response: &TestResponse, status: u16, success: bool) -> String {
    assert_eq!(
        response.status.as_u16(),
        status,
        "status; body: {}",
        response.text
    );
    assert_json(response);
    let body = &response.body;
    assert_keys(body, RESULT_KEYS);
    assert_keys(&body["error"], RESULT_ERROR_KEYS);
    assert_eq!(body["isSuccess"], success, "{body}");
    assert_eq!(body["succeeded"], success, "{body}");
    assert!(body["errors"].is_array(), "errors is an array: {body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["description"].is_string(),
        "{body}"
    );
    if success {
        assert_eq!(body["error"], json!({"code": "", "description": ""}));
        assert_eq!(body["errors"], json!([]));
    } else {
        assert_ne!(body["error"]["code"], "", "a failure has a code: {body}");
        assert_ne!(
            body["error"]["description"], "",
            "a failure has a description: {body}"
        );
    }
    body["error"]["code"].as_str().unwrap().to_owned()
}

/// The exact problem document for a missing or bad bearer on `enable-2fa`.
#[track_caller]
fn assert_unauthorized(response: &TestResponse) {
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        response.text
    );
    assert_eq!(response.content_type(), "application/problem+json");
    assert_eq!(
        response.body,
        json!({
            "type": "https://tools.ietf.org/html/rfc7235#section-3.1",
            "title": "Unauthorized",
            "status": 401,
            "detail": "Authorization token is missing or invalid",
        })
    );
}

// ---------------------------------------------------------------------------------------
// Calls.

async fn compat_login(app: &TestApp, email: &str, password: &str) -> TestResponse {
    app.post(
        "/authentication/login",
        json!({"email": email, "password": password}),
        None,
    )
    .await
}

/// Password step on the compatibility surface; the temporary token.
async fn compat_temp_token(app: &TestApp, email: &str) -> String {
    let login = compat_login(app, email, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["requires2FA"], true, "{}", login.text);
    login.body["token"].as_str().unwrap().to_owned()
}

async fn verify_2fa(app: &TestApp, token: &str, code: &str) -> TestResponse {
    app.post(
        "/authentication/verify-2fa",
        json!({"code": code, "token": token}),
        None,
    )
    .await
}

/// A full sign-in on the compatibility surface with the current code.
async fn compat_sign_in_with_code(app: &TestApp, enrolled: &Enrolled) -> TestResponse {
    let token = compat_temp_token(app, &enrolled.user.email).await;
    let response = verify_2fa(app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "{}", response.text);
    response
}

async fn refresh(app: &TestApp, token: &str) -> TestResponse {
    app.post(
        "/authentication/refresh-token",
        json!({"refreshToken": token}),
        None,
    )
    .await
}

async fn enable_2fa(app: &TestApp, bearer: Option<&str>, body: Value) -> TestResponse {
    app.post("/authentication/enable-2fa", body, bearer).await
}

/// A 6-digit code that no step accepted around `now` would match.
fn wrong_code(secret: &str, now: i64) -> String {
    let near: Vec<String> = (-2..=2).map(|k| totp_code(secret, now + 30 * k)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

async fn two_factor_enabled(app: &TestApp, access: &str) -> bool {
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.status, 200, "{}", status.text);
    status.body["enabled"].as_bool().unwrap()
}

// ---------------------------------------------------------------------------------------
// POST /authentication/login

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

// ---------------------------------------------------------------------------------------
// POST /authentication/verify-2fa

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
    let backup = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": enrolled.backup_codes[0]}),
            Some(&v1_token),
        )
        .await;
    assert_eq!(backup.status, 200, "{}", backup.text);
    let verified = verify_2fa(&app, &temp, &totp_code(&enrolled.secret, app.now())).await;
    assert_signed_in(&verified, SIGNED_IN_KEYS, "2FA verification successful");
}

// ---------------------------------------------------------------------------------------
// POST /authentication/refresh-token

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

// ---------------------------------------------------------------------------------------
// POST /authentication/enable-2fa

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

// ---------------------------------------------------------------------------------------
// Across surfaces

#[tokio::test]
async fn a_code_used_on_one_surface_is_a_replay_on_the_other() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;

    // /v1 first, then the compatibility surface.
    let code = totp_code(&enrolled.secret, app.now());
    let v1_token = app.two_factor_token(&user.email, PASSWORD).await;
    let v1 = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": code}),
            Some(&v1_token),
        )
        .await;
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
    let replay = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": code}),
            Some(&v1_token),
        )
        .await;
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
        let response = app
            .post(
                "/v1/auth/2fa/verify",
                json!({"code": wrong}),
                Some(&v1_token),
            )
            .await;
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
    let v1 = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": right}),
            Some(&v1_token),
        )
        .await;
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
    let response = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": wrong}),
            Some(&v1_token),
        )
        .await;
    response.assert_problem(401, "invalid_code");

    let right = totp_code(&enrolled.secret, app.now());
    let temp = compat_temp_token(&app, &user.email).await;
    assert_failure(
        &verify_2fa(&app, &temp, &right).await,
        429,
        "2FA verification failed",
    );
    let v1 = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": right}),
            Some(&v1_token),
        )
        .await;
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
