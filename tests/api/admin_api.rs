//! The admin API (`/admin/v1`) and the enforced second factor: keys and scopes on every
//! route, what each route does to the account, accounts created without a password,
//! disabled and deleted accounts, the separate `admin_listen` listener, and a login that
//! must enrol an authenticator first, on both API surfaces.

use serde_json::{Value, json};
use tessera::config::SecondFactorPolicy;

use crate::helpers::{PASSWORD, TestApp, TestResponse, TestUser, totp_code, wrong_code};

/// A request to the admin API with `key` as bearer (none when `None`).
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> TestResponse {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    app.send(request).await
}

/// Disables (`true`) or enables the account through the admin API with `key`.
async fn set_disabled(app: &TestApp, key: &str, user_id: &str, disabled: bool) -> TestResponse {
    let action = if disabled { "disable" } else { "enable" };
    let path = format!("/admin/v1/users/{user_id}/{action}");
    call(app, "POST", &path, None, Some(key)).await
}

/// The account's security events, read through the admin API.
async fn events_of(app: &TestApp, user_id: &str, key: &str) -> Vec<Value> {
    let response = call(
        app,
        "GET",
        &format!("/admin/v1/users/{user_id}/security-events?limit=100"),
        None,
        Some(key),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn the_admin_api_is_not_there_until_a_key_exists() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    for path in ["/admin/v1/users", &format!("/admin/v1/users/{}", user.id)] {
        call(&app, "GET", path, None, None)
            .await
            .assert_problem(404, "not_found");
        // An access token is not an admin key either.
        call(&app, "GET", path, None, Some(&user.access_token))
            .await
            .assert_problem(404, "not_found");
    }
    let key = app.admin_key("backend", &["admin"]).await;
    let missing = call(&app, "GET", "/admin/v1/users", None, None).await;
    missing.assert_problem(401, "invalid_api_key");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    call(
        &app,
        "GET",
        "/admin/v1/users",
        None,
        Some(&user.access_token),
    )
    .await
    .assert_problem(401, "invalid_api_key");
    let listed = call(&app, "GET", "/admin/v1/users", None, Some(&key)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    // Revoking the last key turns the API off again.
    tessera::service::admin_keys::revoke(&app.state, "backend")
        .await
        .unwrap();
    call(&app, "GET", "/admin/v1/users", None, Some(&key))
        .await
        .assert_problem(404, "not_found");
}

/// One admin route: its method, path, body, the scope it needs and the status it answers
/// with a valid key.
struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
    scope: &'static str,
    ok: u16,
}

#[tokio::test]
async fn every_route_wants_a_live_key_with_its_scope_and_records_the_key() {
    let app = TestApp::spawn().await;
    let reader = app.admin_key("reader", &["users:read"]).await;
    let writer = app.admin_key("writer", &["users:write"]).await;
    let admin = app.admin_key("root", &["admin"]).await;
    let revoked = app.admin_key("gone", &["admin"]).await;
    tessera::service::admin_keys::revoke(&app.state, "gone")
        .await
        .unwrap();
    let target = app.enrolled_user().await;
    let id = target.user.id.clone();
    let doomed = app.signed_in_user().await;
    let user = |suffix: &str| format!("/admin/v1/users/{id}{suffix}");
    let routes = vec![
        Route {
            method: "GET",
            path: "/admin/v1/users?search=user-".into(),
            body: None,
            scope: "users:read",
            ok: 200,
        },
        Route {
            method: "POST",
            path: "/admin/v1/users".into(),
            body: Some(json!({"email": "new@example.com"})),
            scope: "users:write",
            ok: 201,
        },
        Route {
            method: "GET",
            path: user(""),
            body: None,
            scope: "users:read",
            ok: 200,
        },
        Route {
            method: "GET",
            path: user("/security-events"),
            body: None,
            scope: "users:read",
            ok: 200,
        },
        Route {
            method: "GET",
            path: user("/trusted-devices"),
            body: None,
            scope: "users:read",
            ok: 200,
        },
        Route {
            method: "POST",
            path: user("/unlock"),
            body: None,
            scope: "users:write",
            ok: 204,
        },
        Route {
            method: "POST",
            path: user("/revoke-sessions"),
            body: Some(json!({})),
            scope: "users:write",
            ok: 200,
        },
        Route {
            method: "POST",
            path: user("/second-factor-requirement"),
            body: Some(json!({"required": true})),
            scope: "users:write",
            ok: 200,
        },
        Route {
            method: "POST",
            path: user("/disable"),
            body: None,
            scope: "users:write",
            ok: 200,
        },
        Route {
            method: "POST",
            path: user("/enable"),
            body: None,
            scope: "users:write",
            ok: 200,
        },
        Route {
            method: "POST",
            path: user("/reset-2fa"),
            body: None,
            scope: "users:write",
            ok: 204,
        },
        Route {
            method: "DELETE",
            path: format!("/admin/v1/users/{}", doomed.id),
            body: None,
            scope: "users:write",
            ok: 204,
        },
    ];
    for route in &routes {
        let at = format!("{} {}", route.method, route.path);
        let no_key = call(&app, route.method, &route.path, route.body.clone(), None).await;
        no_key.assert_problem(401, "invalid_api_key");
        let bad = call(
            &app,
            route.method,
            &route.path,
            route.body.clone(),
            Some(&revoked),
        )
        .await;
        bad.assert_problem(401, "invalid_api_key");
        let other_scope = if route.scope == "users:read" {
            &writer
        } else {
            &reader
        };
        let refused = call(
            &app,
            route.method,
            &route.path,
            route.body.clone(),
            Some(other_scope),
        )
        .await;
        refused.assert_problem(403, "insufficient_scope");
        assert!(refused.text.contains(route.scope), "{at}: {}", refused.text);
        let right_scope = if route.scope == "users:read" {
            &reader
        } else {
            &writer
        };
        let done = call(
            &app,
            route.method,
            &route.path,
            route.body.clone(),
            Some(right_scope),
        )
        .await;
        assert_eq!(done.status.as_u16(), route.ok, "{at}: {}", done.text);
        // `admin` holds both scopes.
        if route.method == "GET" {
            let again = call(&app, route.method, &route.path, None, Some(&admin)).await;
            assert_eq!(again.status, 200, "{at} with admin: {}", again.text);
        }
    }
    // The refusals changed nothing, and each call on the account is in its events, naming
    // the key that made it.
    let events = events_of(&app, &id, &admin).await;
    let by_key = |kind: &str, key_name: &str| {
        events
            .iter()
            .any(|e| e["type"] == kind && e["details"]["apiKeyName"] == key_name)
    };
    for (kind, key_name) in [
        ("account_viewed", "reader"),
        ("account_viewed", "root"),
        ("account_unlocked", "writer"),
        ("sessions_revoked", "writer"),
        ("second_factor_requirement_changed", "writer"),
        ("account_disabled", "writer"),
        ("account_enabled", "writer"),
        ("two_factor_reset", "writer"),
    ] {
        assert!(
            by_key(kind, key_name),
            "no {kind} by {key_name}: {events:#?}"
        );
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "account_disabled").count(),
        1,
        "one disable went through: {kinds:?}"
    );
    assert!(events.iter().all(|e| e["details"]["apiKeyName"] != "gone"));
    // The reset turned the second factor off; the deleted account is gone.
    let shown = call(&app, "GET", &user(""), None, Some(&reader)).await;
    assert_eq!(
        shown.body["secondFactor"]["enabled"], false,
        "{}",
        shown.text
    );
    assert_eq!(
        shown.body["secondFactor"]["required"], true,
        "{}",
        shown.text
    );
    call(
        &app,
        "GET",
        &format!("/admin/v1/users/{}", doomed.id),
        None,
        Some(&reader),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn unknown_accounts_and_bad_input_are_problem_documents() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["admin"]).await;
    let nobody = uuid::Uuid::new_v4();
    for (method, path) in [
        ("GET", format!("/admin/v1/users/{nobody}")),
        ("GET", "/admin/v1/users/not-a-uuid".to_owned()),
        ("DELETE", format!("/admin/v1/users/{nobody}")),
        ("POST", format!("/admin/v1/users/{nobody}/disable")),
        ("POST", format!("/admin/v1/users/{nobody}/reset-2fa")),
        ("POST", format!("/admin/v1/users/{nobody}/unlock")),
        ("POST", format!("/admin/v1/users/{nobody}/revoke-sessions")),
        ("GET", format!("/admin/v1/users/{nobody}/security-events")),
        ("GET", format!("/admin/v1/users/{nobody}/trusted-devices")),
    ] {
        call(&app, method, &path, None, Some(&key))
            .await
            .assert_problem(404, "not_found");
    }
    let bad = call(&app, "GET", "/admin/v1/users?limit=0", None, Some(&key)).await;
    bad.assert_problem(400, "validation_failed");
    let bad = call(
        &app,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": "not an email", "password": "short", "extra": 1})),
        Some(&key),
    )
    .await;
    bad.assert_problem(400, "validation_failed");
    for field in ["email", "password", "extra"] {
        assert!(
            bad.body["errors"][field].is_array(),
            "{field}: {}",
            bad.text
        );
    }
    let user = app.signed_in_user().await;
    let taken = call(
        &app,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": user.email})),
        Some(&key),
    )
    .await;
    taken.assert_problem(409, "email_taken");
}

