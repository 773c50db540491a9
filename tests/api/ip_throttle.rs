//! The per-IP password throttle counts a client by its network: an IPv6 client by its /64
//! (it can pick any address in it), an IPv4 client by its address.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, TestResponse};

/// A server behind a trusted proxy on 127.0.0.1, whose IP throttle delays an address
/// after 3 failed passwords (the account throttle, after 5, stays out of the way).
async fn behind_proxy() -> TestApp {
    TestApp::spawn_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        config.ip_delay_after = 3;
        config.password_delay_after = 5;
    })
    .await
}

async fn login_from(app: &TestApp, client: &str, email: &str, password: &str) -> TestResponse {
    app.send(
        app.client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", client)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

async fn registered(app: &TestApp) -> String {
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = app.register(&email, PASSWORD).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    email
}

async fn three_wrong_passwords(app: &TestApp, client: &str, email: &str) {
    for _ in 0..3 {
        let wrong = login_from(app, client, email, "not the password at all").await;
        wrong.assert_problem(401, "invalid_credentials");
    }
}

#[tokio::test]
async fn an_ipv6_client_is_throttled_across_its_64() {
    let app = behind_proxy().await;
    let email = registered(&app).await;

    three_wrong_passwords(&app, "2001:db8:1:2::1", &email).await;

    // Another address in the same /64 is the same client: the right password is refused
    // like a wrong one while the delay lasts.
    let same_64 = login_from(&app, "2001:db8:1:2::2", &email, PASSWORD).await;
    same_64.assert_problem(401, "invalid_credentials");
    let same_64_far = login_from(&app, "2001:db8:1:2:ffff:ffff:ffff:fffe", &email, PASSWORD).await;
    same_64_far.assert_problem(401, "invalid_credentials");

    // Another /64 is another client, and the account itself is not throttled.
    let other_64 = login_from(&app, "2001:db8:1:3::1", &email, PASSWORD).await;
    assert_eq!(other_64.status, 200, "{}", other_64.text);
    assert_eq!(
        other_64.body["user"]["lastLoginIp"], "2001:db8:1:3::1",
        "the recorded address is the client's own, not its network"
    );

    // Once the delay is over, the /64 may log in again.
    app.clock.advance(3);
    let later = login_from(&app, "2001:db8:1:2::2", &email, PASSWORD).await;
    assert_eq!(later.status, 200, "{}", later.text);
    assert_eq!(later.body["user"]["lastLoginIp"], "2001:db8:1:2::2");
}

#[tokio::test]
async fn an_ipv4_client_is_throttled_by_its_own_address_only() {
    let app = behind_proxy().await;
    let email = registered(&app).await;

    three_wrong_passwords(&app, "198.51.100.1", &email).await;

    let same = login_from(&app, "198.51.100.1", &email, PASSWORD).await;
    same.assert_problem(401, "invalid_credentials");
    let mapped = login_from(&app, "::ffff:198.51.100.1", &email, PASSWORD).await;
    mapped.assert_problem(401, "invalid_credentials");

    let neighbour = login_from(&app, "198.51.100.2", &email, PASSWORD).await;
    assert_eq!(neighbour.status, 200, "{}", neighbour.text);
}
