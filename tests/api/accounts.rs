//! Accounts: registration, login by email and by user name, `/me`, logout, password
//! changes, and the password-step throttle.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestResponse};

const USER_FIELDS: [&str; 8] = [
    "id",
    "email",
    "userName",
    "phoneNumber",
    "twoFactorEnabled",
    "lastLoginDate",
    "lastLoginIp",
    "createdAt",
];

/// The RFC 3339 UTC form of a unix time, computed with the `time` crate directly.
fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[track_caller]
fn assert_user_shape(user: &Value) {
    let keys: BTreeSet<&str> = user
        .as_object()
        .expect("a User object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = USER_FIELDS.into_iter().collect();
    assert_eq!(keys, expected, "exactly the User fields of API.md: {user}");
}

/// A failure answer leaks nothing: no SQL, no driver or hasher names, no panic, and not
/// the password that was sent.
#[track_caller]
fn assert_leaks_nothing(response: &TestResponse, password: &str) {
    for needle in ["SELECT", "sqlx", "panicked", "argon2", "$argon2id"] {
        assert!(
            !response.text.contains(needle),
            "body mentions {needle:?}: {}",
            response.text
        );
    }
    assert!(
        !response.text.contains(password),
        "body echoes the password: {}",
        response.text
    );
}

#[track_caller]
fn assert_field_error(response: &TestResponse, field: &str) {
    response.assert_problem(400, "validation_failed");
    let messages = &response.body["errors"][field];
    assert!(
        messages
            .as_array()
            .is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string)),
        "errors.{field} holds messages: {}",
        response.text
    );
}

#[tokio::test]
async fn register_returns_201_with_exactly_the_user_fields() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/v1/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD, "userName": "ann_smith", "phoneNumber": "+1 (555) 010-9999"}),
            None,
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    assert!(
        response.content_type().starts_with("application/json"),
        "{}",
        response.content_type()
    );
    let user = &response.body;
    assert_user_shape(user);
    assert!(
        uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok(),
        "id is a UUID"
    );
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["userName"], "ann_smith");
    assert_eq!(user["phoneNumber"], "+1 (555) 010-9999");
    assert_eq!(user["twoFactorEnabled"], false);
    assert_eq!(user["lastLoginDate"], Value::Null, "never logged in yet");
    assert_eq!(user["lastLoginIp"], Value::Null);
    assert_eq!(user["createdAt"], rfc3339(app.now()));
    assert!(
        !response.text.contains(PASSWORD) && !response.text.contains("argon2"),
        "{}",
        response.text
    );
}

#[tokio::test]
async fn register_without_optional_fields_still_has_every_user_field() {
    let app = TestApp::spawn().await;
    let response = app.register("bob@example.com", PASSWORD).await;
    assert_eq!(response.status, 201, "{}", response.text);
    assert_user_shape(&response.body);
    assert_eq!(response.body["phoneNumber"], Value::Null);
    assert!(response.body["userName"].is_string());
}

#[tokio::test]
async fn register_normalises_the_email_so_case_and_spaces_clash() {
    let app = TestApp::spawn().await;
    let first = app.register("  Ann@Example.com ", PASSWORD).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(
        first.body["email"], "ann@example.com",
        "trimmed and lowercased"
    );

    let again = app.register("ann@example.com", "another password").await;
    again.assert_problem(409, "email_taken");
    let shouted = app.register("ANN@EXAMPLE.COM", "another password").await;
    shouted.assert_problem(409, "email_taken");

    // The normalised address is the one that logs in, whatever case the user types.
    let login = app.login(" ANN@example.COM", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["user"]["id"], first.body["id"]);
}