#[tokio::test]
async fn users_are_listed_in_pages_and_found_by_search() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["users:read"]).await;
    let mut emails = Vec::new();
    for i in 0..5 {
        let email = format!("page{i}_x@example.com");
        assert_eq!(app.register(&email, PASSWORD).await.status, 201);
        emails.push(email);
        app.clock.advance(1);
    }
    app.register("other@example.com", PASSWORD).await;
    let first = call(
        &app,
        "GET",
        "/admin/v1/users?search=PAGE&limit=2",
        None,
        Some(&key),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let listed = |r: &TestResponse| -> Vec<String> {
        r.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&first), emails[..2]);
    assert_eq!(first.body["nextOffset"], 2);
    let last = call(
        &app,
        "GET",
        "/admin/v1/users?search=page&limit=2&offset=4",
        None,
        Some(&key),
    )
    .await;
    assert_eq!(listed(&last), emails[4..]);
    assert_eq!(last.body["nextOffset"], Value::Null);
    // `_` is a character to find, not a pattern.
    let underscore = call(&app, "GET", "/admin/v1/users?search=4_", None, Some(&key)).await;
    assert_eq!(listed(&underscore), vec![emails[4].clone()]);
    let all = call(&app, "GET", "/admin/v1/users", None, Some(&key)).await;
    assert_eq!(all.body["users"].as_array().unwrap().len(), 6);
    assert_eq!(all.body["users"][0]["disabled"], false);
}

