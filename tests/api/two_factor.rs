//! TOTP two-factor authentication over HTTP: `/v1/auth/2fa/*` (SalesOS), from setup to
//! disable, with codes computed independently (`totp-lite`) and time moved by the clock.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{
    Enrolled, PASSWORD, TestApp, TestResponse, TestUser, backup_codes_in, totp_code, verify_code,
    wrong_code,
};

mod backup_codes;
mod concurrency;
mod disable;
mod flow;
mod garbage;
mod regenerate;
mod replay;
mod setup;
mod shown_once;
mod status;
mod token;

// ---------------------------------------------------------------------------------------
// Steps the sections share
// ---------------------------------------------------------------------------------------

/// The decoded payload (middle part) of a JWT, read without any library.
fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("payload is base64url");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?} is not RFC 3339: {e}"))
        .unix_timestamp()
}

async fn status(app: &TestApp, access: &str) -> TestResponse {
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.status, 200, "status: {}", status.text);
    status
}

async fn setup(app: &TestApp, user: &TestUser) -> TestResponse {
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
        .await;
    assert_eq!(setup.status, 200, "setup: {}", setup.text);
    setup
}

/// Starts a setup and returns its pending secret.
async fn pending_secret(app: &TestApp, user: &TestUser) -> String {
    setup(app, user).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A full 2FA login at the current clock; returns (access token, refresh token).
async fn sign_in_with_code(app: &TestApp, enrolled: &Enrolled) -> (String, String) {
    let verified = app.login_with_code(enrolled).await;
    assert_eq!(verified.status, 200, "verify: {}", verified.text);
    (
        verified.body["accessToken"].as_str().unwrap().to_owned(),
        verified.body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

/// Values for a `code` field that are never a code: each must be a 400.
fn garbage_codes() -> Vec<Value> {
    vec![
        json!(""),
        json!("   "),
        json!("abcdef"),
        json!("12345"),
        json!("1234567"),
        json!("x".repeat(10 * 1024)),
        json!("1".repeat(10 * 1024)),
        json!("１２３４５６"),
        json!("١٢٣٤٥٦"),
        json!("123456\u{0}"),
        json!(123456),
        json!(12.5),
        json!(["123456"]),
        json!({ "code": "123456" }),
        json!(null),
        json!(true),
    ]
}

#[track_caller]
fn assert_validation_on(response: &TestResponse, field: &str) {
    response.assert_problem(400, "validation_failed");
    assert!(
        response.body["errors"][field].is_array(),
        "errors name the field {field}: {}",
        response.text.chars().take(500).collect::<String>()
    );
}