#[tokio::test]
async fn register_refuses_a_user_name_taken_in_any_case() {
    let app = TestApp::spawn().await;
    let first = app
        .post(
            "/v1/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD, "userName": "Ann"}),
            None,
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let clash = app
        .post(
            "/v1/auth/register",
            json!({"email": "other@example.com", "password": PASSWORD, "userName": "aNN"}),
            None,
        )
        .await;
    clash.assert_problem(409, "user_name_taken");
    // The refused registration created nothing: its email is still free.
    let retry = app
        .post(
            "/v1/auth/register",
            json!({"email": "other@example.com", "password": PASSWORD, "userName": "other"}),
            None,
        )
        .await;
    assert_eq!(retry.status, 201, "{}", retry.text);
}

#[tokio::test]
async fn register_reports_each_invalid_field() {
    let app = TestApp::spawn().await;
    let secret = "short7!";
    let response = app
        .post(
            "/v1/auth/register",
            json!({"email": "not-an-email", "password": secret, "phoneNumber": "call me maybe"}),
            None,
        )
        .await;
    assert_field_error(&response, "email");
    assert_field_error(&response, "password");
    assert_field_error(&response, "phoneNumber");
    assert_leaks_nothing(&response, secret);
}

#[tokio::test]
async fn register_counts_password_characters_and_caps_bytes() {
    let app = TestApp::spawn().await;
    // 7 characters: too short.
    let short = app.register("a@example.com", "1234567").await;
    assert_field_error(&short, "password");
    assert_eq!(
        short.body["errors"].as_object().unwrap().len(),
        1,
        "only the password is wrong: {}",
        short.text
    );
    // 5 two-byte characters are 10 bytes but 5 characters: too short.
    let multibyte = app.register("b@example.com", "ééééé").await;
    assert_field_error(&multibyte, "password");
    assert_eq!(
        multibyte.body["errors"]["password"][0],
        "must be at least 8 characters"
    );
    // 8 characters are enough, however many bytes.
    let multibyte = app.register("b@example.com", "éèêëēėęě").await;
    assert_eq!(multibyte.status, 201, "{}", multibyte.text);
    // 1024 bytes is the most allowed; 1025 is refused.
    let longest = "p".repeat(1024);
    let ok = app.register("c@example.com", &longest).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let too_long = "q".repeat(1025);
    let refused = app.register("d@example.com", &too_long).await;
    assert_field_error(&refused, "password");
    assert_leaks_nothing(&refused, &too_long);
    // A 1025-byte password of fewer characters is refused too (bytes, not characters).
    let too_long_multibyte = format!("{}x", "é".repeat(512));
    assert_eq!(too_long_multibyte.len(), 1025);
    let refused = app.register("e@example.com", &too_long_multibyte).await;
    assert_field_error(&refused, "password");
    // None of the refused registrations created an account: their emails are still free.
    for email in ["a@example.com", "d@example.com", "e@example.com"] {
        let retry = app.register(email, PASSWORD).await;
        assert_eq!(retry.status, 201, "{email}: {}", retry.text);
    }
}

#[tokio::test]
async fn login_by_email_returns_tokens_and_records_the_login() {
    let app = TestApp::spawn().await;
    let registered = app.register("ann@example.com", PASSWORD).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    app.clock.advance(120);

    let login = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let body = &login.body;
    assert_eq!(body["requires2FA"], false);
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    assert!(
        body["accessToken"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3),
        "a JWT: {}",
        login.text
    );
    assert!(
        body["refreshToken"].as_str().is_some_and(|t| t.len() >= 32),
        "{}",
        login.text
    );
    assert_eq!(
        body["refreshTokenExpiry"],
        rfc3339(app.now() + 30 * 24 * 3600)
    );
    assert_user_shape(&body["user"]);
    assert_eq!(body["user"]["id"], registered.body["id"]);
    assert_eq!(body["user"]["lastLoginDate"], rfc3339(app.now()));
    assert_eq!(body["user"]["lastLoginIp"], "127.0.0.1");

    app.clock.advance(5);
    let me = app.get("/v1/auth/me", body["accessToken"].as_str()).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_user_shape(&me.body);
    assert_eq!(me.body["id"], registered.body["id"]);
    assert_eq!(me.body["email"], "ann@example.com");
    assert_eq!(me.body["createdAt"], registered.body["createdAt"]);
    assert_eq!(
        me.body["lastLoginDate"],
        rfc3339(app.now() - 5),
        "the login's time, not now"
    );
    assert_eq!(me.body["lastLoginIp"], "127.0.0.1");
}

#[tokio::test]
async fn login_by_user_name_ignores_case() {
    let app = TestApp::spawn().await;
    let registered = app
        .post(
            "/v1/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD, "userName": "Ann_Smith"}),
            None,
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    for name in ["Ann_Smith", "ann_smith"] {
        let login = app
            .post(
                "/v1/auth/login",
                json!({"userName": name, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(login.status, 200, "{name}: {}", login.text);
        assert_eq!(login.body["user"]["id"], registered.body["id"]);
        assert_eq!(login.body["user"]["userName"], "Ann_Smith");
    }
    let wrong = app
        .post(
            "/v1/auth/login",
            json!({"userName": "Ann_Smith", "password": "not the password"}),
            None,
        )
        .await;
    wrong.assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn wrong_password_and_unknown_account_get_identical_answers() {
    let app = TestApp::spawn().await;
    let registered = app.register("ann@example.com", PASSWORD).await;
    assert_eq!(registered.status, 201);

    let wrong_password = app.login("ann@example.com", "not the password").await;
    let unknown_email = app.login("nobody@example.com", "not the password").await;
    let unknown_name = app
        .post(
            "/v1/auth/login",
            json!({"userName": "nobody", "password": "not the password"}),
            None,
        )
        .await;
    for response in [&wrong_password, &unknown_email, &unknown_name] {
        response.assert_problem(401, "invalid_credentials");
        assert_leaks_nothing(response, "not the password");
    }
    assert_eq!(
        wrong_password.text, unknown_email.text,
        "bodies are identical"
    );
    assert_eq!(
        wrong_password.text, unknown_name.text,
        "bodies are identical"
    );
    // A failed login is not recorded as a login.
    let login = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["user"]["lastLoginDate"], rfc3339(app.now()));
}

#[tokio::test]
async fn login_needs_an_identifier_and_a_password() {
    let app = TestApp::spawn().await;
    let no_identifier = app
        .post("/v1/auth/login", json!({"password": PASSWORD}), None)
        .await;
    assert_field_error(&no_identifier, "email");
    let no_password = app
        .post("/v1/auth/login", json!({"email": "ann@example.com"}), None)
        .await;
    assert_field_error(&no_password, "password");
}

#[tokio::test]
async fn me_refuses_missing_and_bad_tokens() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let missing = app.get("/v1/auth/me", None).await;
    missing.assert_problem(401, "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let garbage = app.get("/v1/auth/me", Some("not-a-jwt")).await;
    garbage.assert_problem(401, "unauthorized");
    // The refresh token is not an access token.
    let refresh_as_access = app.get("/v1/auth/me", Some(&user.refresh_token)).await;
    refresh_as_access.assert_problem(401, "unauthorized");
    // Another scheme carrying a valid token is not a bearer token.
    let basic = app
        .send(
            app.client
                .get(app.url("/v1/auth/me"))
                .header("authorization", format!("Basic {}", user.access_token)),
        )
        .await;
    basic.assert_problem(401, "unauthorized");
    // The same token as a bearer works: the refusals above were about the token.
    let ok = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn refresh_returns_a_new_token_pair() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    app.clock.advance(60);
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let body = &refreshed.body;
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    assert_ne!(body["refreshToken"], user.refresh_token.as_str());
    assert_ne!(body["accessToken"], user.access_token.as_str());
    assert!(body["refreshTokenExpiry"].is_string());
    assert_user_shape(&body["user"]);
    assert_eq!(body["user"]["id"], user.id.as_str());
    let me = app.get("/v1/auth/me", body["accessToken"].as_str()).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], user.id.as_str());

    let bogus = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": "no-such-token"}),
            None,
        )
        .await;
    bogus.assert_problem(401, "invalid_refresh_token");
    let missing = app.post("/v1/auth/refresh", json!({}), None).await;
    assert_field_error(&missing, "refreshToken");
}

#[tokio::test]
async fn logout_ends_the_session_for_both_tokens() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let other_session = app.login(&user.email, PASSWORD).await;
    assert_eq!(other_session.status, 200);

    let logout = app
        .post("/v1/auth/logout", json!({}), Some(&user.access_token))
        .await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    assert!(logout.text.is_empty(), "204 has no body: {:?}", logout.text);

    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    me.assert_problem(401, "unauthorized");
    let refresh = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
        )
        .await;
    refresh.assert_problem(401, "invalid_refresh_token");
    let again = app
        .post("/v1/auth/logout", json!({}), Some(&user.access_token))
        .await;
    again.assert_problem(401, "unauthorized");

    // Only that session ended: the user's other session still works.
    let other_me = app
        .get("/v1/auth/me", other_session.body["accessToken"].as_str())
        .await;
    assert_eq!(other_me.status, 200, "{}", other_me.text);
}