#[tokio::test]
async fn one_user_shows_second_factor_locks_sessions_and_devices() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["admin"]).await;
    let enrolled = app.enrolled_user().await;
    // A wrong code, and a trusted device from a full login.
    let token = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    crate::helpers::verify_code(&app, &token, &wrong).await;
    let trust = json!({"trustDevice": {"deviceName": "Laptop", "deviceType": "desktop",
        "deviceFingerprint": "fp-1"}});
    let trusted = app.login_with_code_and(&enrolled, trust).await;
    assert_eq!(trusted.status, 200, "{}", trusted.text);
    let shown = call(
        &app,
        "GET",
        &format!("/admin/v1/users/{}", enrolled.user.id),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    let body = &shown.body;
    assert_eq!(body["email"], enrolled.user.email);
    assert_eq!(body["secondFactor"]["enabled"], true);
    assert_eq!(
        body["secondFactor"]["methods"],
        json!(["totp", "backup_code"])
    );
    assert_eq!(body["secondFactor"]["backupCodesRemaining"], 10);
    assert_eq!(body["sessions"], 2, "{}", shown.text);
    assert_eq!(body["trustedDevices"], 1);
    assert_eq!(body["locks"]["totpSuspended"], false);
    assert_eq!(body["disabled"], false);
    let devices = call(
        &app,
        "GET",
        &format!("/admin/v1/users/{}/trusted-devices", enrolled.user.id),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(devices.body[0]["deviceName"], "Laptop", "{}", devices.text);
    // No secret, hash or code in any of it.
    for text in [&shown.text, &devices.text] {
        for secret in [&enrolled.secret, &enrolled.backup_codes[0]] {
            assert!(!text.contains(secret.as_str()));
        }
        assert!(!text.contains("argon2"));
    }
    // The owner sees the operator's reads among their own events.
    let own = app
        .get(
            "/v1/auth/security-events",
            Some(&enrolled.user.access_token),
        )
        .await;
    assert!(
        own.body
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "account_viewed" && e["details"]["apiKeyName"] == "backend"),
        "{}",
        own.text
    );
}

#[tokio::test]
async fn unlock_clears_a_locked_second_factor() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["users:write"]).await;
    let enrolled = app.enrolled_user().await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    for _ in 0..5 {
        let token = app
            .two_factor_token(&enrolled.user.email, &enrolled.user.password)
            .await;
        crate::helpers::verify_code(&app, &token, &wrong).await;
    }
    let locked = app.login_with_code(&enrolled).await;
    locked.assert_problem(429, "second_factor_locked");
    let unlocked = call(
        &app,
        "POST",
        &format!("/admin/v1/users/{}/unlock", enrolled.user.id),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(unlocked.status, 204, "{}", unlocked.text);
    app.clock.advance(30);
    let signed_in = app.login_with_code(&enrolled).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
}

