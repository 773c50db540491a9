//! The Sapfiai compatibility surface under `/authentication`: every endpoint's success
//! and documented failures, the exact key sets and value types of its envelopes, and the
//! rules it shares with `/v1` (replay, lockout, refresh-token rotation).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Enrolled, PASSWORD, TestApp, TestResponse, TestUser, totp_code, verify_code, wrong_code,
};

mod across_surfaces;
mod enable_2fa;
mod login;
mod refresh_token;
mod verify_2fa;

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

async fn two_factor_enabled(app: &TestApp, access: &str) -> bool {
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.status, 200, "{}", status.text);
    status.body["enabled"].as_bool().unwrap()
}
