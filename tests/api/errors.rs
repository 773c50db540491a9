//! Errors: every bad request gets an RFC 9457 problem document with a stable `code`,
//! and no error leaks internals or the submitted password. Also the liveness route.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse};

/// A password no error body may ever echo.
const SECRET: &str = "Sup3r-Secret-Pa55phrase";

/// A problem document with `type`, `title`, `status` and `code`, and nothing it must not say.
#[track_caller]
fn assert_clean_problem(response: &TestResponse, status: u16, code: &str) {
    response.assert_problem(status, code);
    for needle in ["SELECT", "sqlx", "panicked", "argon2", SECRET] {
        assert!(
            !response.text.contains(needle),
            "body mentions {needle:?}: {}",
            response.text
        );
    }
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> TestResponse {
    let mut request = app.client.post(app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    app.send(request).await
}

#[tokio::test]
async fn healthz_answers_200() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn malformed_json_is_400_malformed_json() {
    let app = TestApp::spawn().await;
    let bodies = [
        format!(r#"{{"email": "ann@example.com", "password": "{SECRET}""#),
        format!(r#"{{"email": "ann@example.com", "password": "{SECRET}",}}"#),
        "not json at all".to_owned(),
        String::new(),
    ];
    for body in bodies {
        let response = post_raw(
            &app,
            "/v1/auth/register",
            Some("application/json"),
            body.clone(),
        )
        .await;
        assert_clean_problem(&response, 400, "malformed_json");
    }
    // Nothing was registered by any of them.
    let login = app
        .post(
            "/v1/auth/login",
            json!({"email": "ann@example.com", "password": SECRET}),
            None,
        )
        .await;
    assert_clean_problem(&login, 401, "invalid_credentials");
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_415() {
    let app = TestApp::spawn().await;
    let body = format!(r#"{{"email": "ann@example.com", "password": "{SECRET}"}}"#);
    let text = post_raw(&app, "/v1/auth/register", Some("text/plain"), body.clone()).await;
    assert_clean_problem(&text, 415, "unsupported_media_type");
    let form = post_raw(
        &app,
        "/v1/auth/login",
        Some("application/x-www-form-urlencoded"),
        "email=a&password=b",
    )
    .await;
    assert_clean_problem(&form, 415, "unsupported_media_type");
    let untyped = post_raw(&app, "/v1/auth/register", None, body.clone()).await;
    assert_clean_problem(&untyped, 415, "unsupported_media_type");
    // The same body as JSON is accepted: the type was the only problem.
    let json = post_raw(&app, "/v1/auth/register", Some("application/json"), body).await;
    assert_eq!(json.status, 201, "{}", json.text);
}

#[tokio::test]
async fn a_body_over_64_kib_gets_413() {
    let app = TestApp::spawn().await;
    let huge =
        json!({"email": "ann@example.com", "password": SECRET, "userName": "x".repeat(64 * 1024)});
    let response = app.post("/v1/auth/register", huge, None).await;
    assert_clean_problem(&response, 413, "payload_too_large");

    let huge_login = json!({"email": "ann@example.com", "password": format!("{SECRET}{}", "y".repeat(70 * 1024))});
    let response = app.post("/v1/auth/login", huge_login, None).await;
    assert_clean_problem(&response, 413, "payload_too_large");

    // Exactly 64 KiB is read (and refused for its content, not its size).
    let overhead =
        r#"{"email":"ann@example.com","password":"","userName":""}"#.len() + SECRET.len();
    let exact = format!(
        r#"{{"email":"ann@example.com","password":"{SECRET}","userName":"{}"}}"#,
        "z".repeat(64 * 1024 - overhead)
    );
    assert_eq!(exact.len(), 64 * 1024);
    let response = post_raw(&app, "/v1/auth/register", Some("application/json"), exact).await;
    assert_clean_problem(&response, 400, "validation_failed");
    assert!(
        response.body["errors"]["userName"].is_array(),
        "{}",
        response.text
    );
}

#[tokio::test]
async fn unknown_routes_get_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;
    for path in ["/v1/auth/nope", "/nope", "/v1/auth/me/extra"] {
        let get = app.get(path, None).await;
        assert_clean_problem(&get, 404, "not_found");
        let post = app.post(path, json!({"password": SECRET}), None).await;
        assert_clean_problem(&post, 404, "not_found");
    }
    let get_login = app.get("/v1/auth/login", None).await;
    assert_clean_problem(&get_login, 405, "method_not_allowed");
    let allow = get_login.header("allow").unwrap_or_default();
    assert!(allow.contains("POST"), "Allow names POST: {allow:?}");
    let delete_register = app.delete("/v1/auth/register", None).await;
    assert_clean_problem(&delete_register, 405, "method_not_allowed");
    let post_me = app.post("/v1/auth/me", json!({}), None).await;
    assert_clean_problem(&post_me, 405, "method_not_allowed");
}

#[tokio::test]
async fn unknown_fields_on_v1_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/v1/auth/register",
            json!({"email": "ann@example.com", "password": SECRET, "isAdmin": true}),
            None,
        )
        .await;
    assert_clean_problem(&response, 400, "validation_failed");
    let errors = response.body["errors"].as_object().expect("errors object");
    assert!(
        errors.contains_key("isAdmin"),
        "the unknown field is named: {}",
        response.text
    );
    assert_eq!(
        errors.len(),
        1,
        "only the unknown field is wrong: {}",
        response.text
    );
    // Not created.
    let login = app
        .post(
            "/v1/auth/login",
            json!({"email": "ann@example.com", "password": SECRET}),
            None,
        )
        .await;
    assert_clean_problem(&login, 401, "invalid_credentials");

    let typo = app
        .post(
            "/v1/auth/login",
            json!({"email": "ann@example.com", "pasword": SECRET}),
            None,
        )
        .await;
    assert_clean_problem(&typo, 400, "validation_failed");
    assert!(typo.body["errors"]["pasword"].is_array(), "{}", typo.text);
    assert!(
        typo.body["errors"]["password"].is_array(),
        "the missing field too: {}",
        typo.text
    );
}

#[tokio::test]
async fn wrong_json_types_are_400() {
    let app = TestApp::spawn().await;
    let cases: [(Value, Option<&str>); 6] = [
        (json!({"email": 12345, "password": SECRET}), Some("email")),
        (
            json!({"email": "ann@example.com", "password": 12345678}),
            Some("password"),
        ),
        (
            json!({"email": ["ann@example.com"], "password": SECRET}),
            Some("email"),
        ),
        (
            json!({"email": "ann@example.com", "password": SECRET, "userName": {"a": 1}}),
            Some("userName"),
        ),
        (json!(["ann@example.com", SECRET]), None),
        (Value::Null, None),
    ];
    for (body, field) in cases {
        let response = app.post("/v1/auth/register", body.clone(), None).await;
        assert_clean_problem(&response, 400, "validation_failed");
        let errors = response.body["errors"]
            .as_object()
            .expect("per-field errors");
        assert!(!errors.is_empty(), "{body}: {}", response.text);
        if let Some(field) = field {
            assert!(
                errors.contains_key(field),
                "{body}: names {field}: {}",
                response.text
            );
        }
    }
    for body in [json!("a string"), json!(42), json!(true)] {
        let response = app.post("/v1/auth/login", body, None).await;
        assert_clean_problem(&response, 400, "validation_failed");
    }
    let refresh = app
        .post("/v1/auth/refresh", json!({"refreshToken": 42}), None)
        .await;
    assert_clean_problem(&refresh, 400, "validation_failed");
    assert!(
        refresh.body["errors"]["refreshToken"].is_array(),
        "{}",
        refresh.text
    );
}

#[tokio::test]
async fn auth_failures_are_problem_documents_too() {
    let app = TestApp::spawn().await;
    let me = app.get("/v1/auth/me", Some("garbage")).await;
    assert_clean_problem(&me, 401, "unauthorized");
    let login = app
        .post(
            "/v1/auth/login",
            json!({"email": "nobody@example.com", "password": SECRET}),
            None,
        )
        .await;
    assert_clean_problem(&login, 401, "invalid_credentials");
    let refresh = app
        .post("/v1/auth/refresh", json!({"refreshToken": SECRET}), None)
        .await;
    assert_clean_problem(&refresh, 401, "invalid_refresh_token");
    assert_eq!(app.register("ann@example.com", SECRET).await.status, 201);
    let taken = app.register("ann@example.com", SECRET).await;
    assert_clean_problem(&taken, 409, "email_taken");
}