#[tokio::test]
async fn logout_needs_an_access_token() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let anonymous = app
        .post(
            "/v1/auth/logout",
            json!({"refreshToken": user.refresh_token}),
            None,
        )
        .await;
    anonymous.assert_problem(401, "unauthorized");
    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(
        me.status, 200,
        "an anonymous logout ended nothing: {}",
        me.text
    );
}

#[tokio::test]
async fn change_password_revokes_other_sessions_and_keeps_the_callers() {
    let app = TestApp::spawn().await;
    let caller = app.signed_in_user().await;
    let other = app.login(&caller.email, PASSWORD).await;
    assert_eq!(other.status, 200);
    let other_access = other.body["accessToken"].as_str().unwrap().to_owned();
    let other_refresh = other.body["refreshToken"].as_str().unwrap().to_owned();
    let new_password = "a brand new passphrase";

    let changed = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": new_password}),
            Some(&caller.access_token),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    assert!(changed.text.is_empty());

    // The other session, granted under the old password, is over.
    app.get("/v1/auth/me", Some(&other_access))
        .await
        .assert_problem(401, "unauthorized");
    app.post(
        "/v1/auth/refresh",
        json!({"refreshToken": other_refresh}),
        None,
    )
    .await
    .assert_problem(401, "invalid_refresh_token");

    // The caller's own session goes on, access and refresh alike.
    let me = app.get("/v1/auth/me", Some(&caller.access_token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": caller.refresh_token}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);

    // Only the new password logs in now.
    let old = app.login(&caller.email, PASSWORD).await;
    old.assert_problem(401, "invalid_credentials");
    let new = app.login(&caller.email, new_password).await;
    assert_eq!(new.status, 200, "{}", new.text);
}

#[tokio::test]
async fn change_password_refuses_a_wrong_current_password() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let other = app.login(&user.email, PASSWORD).await;
    let response = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": "not the password", "newPassword": "a brand new passphrase"}),
            Some(&user.access_token),
        )
        .await;
    response.assert_problem(401, "invalid_credentials");
    assert_leaks_nothing(&response, "a brand new passphrase");
    // Nothing changed: the old password still logs in, the other session is alive.
    assert_eq!(app.login(&user.email, PASSWORD).await.status, 200);
    assert_eq!(
        app.get("/v1/auth/me", other.body["accessToken"].as_str())
            .await
            .status,
        200
    );
    app.login(&user.email, "a brand new passphrase")
        .await
        .assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn change_password_refuses_a_short_new_password_and_needs_a_token() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let short = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "1234567"}),
            Some(&user.access_token),
        )
        .await;
    assert_field_error(&short, "newPassword");
    assert_leaks_nothing(&short, "1234567");
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status,
        200,
        "the password is unchanged"
    );

    let anonymous = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"}),
            None,
        )
        .await;
    anonymous.assert_problem(401, "unauthorized");
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status,
        200,
        "the password is unchanged"
    );
}