#[tokio::test]
async fn revoking_sessions_signs_the_user_out_everywhere() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["users:write"]).await;
    let user = app.signed_in_user().await;
    let revoked = call(
        &app,
        "POST",
        &format!("/admin/v1/users/{}/revoke-sessions", user.id),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(revoked.body["revoked"], 1, "{}", revoked.text);
    app.get("/v1/auth/me", Some(&user.access_token))
        .await
        .assert_problem(401, "unauthorized");
    app.post(
        "/v1/auth/refresh",
        json!({"refreshToken": user.refresh_token}),
        None,
    )
    .await
    .assert_problem(401, "invalid_refresh_token");
}

#[tokio::test]
async fn an_account_created_without_a_password_sets_it_with_its_link_once() {
    let app = TestApp::spawn_with(|c| c.allow_registration = false).await;
    let key = app.admin_key("backend", &["users:write"]).await;
    let created = call(
        &app,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": "Bea@Example.com", "userName": "bea"})),
        Some(&key),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["user"]["email"], "bea@example.com");
    let token = created.body["setPasswordToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let expiry = crate::helpers::unix_time(&created.body["setPasswordTokenExpiry"]);
    assert_eq!(expiry, app.now() + 72 * 3600);
    // No password works before it is set.
    app.login("bea@example.com", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    // A weak password is refused without spending the token.
    let weak = app
        .post(
            "/v1/auth/set-password",
            json!({"token": token, "newPassword": "password"}),
            None,
        )
        .await;
    weak.assert_problem(400, "validation_failed");
    assert!(weak.body["errors"]["newPassword"].is_array());
    let set = app
        .post(
            "/v1/auth/set-password",
            json!({"token": token, "newPassword": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.text);
    let login = app.login("bea@example.com", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    // Her log: created by the key, a login that failed before she had a password, then the
    // password set from her own address.
    let events = app
        .get(
            "/v1/auth/security-events",
            Some(login.body["accessToken"].as_str().unwrap()),
        )
        .await;
    let kinds: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "login_succeeded",
            "password_set",
            "login_failed",
            "account_created"
        ]
    );
    let created_event = &events.body[3];
    assert_eq!(created_event["details"]["apiKeyName"], "backend");
    assert_eq!(created_event["details"]["withPassword"], false);
    assert_eq!(events.body[1]["ipAddress"], "127.0.0.1");
    let again = app
        .post(
            "/v1/auth/set-password",
            json!({"token": token, "newPassword": "another good passphrase 42"}),
            None,
        )
        .await;
    again.assert_problem(401, "invalid_set_password_token");

    // An expired link is refused.
    let other = call(
        &app,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": "cy@example.com"})),
        Some(&key),
    )
    .await;
    let token = other.body["setPasswordToken"].as_str().unwrap().to_owned();
    app.clock.advance(72 * 3600 + 1);
    app.post(
        "/v1/auth/set-password",
        json!({"token": token, "newPassword": PASSWORD}),
        None,
    )
    .await
    .assert_problem(401, "invalid_set_password_token");

    // With a password: signs in at once, and no link.
    let with_password = call(
        &app,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": "dee@example.com", "password": PASSWORD})),
        Some(&key),
    )
    .await;
    assert_eq!(with_password.status, 201, "{}", with_password.text);
    assert!(with_password.body.get("setPasswordToken").is_none());
    assert_eq!(app.login("dee@example.com", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_or_refresh_until_enabled() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["users:write"]).await;
    let user = app.signed_in_user().await;
    let enrolled = app.enrolled_user().await;
    let pending = app
        .two_factor_token(&enrolled.user.email, &enrolled.user.password)
        .await;
    for id in [&user.id, &enrolled.user.id] {
        let disabled = set_disabled(&app, &key, id, true).await;
        assert_eq!(disabled.body["changed"], true, "{}", disabled.text);
    }
    // Existing sessions and pending second steps are gone.
    app.get("/v1/auth/me", Some(&user.access_token))
        .await
        .assert_problem(401, "unauthorized");
    app.post(
        "/v1/auth/refresh",
        json!({"refreshToken": user.refresh_token}),
        None,
    )
    .await
    .assert_problem(401, "invalid_refresh_token");
    let code = totp_code(&enrolled.secret, app.now());
    crate::helpers::verify_code(&app, &pending, &code)
        .await
        .assert_problem(401, "invalid_two_factor_token");
    // The right password says so; a wrong one says nothing more than usual.
    app.login(&user.email, PASSWORD)
        .await
        .assert_problem(403, "account_disabled");
    app.login(&user.email, "not the password at all")
        .await
        .assert_problem(401, "invalid_credentials");
    app.login(&enrolled.user.email, PASSWORD)
        .await
        .assert_problem(403, "account_disabled");
    let compat = app
        .post(
            "/authentication/login",
            json!({"email": user.email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(compat.status, 403, "{}", compat.text);
    assert_eq!(compat.body["success"], false);
    // Disabling twice changes nothing more.
    let again = call(
        &app,
        "POST",
        &format!("/admin/v1/users/{}/disable", user.id),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(again.body["changed"], false);

    let enabled = call(
        &app,
        "POST",
        &format!("/admin/v1/users/{}/enable", user.id),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(enabled.body["changed"], true, "{}", enabled.text);
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": login.body["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
}

/// Rows of `table` that belong to `user_id`, counted straight in the database.
async fn rows_of(app: &TestApp, table: &str, user_id: uuid::Uuid) -> i64 {
    let sql = match table {
        "refresh_tokens" => "SELECT COUNT(*) FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE s.user_id = $1".to_owned(),
        "users" => "SELECT COUNT(*) FROM users WHERE id = $1".to_owned(),
        _ => format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1"),
    };
    let mut conn = app.state.db.read().await.unwrap();
    tessera::db::run!(conn, e => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(user_id).fetch_one(&mut *e).await)
    .unwrap()
}

#[tokio::test]
async fn a_deleted_account_is_gone_with_everything_it_owned() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["admin"]).await;
    let enrolled = app.enrolled_user().await;
    let id = uuid::Uuid::parse_str(&enrolled.user.id).unwrap();
    let full = app.login_with_code(&enrolled).await;
    assert_eq!(full.status, 200, "{}", full.text);
    let tables = [
        "users",
        "sessions",
        "refresh_tokens",
        "totp_credentials",
        "backup_codes",
        "security_events",
    ];
    for table in tables {
        assert!(rows_of(&app, table, id).await > 0, "{table} before");
    }
    let deleted = call(
        &app,
        "DELETE",
        &format!("/admin/v1/users/{id}"),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for table in tables
        .into_iter()
        .chain(["trusted_devices", "two_factor_challenges"])
    {
        assert_eq!(rows_of(&app, table, id).await, 0, "{table} after");
    }
    call(
        &app,
        "GET",
        &format!("/admin/v1/users/{id}"),
        None,
        Some(&key),
    )
    .await
    .assert_problem(404, "not_found");
    call(
        &app,
        "DELETE",
        &format!("/admin/v1/users/{id}"),
        None,
        Some(&key),
    )
    .await
    .assert_problem(404, "not_found");
    app.login(&enrolled.user.email, PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    app.get(
        "/v1/auth/me",
        Some(full.body["accessToken"].as_str().unwrap()),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.post(
        "/v1/auth/refresh",
        json!({"refreshToken": full.body["refreshToken"]}),
        None,
    )
    .await
    .assert_problem(401, "invalid_refresh_token");
    // The email is free again.
    assert_eq!(
        app.register(&enrolled.user.email, PASSWORD).await.status,
        201
    );
}

#[tokio::test]
async fn admin_listen_serves_the_admin_api_apart_from_the_public_listener() {
    let app = TestApp::spawn_with(|c| c.admin_listen = Some("127.0.0.1:0".into())).await;
    let key = app.admin_key("backend", &["users:read"]).await;
    let admin = app.admin_address.clone().expect("admin listener");
    app.get("/admin/v1/users", Some(&key))
        .await
        .assert_problem(404, "not_found");
    let listed = app
        .send(
            app.client
                .get(format!("{admin}/admin/v1/users"))
                .bearer_auth(&key),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    // Only the admin API is there.
    let other = app
        .send(app.client.get(format!("{admin}/v1/auth/me")))
        .await;
    other.assert_problem(404, "not_found");
    let unauthenticated = app
        .send(app.client.get(format!("{admin}/admin/v1/users")))
        .await;
    unauthenticated.assert_problem(401, "invalid_api_key");
}

#[tokio::test]
async fn keys_are_made_listed_and_revoked_from_the_command_line() {
    let app = TestApp::spawn().await;
    let out = tessera::admin::create_api_key(&app.state, "reporting", &["users:read".into()])
        .await
        .unwrap();
    let key = out
        .lines()
        .find(|l| l.starts_with("tsk_"))
        .expect("the key is printed")
        .to_owned();
    assert!(out.contains("users:read"), "{out}");
    let listed = tessera::admin::list_api_keys(&app.state).await.unwrap();
    assert!(
        listed.contains("reporting") && !listed.contains(&key),
        "{listed}"
    );
    // Stored only as a hash.
    let mut conn = app.state.db.read().await.unwrap();
    let stored: Vec<Vec<u8>> = tessera::db::run!(conn, e => sqlx::query_scalar::<_, Vec<u8>>("SELECT key_hash FROM admin_api_keys")
        .fetch_all(&mut *e).await)
    .unwrap();
    drop(conn);
    assert_eq!(stored, vec![tessera::crypto::token_hash(&key)]);
    assert_eq!(
        call(&app, "GET", "/admin/v1/users", None, Some(&key))
            .await
            .status,
        200
    );
    assert!(
        tessera::admin::create_api_key(&app.state, "x", &["users:everything".into()])
            .await
            .is_err()
    );
    tessera::admin::revoke_api_key(&app.state, "reporting")
        .await
        .unwrap();
    assert!(
        tessera::admin::revoke_api_key(&app.state, "reporting")
            .await
            .is_err()
    );
    let listed = tessera::admin::list_api_keys(&app.state).await.unwrap();
    let row = listed.lines().find(|l| l.contains("reporting")).unwrap();
    assert!(
        row.trim_end().ends_with('Z'),
        "revoked, with its time: {row}"
    );
    // No live key left: the API is off.
    call(&app, "GET", "/admin/v1/users", None, Some(&key))
        .await
        .assert_problem(404, "not_found");
}

/// Enrols through the enrolment token of a login that answered `requiresEnrollment`, and
/// returns the `verify-setup` answer (signed in) and the secret.
async fn enrol_with(app: &TestApp, enrolment_token: &str) -> (TestResponse, String) {
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(enrolment_token))
        .await;
    assert_eq!(setup.status, 200, "setup: {}", setup.text);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    // A wrong code first: refused, and the token still works.
    let wrong = wrong_code(&secret, app.now());
    app.post(
        "/v1/auth/2fa/verify-setup",
        json!({"code": wrong}),
        Some(enrolment_token),
    )
    .await
    .assert_problem(401, "invalid_code");
    let code = totp_code(&secret, app.now());
    let done = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": code}),
            Some(enrolment_token),
        )
        .await;
    (done, secret)
}

#[tokio::test]
async fn require_all_makes_a_v1_login_enrol_before_it_signs_in() {
    let app = TestApp::spawn_with(|c| c.require_second_factor = SecondFactorPolicy::All).await;
    let email = "erin@example.com";
    assert_eq!(app.register(email, PASSWORD).await.status, 201);
    let login = app.login(email, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["requires2FA"], true);
    assert_eq!(login.body["requiresEnrollment"], true);
    assert_eq!(login.body["methods"], json!(["totp", "passkey"]));
    assert!(login.body.get("accessToken").is_none(), "{}", login.text);
    let token = login.body["enrollmentToken"].as_str().unwrap().to_owned();

    // The enrolment token is good for nothing else.
    app.get("/v1/auth/me", Some(&token))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/v1/auth/2fa/status", Some(&token))
        .await
        .assert_problem(401, "unauthorized");
    crate::helpers::verify_code(&app, &token, "123456")
        .await
        .assert_problem(401, "invalid_two_factor_token");
    let compat = app
        .post(
            "/authentication/verify-2fa",
            json!({"code": "123456", "token": token}),
            None,
        )
        .await;
    assert_eq!(compat.status, 401, "{}", compat.text);

    let (done, secret) = enrol_with(&app, &token).await;
    assert_eq!(done.status, 200, "verify-setup: {}", done.text);
    assert_eq!(done.body["enabled"], true);
    assert_eq!(done.body["backupCodes"].as_array().unwrap().len(), 10);
    assert_eq!(done.body["tokenType"], "Bearer");
    assert_eq!(done.body["user"]["twoFactorEnabled"], true);
    let access = done.body["accessToken"].as_str().unwrap();
    let me = app.get("/v1/auth/me", Some(access)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let events = app.get("/v1/auth/security-events", Some(access)).await;
    assert_eq!(events.body[0]["type"], "login_succeeded", "{}", events.text);
    assert_eq!(events.body[0]["details"]["method"], "enrolment");
    assert_eq!(events.body[1]["type"], "two_factor_enabled");
    // A full session: the second factor is fresh, so a sensitive change needs no code.
    let codes = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(access),
        )
        .await;
    assert_eq!(codes.status, 200, "{}", codes.text);
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": done.body["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);

    // The token is spent.
    app.post("/v1/auth/2fa/setup", json!({}), Some(&token))
        .await
        .assert_problem(401, "unauthorized");
    // The next login asks for the second factor as usual.
    app.clock.advance(30);
    let next = app.login(email, PASSWORD).await;
    assert_eq!(next.body["requires2FA"], true);
    assert!(
        next.body.get("requiresEnrollment").is_none(),
        "{}",
        next.text
    );
    let two_factor_token = next.body["twoFactorToken"].as_str().unwrap();
    let code = totp_code(&secret, app.now());
    let verified = crate::helpers::verify_code(&app, two_factor_token, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
}

/// An operator disables an account in the middle of its enforced enrolment: the
/// enrolment token (already used for `setup`) cannot finish it, not even with the right
/// code, and stays dead when the account is enabled again; a new login starts over.
#[tokio::test]
async fn disabling_an_account_ends_its_enrolment_token_mid_enrolment() {
    let app = TestApp::spawn_with(|c| c.require_second_factor = SecondFactorPolicy::All).await;
    let key = app
        .admin_key("backend", &["users:read", "users:write"])
        .await;
    let email = "enzo@example.com";
    let registered = app.register(email, PASSWORD).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let id = registered.body["id"].as_str().unwrap().to_owned();
    let login = app.login(email, PASSWORD).await;
    let token = login.body["enrollmentToken"].as_str().unwrap().to_owned();
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&token))
        .await;
    assert_eq!(setup.status, 200, "setup: {}", setup.text);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();

    let code = totp_code(&secret, app.now());
    let finish_enrolment = || {
        app.post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": code}),
            Some(&token),
        )
    };
    let disabled = set_disabled(&app, &key, &id, true).await;
    assert_eq!(disabled.body["changed"], true, "{}", disabled.text);
    let refused = finish_enrolment().await;
    assert!(
        refused.status == 401 || refused.status == 403,
        "{}",
        refused.text
    );
    assert!(
        refused.body.get("accessToken").is_none(),
        "{}",
        refused.text
    );

    let enabled = set_disabled(&app, &key, &id, false).await;
    assert_eq!(enabled.body["changed"], true, "{}", enabled.text);
    finish_enrolment().await.assert_problem(401, "unauthorized");
    let status = call(
        &app,
        "GET",
        &format!("/admin/v1/users/{id}"),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(
        status.body["secondFactor"]["enabled"], false,
        "{}",
        status.text
    );
    // Back to the start: the next login must enrol again.
    let again = app.login(email, PASSWORD).await;
    assert_eq!(again.body["requiresEnrollment"], true, "{}", again.text);
}

#[tokio::test]
async fn an_enrolment_token_dies_after_too_many_wrong_codes_and_with_time() {
    let app = TestApp::spawn_with(|c| c.require_second_factor = SecondFactorPolicy::All).await;
    assert_eq!(app.register("fay@example.com", PASSWORD).await.status, 201);
    let token = app.login("fay@example.com", PASSWORD).await.body["enrollmentToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = app.exhaust_enrolment_token(&token).await;
    let code = totp_code(&secret, app.now());
    app.post(
        "/v1/auth/2fa/verify-setup",
        json!({"code": code}),
        Some(&token),
    )
    .await
    .assert_problem(401, "unauthorized");

    let token = app.login("fay@example.com", PASSWORD).await.body["enrollmentToken"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(10 * 60 + 1);
    app.post("/v1/auth/2fa/setup", json!({}), Some(&token))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_flagged_account_enrols_from_the_sapfiai_login_to_a_full_session() {
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["users:write"]).await;
    let user: TestUser = app.signed_in_user().await;
    // Not required yet: a password login signs in.
    assert_eq!(
        app.login(&user.email, PASSWORD).await.body["requires2FA"],
        false
    );
    let flagged = call(
        &app,
        "POST",
        &format!("/admin/v1/users/{}/second-factor-requirement", user.id),
        Some(json!({"required": true})),
        Some(&key),
    )
    .await;
    assert_eq!(flagged.body["changed"], true, "{}", flagged.text);

    let login = app
        .post(
            "/authentication/login",
            json!({"email": user.email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["success"], true);
    assert_eq!(login.body["requires2FA"], true);
    assert_eq!(login.body["requiresEnrollment"], true);
    assert_eq!(login.body["refreshToken"], Value::Null);
    assert_eq!(login.body["user"], Value::Null);
    let token = login.body["token"].as_str().unwrap().to_owned();
    // Sapfiai's second step does not take it.
    let refused = app
        .post(
            "/authentication/verify-2fa",
            json!({"code": "123456", "token": token}),
            None,
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);

    let (done, _) = enrol_with(&app, &token).await;
    assert_eq!(done.status, 200, "{}", done.text);
    // The session works on the Sapfiai surface too.
    let refreshed = app
        .post(
            "/authentication/refresh-token",
            json!({"refreshToken": done.body["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(refreshed.body["success"], true);
    assert_eq!(refreshed.body["user"]["twoFactorEnabled"], true);

    // Lifting the requirement does not turn 2FA off; an account that never enrolled signs
    // in with its password again.
    let other = app.signed_in_user().await;
    for required in [true, false] {
        call(
            &app,
            "POST",
            &format!("/admin/v1/users/{}/second-factor-requirement", other.id),
            Some(json!({"required": required})),
            Some(&key),
        )
        .await;
    }
    let plain = app.login(&other.email, PASSWORD).await;
    assert_eq!(plain.body["requires2FA"], false, "{}", plain.text);
}

#[tokio::test]
async fn a_signed_in_enrolment_is_unchanged_by_the_requirement() {
    // An account signed in before it was flagged enrols with its access token as before:
    // the backup codes, and no tokens.
    let app = TestApp::spawn().await;
    let key = app.admin_key("backend", &["users:write"]).await;
    let user = app.signed_in_user().await;
    call(
        &app,
        "POST",
        &format!("/admin/v1/users/{}/second-factor-requirement", user.id),
        Some(json!({"required": true})),
        Some(&key),
    )
    .await;
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
        .await;
    let code = totp_code(setup.body["secret"].as_str().unwrap(), app.now());
    let done = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": code}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["backupCodes"].as_array().unwrap().len(), 10);
    assert!(done.body.get("accessToken").is_none(), "{}", done.text);
}

/// What no account's events can hold (a listing, a deletion) is in the audit log, with the
/// key, the address and, for a deletion, the account's id only; only an `admin` key reads
/// it, and a page is bounded.
#[tokio::test]
async fn the_audit_log_keeps_listings_and_deletions_for_admin_keys_only() {
    let app = TestApp::spawn().await;
    let reader = app.admin_key("reader", &["users:read"]).await;
    let writer = app.admin_key("writer", &["users:write"]).await;
    let root = app.admin_key("root", &["admin"]).await;
    let doomed = app.signed_in_user().await;
    let listed = call(
        &app,
        "GET",
        "/admin/v1/users?search=user-",
        None,
        Some(&reader),
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let deleted = call(
        &app,
        "DELETE",
        &format!("/admin/v1/users/{}", doomed.id),
        None,
        Some(&writer),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    call(&app, "GET", "/admin/v1/audit", None, None)
        .await
        .assert_problem(401, "invalid_api_key");
    for key in [&reader, &writer] {
        call(&app, "GET", "/admin/v1/audit", None, Some(key))
            .await
            .assert_problem(403, "insufficient_scope");
    }
    call(&app, "GET", "/admin/v1/audit?limit=101", None, Some(&root))
        .await
        .assert_problem(400, "validation_failed");
    let log = call(&app, "GET", "/admin/v1/audit", None, Some(&root)).await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries = log.body.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", log.text);
    // Newest first.
    assert_eq!(entries[0]["action"], "account_deleted");
    assert_eq!(entries[0]["apiKeyName"], "writer");
    assert_eq!(entries[0]["targetUserId"], doomed.id.as_str());
    assert_eq!(entries[0]["ipAddress"], "127.0.0.1");
    assert!(
        !log.text.contains(&doomed.email),
        "nothing personal outlives the account: {}",
        log.text
    );
    assert_eq!(entries[1]["action"], "users_listed");
    assert_eq!(entries[1]["apiKeyName"], "reader");
    assert_eq!(entries[1]["details"]["search"], "user-");
    let second = call(
        &app,
        "GET",
        "/admin/v1/audit?limit=1&offset=1",
        None,
        Some(&root),
    )
    .await;
    assert_eq!(second.body.as_array().unwrap().len(), 1);
    assert_eq!(second.body[0]["action"], "users_listed");
}
