//! Who the client is and how it reached us: trusted proxies and `X-Forwarded-For`, the
//! request id, TLS and HSTS, and connections that carry a body to a route that needs none.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestResponse};

/// Logs `email` in through `base` (another address of the same server), with an
/// `X-Forwarded-For` header when given.
async fn login_via(
    app: &TestApp,
    base: &str,
    email: &str,
    forwarded: Option<&str>,
) -> TestResponse {
    let mut request = app
        .client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}));
    if let Some(value) = forwarded {
        request = request.header("x-forwarded-for", value);
    }
    app.send(request).await
}

/// The address the server recorded for a login: the answer's `lastLoginIp`, checked against
/// the `login_succeeded` security event it wrote.
async fn recorded_address(app: &TestApp, login: &TestResponse) -> String {
    assert_eq!(login.status, 200, "{}", login.text);
    let from_login = login.body["user"]["lastLoginIp"]
        .as_str()
        .expect("lastLoginIp")
        .to_owned();
    let access = login.body["accessToken"].as_str().unwrap();
    let events = app
        .get("/v1/auth/security-events?limit=1", Some(access))
        .await;
    assert_eq!(events.status, 200, "{}", events.text);
    let event: &Value = &events.body[0];
    assert_eq!(event["ipAddress"], from_login.as_str(), "{event}");
    from_login
}

/// The port of a `http://host:port` address.
fn port(app: &TestApp) -> u16 {
    app.address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("address has a port")
}

#[tokio::test]
async fn a_trusted_proxy_is_recognised_on_a_dual_stack_listener() {
    // Listening on [::], an IPv4 proxy arrives as ::ffff:127.0.0.1; it is still the
    // configured 127.0.0.1.
    let app = TestApp::spawn_with(|config| {
        config.listen = "[::]:0".into();
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let user = app.signed_in_user().await;
    let via_ipv4 = format!("http://127.0.0.1:{}", port(&app));
    let login = login_via(&app, &via_ipv4, &user.email, Some("198.51.100.7")).await;
    assert_eq!(recorded_address(&app, &login).await, "198.51.100.7");
    // Without the header, the proxy itself is recorded in its IPv4 form.
    let login = login_via(&app, &via_ipv4, &user.email, None).await;
    assert_eq!(recorded_address(&app, &login).await, "127.0.0.1");
}

#[tokio::test]
async fn trusted_proxies_accept_cidr_ranges() {
    let app = TestApp::spawn_with(|config| {
        config.trusted_proxies = vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.0/8".parse().unwrap(),
        ];
    })
    .await;
    let user = app.signed_in_user().await;
    // The peer (127.0.0.1) is in 127.0.0.0/8, and so is every hop walked past.
    let login = login_via(
        &app,
        &app.address,
        &user.email,
        Some("203.0.113.9, 10.20.30.40"),
    )
    .await;
    assert_eq!(recorded_address(&app, &login).await, "203.0.113.9");

    // An IPv6 range of one, on an IPv6 listener.
    let v6 = TestApp::spawn_with(|config| {
        config.listen = "[::1]:0".into();
        config.trusted_proxies = vec!["::1/128".parse().unwrap()];
    })
    .await;
    let user = v6.signed_in_user().await;
    let login = login_via(&v6, &v6.address, &user.email, Some("2001:db8::7")).await;
    assert_eq!(recorded_address(&v6, &login).await, "2001:db8::7");
}

#[tokio::test]
async fn trusted_proxies_in_the_configuration_file_take_ranges_and_addresses() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "trusted_proxies = [\"10.0.0.0/8\", \"::1/128\", \"192.0.2.1\"]\n",
    )
    .unwrap();
    let config = tessera::config::Config::load(Some(file.path())).expect("ranges are accepted");
    let shown: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "::1/128", "192.0.2.1/32"]);

    std::fs::write(file.path(), "trusted_proxies = [\"10.0.0.0/33\"]\n").unwrap();
    let err = tessera::config::Config::load(Some(file.path())).unwrap_err();
    assert!(format!("{err:#}").contains("10.0.0.0/33"), "{err:#}");
}

#[tokio::test]
async fn x_forwarded_for_is_read_in_the_forms_proxies_write() {
    let app = TestApp::spawn_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let user = app.signed_in_user().await;
    for (forwarded, expected) in [
        // The entry an attacker wrote on the left is never the client: the proxy's own
        // entry (with a port) is.
        ("6.6.6.6, 203.0.113.7:51234", "203.0.113.7"),
        ("6.6.6.6, [2001:db8::1]:443", "2001:db8::1"),
        ("6.6.6.6, [2001:db8::2]", "2001:db8::2"),
        ("6.6.6.6,  2001:db8::3 ", "2001:db8::3"),
        ("6.6.6.6, 198.51.100.4, 10.9.8.7:3128", "198.51.100.4"),
        // An entry that cannot be read stops the walk at the last trusted address.
        ("6.6.6.6, unknown", "127.0.0.1"),
        ("6.6.6.6, not-an-address", "127.0.0.1"),
        ("6.6.6.6, unknown, 10.1.1.1", "10.1.1.1"),
    ] {
        let login = login_via(&app, &app.address, &user.email, Some(forwarded)).await;
        assert_eq!(
            recorded_address(&app, &login).await,
            expected,
            "X-Forwarded-For: {forwarded}"
        );
    }
}

/// The `x-request-id` answered to a request that sent `id`.
async fn request_id_for(app: &TestApp, id: &str) -> String {
    let answer = app
        .send(app.client.get(app.url("/healthz")).header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(id.as_bytes()).unwrap(),
        ))
        .await;
    assert_eq!(answer.status, 200);
    answer
        .header("x-request-id")
        .expect("x-request-id")
        .to_owned()
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_it_is_a_short_safe_token() {
    let app = TestApp::spawn().await;
    for good in [
        "abc-123.X:y_z",
        "7",
        &"a".repeat(64),
        "0b6f2a36-3c1e-4f5e-9a57-3d1c2e8b9f10",
    ] {
        assert_eq!(
            request_id_for(&app, good).await,
            good,
            "a good id is echoed"
        );
    }
    let long = "a".repeat(65);
    let huge = "b".repeat(300 * 1024);
    for bad in [
        long.as_str(),
        huge.as_str(),
        "x user_id=1 event=login_succeeded",
        "a=b",
        "tab\there",
        "quote\"d",
        "semi;colon",
        "ünïcode",
    ] {
        let answered = request_id_for(&app, bad).await;
        assert_ne!(answered, bad, "a bad id is not echoed");
        assert!(
            uuid::Uuid::parse_str(&answered).is_ok(),
            "{bad:?} was replaced by a fresh id, got {answered:?}"
        );
    }
    // Without one, a fresh id is made as before.
    let answer = app.get("/healthz", None).await;
    assert!(uuid::Uuid::parse_str(answer.header("x-request-id").unwrap()).is_ok());
}