/// Logs in to `email` `n` times with a wrong password, each answered 401.
async fn wrong_passwords(app: &TestApp, email: &str, n: usize) {
    for _ in 0..n {
        app.login(email, "not the password")
            .await
            .assert_problem(401, "invalid_credentials");
    }
}

/// The policy (src/domain/lockout.rs `password_delay`, `password_delay_after = 5`): the
/// first 5 failures in an hour cost nothing; the n-th failure after that blocks the account's
/// password step for 2 * (n - 5) seconds (at most 5 minutes). While blocked, even the right
/// password gets the same 401 as a wrong one.
#[tokio::test]
async fn password_step_delays_grow_after_five_failures_and_refuse_even_the_right_password() {
    let app = TestApp::spawn().await;
    let registered = app.register("ann@example.com", PASSWORD).await;
    assert_eq!(registered.status, 201);
    let mut wrong = None;
    for _ in 0..6 {
        let response = app.login("ann@example.com", "not the password").await;
        response.assert_problem(401, "invalid_credentials");
        wrong = Some(response);
    }
    let wrong = wrong.unwrap();

    // Six failures: blocked for 4 s. The right password is refused exactly like a wrong one.
    let right = app.login("ann@example.com", PASSWORD).await;
    right.assert_problem(401, "invalid_credentials");
    assert_eq!(
        right.text, wrong.text,
        "a throttled account answers like a wrong password"
    );
    app.clock.advance(1);
    app.login("ann@example.com", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");

    // Two more failures at this instant (8 in all): the delay grows to 2 * 4 = 8 s.
    wrong_passwords(&app, "ann@example.com", 2).await;
    app.clock.advance(5);
    app.login("ann@example.com", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");

    // Well past the delay, the right password works (and resets the count).
    app.clock.advance(600);
    let ok = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    wrong_passwords(&app, "ann@example.com", 4).await;
    let after_reset = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(
        after_reset.status, 200,
        "the successful login reset the count: {}",
        after_reset.text
    );
}

#[tokio::test]
async fn password_step_delays_start_after_five_failures() {
    let app = TestApp::spawn().await;
    assert_eq!(app.register("ann@example.com", PASSWORD).await.status, 201);
    wrong_passwords(&app, "ann@example.com", 4).await;
    let right = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(
        right.status, 200,
        "4 failures cost no delay: {}",
        right.text
    );
    wrong_passwords(&app, "ann@example.com", 5).await;
    app.login("ann@example.com", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    app.clock.advance(3);
    let right = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(
        right.status, 200,
        "the 2-second delay has passed: {}",
        right.text
    );
}

#[tokio::test]
async fn password_throttle_is_per_account() {
    let app = TestApp::spawn().await;
    assert_eq!(app.register("ann@example.com", PASSWORD).await.status, 201);
    assert_eq!(app.register("bob@example.com", PASSWORD).await.status, 201);
    wrong_passwords(&app, "ann@example.com", 7).await;
    app.login("ann@example.com", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    let bob = app.login("bob@example.com", PASSWORD).await;
    assert_eq!(
        bob.status, 200,
        "another account from the same address is not throttled: {}",
        bob.text
    );
}

/// The hourly cap on an account's failed passwords: once used up, even the right password
/// answers like a wrong one until the hour's window has passed (here 3 an hour, no delays).
#[tokio::test]
async fn the_accounts_failed_passwords_are_capped_per_hour() {
    let app = TestApp::spawn_with(|config| {
        config.password_max_failures_per_hour = 3;
        config.password_delay_after = 1_000;
    })
    .await;
    assert_eq!(app.register("ann@example.com", PASSWORD).await.status, 201);
    wrong_passwords(&app, "ann@example.com", 3).await;
    app.login("ann@example.com", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    app.clock.advance(3_600);
    let next_hour = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(next_hour.status, 200, "{}", next_hour.text);
}

/// Argon2 passes for the tests of logins sent at once: enough that every login of a burst
/// has arrived and been counted before the first hash is checked, even on a busy machine.
const SLOW_HASH_ITERATIONS: u32 = 10;

/// Logs in to each of `emails` at once with `password` and counts how many were signed in;
/// the rest must all have answered like a wrong password.
async fn signed_in_of_logins_at_once(app: &TestApp, emails: &[String], password: &str) -> usize {
    let logins = emails.iter().map(|email| app.login(email, password));
    let answers = futures::future::join_all(logins).await;
    for answer in answers.iter().filter(|a| a.status != 200) {
        answer.assert_problem(401, "invalid_credentials");
    }
    answers.iter().filter(|a| a.status == 200).count()
}

/// Attempts that arrive together are each counted before any password is checked, so a
/// burst is judged against the count as it grows, not all against the count before it.
/// Here the account may fail 3 times an hour and has failed twice: of ten logins sent at
/// once, only the first counted is judged, and the other nine answer like a wrong password
/// even though every one of them carries the right password (a guess among them would be
/// judged no more often). Without the count up front, all ten are judged and all ten sign in.
#[tokio::test]
async fn logins_sent_at_once_are_judged_no_further_than_the_accounts_hourly_cap() {
    let app = TestApp::spawn_with(|config| {
        config.password_max_failures_per_hour = 3;
        config.password_delay_after = 1_000; // only the hourly cap in play
        config.argon2_iterations = SLOW_HASH_ITERATIONS;
    })
    .await;
    assert_eq!(app.register("ann@example.com", PASSWORD).await.status, 201);
    wrong_passwords(&app, "ann@example.com", 2).await;

    let ann = vec!["ann@example.com".to_owned(); 10];
    let signed_in = signed_in_of_logins_at_once(&app, &ann, PASSWORD).await;
    assert_eq!(
        signed_in, 1,
        "one attempt left in the hour, so one is judged"
    );

    // The judged one signed in and cleared the count; the throttled ones gave theirs back.
    let next = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(next.status, 200, "{}", next.text);
}

/// The same for the client's network: with 2 of its 3 failures an hour used, ten logins
/// to ten accounts sent at once from it are judged one at a time, so only one signs in.
#[tokio::test]
async fn logins_sent_at_once_are_judged_no_further_than_the_networks_hourly_cap() {
    let app = TestApp::spawn_with(|config| {
        config.ip_max_failures_per_hour = 3;
        config.ip_delay_after = 1_000;
        config.argon2_iterations = SLOW_HASH_ITERATIONS;
    })
    .await;
    let mut emails = Vec::new();
    for i in 0..10 {
        let email = format!("user{i}@example.com");
        assert_eq!(app.register(&email, PASSWORD).await.status, 201);
        emails.push(email);
    }
    for _ in 0..2 {
        app.login("nobody@example.com", "not the password")
            .await
            .assert_problem(401, "invalid_credentials");
    }

    let signed_in = signed_in_of_logins_at_once(&app, &emails, PASSWORD).await;
    assert_eq!(
        signed_in, 1,
        "one attempt left in the hour, so one is judged"
    );

    // A right password gives its count back, throttled or not: two failures are still
    // used, so one more login is judged, and one more failure fills the hour.
    let next = app.login(&emails[0], PASSWORD).await;
    assert_eq!(next.status, 200, "{}", next.text);
    app.login("nobody@example.com", "not the password")
        .await
        .assert_problem(401, "invalid_credentials");
    app.login(&emails[1], PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    app.clock.advance(3_600);
    let next_hour = app.login(&emails[1], PASSWORD).await;
    assert_eq!(next_hour.status, 200, "{}", next_hour.text);
}

#[tokio::test]
async fn a_user_name_may_not_look_like_an_email_or_an_account_id() {
    let app = TestApp::spawn().await;
    let mallory = app.register("mallory@example.com", PASSWORD).await;
    assert_eq!(mallory.status, 201, "{}", mallory.text);
    let mallory_id = mallory.body["id"].as_str().unwrap().to_owned();
    let simple_id = uuid::Uuid::new_v4().simple().to_string();
    for name in [
        "dave@corp.com",
        "@dave",
        mallory_id.as_str(),
        &mallory_id.to_uppercase(),
        simple_id.as_str(),
    ] {
        let response = app
            .post(
                "/v1/auth/register",
                json!({"email": "eve@example.com", "password": PASSWORD, "userName": name}),
                None,
            )
            .await;
        assert_field_error(&response, "userName");
        assert_eq!(
            response.body["errors"].as_object().unwrap().len(),
            1,
            "only the user name is wrong: {}",
            response.text
        );
    }
    // Dave, who never sent a user name, is not blocked by anyone's choice of one.
    let dave = app.register("dave@corp.com", PASSWORD).await;
    assert_eq!(dave.status, 201, "{}", dave.text);
    assert_eq!(dave.body["userName"], "dave@corp.com");
}

#[tokio::test]
async fn look_alike_emails_are_refused_or_are_the_same_account() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice@corp.com", PASSWORD).await;
    assert_eq!(alice.status, 201, "{}", alice.text);
    for (email, why) in [
        ("alice\u{200B}@corp.com", "zero-width space"),
        ("ali\u{00AD}ce@corp.com", "soft hyphen"),
        ("\u{0430}lice@corp.com", "Cyrillic a"),
        ("alice@c\u{043E}rp.com", "Cyrillic o in the domain"),
        ("alice@xn--crp-sed.com", "the same domain in punycode"),
        ("\u{202E}moc.proc@ecila", "right-to-left override"),
        ("alice\u{2066}@corp.com", "left-to-right isolate"),
    ] {
        let response = app.register(email, PASSWORD).await;
        assert_field_error(&response, "email");
        assert_eq!(
            response.body["errors"].as_object().unwrap().len(),
            1,
            "{why}: only the email is wrong: {}",
            response.text
        );
    }
    // Compatibility forms are the same letters: the same account.
    let full_width = app.register("ａｌｉｃｅ@ｃｏｒｐ.ｃｏｍ", PASSWORD).await;
    full_width.assert_problem(409, "email_taken");
    let login = app.login("ＡＬＩＣＥ@corp.com", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["user"]["id"], alice.body["id"]);

    // An internationalized domain is stored in its ASCII form, whichever way it is sent.
    let idn = app.register("Ann@Bücher.de", PASSWORD).await;
    assert_eq!(idn.status, 201, "{}", idn.text);
    assert_eq!(idn.body["email"], "ann@xn--bcher-kva.de");
    let again = app.register("ann@xn--bcher-kva.de", PASSWORD).await;
    again.assert_problem(409, "email_taken");
    for typed in ["ann@bücher.de", "ann@xn--bcher-kva.de", "ANN@BÜCHER.DE"] {
        let login = app.login(typed, PASSWORD).await;
        assert_eq!(login.status, 200, "{typed}: {}", login.text);
    }
    // A user name is normalized the same way: full-width letters are the plain ones.
    let named = app
        .post(
            "/v1/auth/register",
            json!({"email": "bob@corp.com", "password": PASSWORD, "userName": "ｂｏｂｂｙ"}),
            None,
        )
        .await;
    assert_eq!(named.status, 201, "{}", named.text);
    assert_eq!(named.body["userName"], "bobby");
    let invisible = app
        .post(
            "/v1/auth/register",
            json!({"email": "rob@corp.com", "password": PASSWORD, "userName": "bob\u{200B}by"}),
            None,
        )
        .await;
    assert_field_error(&invisible, "userName");
}

#[tokio::test]
async fn common_passwords_and_context_words_are_refused_with_a_clear_message() {
    let app = TestApp::spawn().await;
    let common = "is too common: it is on a list of frequently used and breached passwords";
    let close = "is too close to your email address, user name or the name of this service";
    for (body, message) in [
        (
            json!({"email": "ann@example.com", "password": "password"}),
            common,
        ),
        (
            json!({"email": "ann@example.com", "password": "12345678"}),
            common,
        ),
        (
            json!({"email": "ann@example.com", "password": "Sunshine1"}),
            common,
        ),
        (
            json!({"email": "ann@example.com", "password": "ann@example.com"}),
            close,
        ),
        (
            json!({"email": "ann.smith@example.com", "password": "Ann.Smith!1"}),
            close,
        ),
        (
            json!({"email": "ann@example.com", "userName": "annabelle", "password": "annabelle2024"}),
            close,
        ),
        (
            json!({"email": "ann@example.com", "password": "Tessera2024!"}),
            close,
        ),
    ] {
        let response = app.post("/v1/auth/register", body.clone(), None).await;
        assert_field_error(&response, "password");
        assert_eq!(
            response.body["errors"]["password"],
            json!([message]),
            "{body}: {}",
            response.text
        );
        let sent = body["password"].as_str().unwrap();
        // ("password" is also the field's name, so only the others can be looked for.)
        if sent != "password" {
            assert_leaks_nothing(&response, sent);
        }
    }
    // The service's configured name counts as well.
    let acme = TestApp::spawn_with(|config| config.issuer = "Acme Login".into()).await;
    let response = acme.register("bo@example.com", "acme login 123").await;
    assert_field_error(&response, "password");

    // A password change is held to the same rules, with the account's own email.
    let user = app.signed_in_user().await;
    let local = user.email.split('@').next().unwrap().to_owned();
    for (new, message) in [("iloveyou", common), (local.as_str(), close)] {
        let response = app
            .post(
                "/v1/auth/password",
                json!({"currentPassword": PASSWORD, "newPassword": new}),
                Some(&user.access_token),
            )
            .await;
        assert_field_error(&response, "newPassword");
        assert_eq!(response.body["errors"]["newPassword"], json!([message]));
    }
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(
        login.status, 200,
        "the password is unchanged: {}",
        login.text
    );
}

#[tokio::test]
async fn passwords_are_compared_in_nfkc() {
    let app = TestApp::spawn().await;
    // Composed (as typed on one system) and decomposed (as typed on another).
    let composed = "crème brûlée au café";
    let decomposed = "cre\u{300}me bru\u{302}le\u{301}e au cafe\u{301}";
    assert_ne!(composed, decomposed);
    let registered = app.register("chef@example.com", composed).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let login = app.login("chef@example.com", decomposed).await;
    assert_eq!(
        login.status, 200,
        "NFD logs in to an NFC password: {}",
        login.text
    );
    // Full-width letters are their plain forms.
    let user = app
        .register(
            "wide@example.com",
            "ｃｏｒｒｅｃｔ ｈｏｒｓｅ ｂａｔｔｅｒｙ",
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.text);
    let login = app.login("wide@example.com", "correct horse battery").await;
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.body["accessToken"].as_str().unwrap().to_owned();
    // The password change confirms and hashes in the same form.
    let changed = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": "ｃｏｒｒｅｃｔ ｈｏｒｓｅ ｂａｔｔｅｒｙ", "newPassword": decomposed}),
            Some(&token),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    let login = app.login("wide@example.com", composed).await;
    assert_eq!(login.status, 200, "{}", login.text);
}

/// A hash made before passwords were normalized (of the password as typed) still verifies.
#[tokio::test]
async fn a_hash_of_a_password_as_typed_before_normalization_still_verifies() {
    let app = TestApp::spawn().await;
    let decomposed = "cre\u{300}me bru\u{302}le\u{301}e au cafe\u{301}";
    let registered = app.register("old@example.com", PASSWORD).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let id = uuid::Uuid::parse_str(registered.body["id"].as_str().unwrap()).unwrap();
    // The old hash: Argon2id of the bytes as typed, as earlier versions stored it.
    let old_hash = {
        use argon2::PasswordHasher as _;
        let salt = argon2::password_hash::SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::default()
            .hash_password(decomposed.as_bytes(), &salt)
            .unwrap()
            .to_string()
    };
    let mut tx = app.state.db.begin().await.unwrap();
    let current = tessera::db::users::find_by_id(&mut tx, id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        tessera::db::users::replace_password_hash(&mut tx, id, &current, &old_hash)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let login = app.login("old@example.com", decomposed).await;
    assert_eq!(login.status, 200, "{}", login.text);
}
