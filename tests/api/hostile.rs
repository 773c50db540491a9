//! Hostile input: oversized, truncated, deeply nested, wrong-typed and non-UTF-8 bodies,
//! 64 KB headers, floods of slow connections, and the per-address rate limit. Each gets a
//! clean answer (a problem document or the Sapfiai envelope, or hyper's own 431 for
//! oversized header blocks) or a timeout, and the server keeps serving everyone else.

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{PASSWORD, TestApp, TestResponse};

/// Sends `request` as raw bytes on a new connection and reads until the server closes it
/// (or `wait` passes: a safety net, never reached when the server behaves).
async fn raw(app: &TestApp, request: &[u8], wait: Duration) -> RawAnswer {
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    // The server may answer and close before taking everything (a 431, say).
    let _ = stream.write_all(request).await;
    read_answer(&mut stream, wait).await
}

#[derive(Debug)]
struct RawAnswer {
    status: Option<u16>,
    body: String,
    /// The server closed the connection (rather than our safety net running out).
    closed: bool,
}

impl RawAnswer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn read_answer(stream: &mut TcpStream, wait: Duration) -> RawAnswer {
    let mut bytes = Vec::new();
    let closed = tokio::time::timeout(wait, stream.read_to_end(&mut bytes))
        .await
        .is_ok();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    // Bodies here are small and sent with a content length, never chunked.
    RawAnswer {
        status,
        body: body.to_owned(),
        closed,
    }
}

/// The server still answers others: liveness, and a whole sign-up and sign-in.
async fn still_serving(app: &TestApp) {
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, 200, "{}", health.text);
    let user = app.signed_in_user().await;
    assert_eq!(
        app.get("/v1/auth/me", Some(&user.access_token))
            .await
            .status,
        200
    );
}

async fn post_bytes(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> TestResponse {
    app.send(
        app.client
            .post(app.url(path))
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_they_are_read() {
    let app = TestApp::spawn().await;
    let big = format!(
        "{{\"email\":\"ann@example.com\",\"password\":\"{}\"}}",
        "p".repeat(64 * 1024)
    );
    let v1 = post_bytes(
        &app,
        "/v1/auth/login",
        "application/json",
        big.clone().into_bytes(),
    )
    .await;
    v1.assert_problem(413, "payload_too_large");
    let compat = post_bytes(
        &app,
        "/authentication/login",
        "application/json",
        big.clone().into_bytes(),
    )
    .await;
    assert_eq!(compat.status, 413);
    assert_eq!(compat.body["success"], false);
    assert_eq!(
        compat.body["errors"],
        json!(["The request body must be at most 64 KiB"])
    );

    // Without a length up front (chunked), the server stops reading at the limit.
    let mut chunked = b"POST /v1/auth/register HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..80 {
        chunked.extend_from_slice(format!("400\r\n{}\r\n", "x".repeat(1024)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(&app, &chunked, Duration::from_secs(10)).await;
    assert_eq!(answer.status, Some(413), "{answer:?}");
    assert_eq!(answer.json()["code"], "payload_too_large");

    // A declared length of a terabyte is refused at once, without waiting for the body.
    let huge = b"POST /v1/auth/login HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\nConnection: close\r\n\r\n{";
    let answer = raw(&app, huge, Duration::from_secs(10)).await;
    assert_eq!(answer.status, Some(413), "{answer:?}");
    still_serving(&app).await;
}

#[tokio::test]
async fn truncated_bodies_get_a_clean_400() {
    let app = TestApp::spawn().await;
    let cut = br#"{"email": "ann@example.com", "password": "correct hor"#.to_vec();
    let v1 = post_bytes(&app, "/v1/auth/login", "application/json", cut.clone()).await;
    v1.assert_problem(400, "malformed_json");
    assert!(
        v1.body["detail"].as_str().unwrap().contains("ends early"),
        "{}",
        v1.text
    );
    let compat = post_bytes(
        &app,
        "/authentication/verify-2fa",
        "application/json",
        cut.clone(),
    )
    .await;
    assert_eq!(compat.status, 400);
    assert_eq!(
        compat.body["errors"],
        json!(["The request body is not valid JSON"])
    );

    // The connection ends before the declared length: the body cannot be read.
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"POST /v1/auth/register HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"email\": \"a")
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(answer.status, Some(400), "{answer:?}");
    assert_eq!(answer.json()["code"], "malformed_json");
    still_serving(&app).await;
}

#[tokio::test]
async fn deeply_nested_bodies_are_refused_without_harm() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    // 20 000 levels in 40 KB: far past the parser's depth limit, well within the size limit.
    let arrays = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let objects = format!("{}1{}", "{\"a\":".repeat(8_000), "}".repeat(8_000));
    for body in [&arrays, &objects] {
        let response = post_bytes(
            &app,
            "/v1/auth/register",
            "application/json",
            body.clone().into_bytes(),
        )
        .await;
        response.assert_problem(400, "malformed_json");
        let compat = post_bytes(
            &app,
            "/authentication/login",
            "application/json",
            body.clone().into_bytes(),
        )
        .await;
        assert_eq!(compat.status, 400, "{}", compat.text);
        assert_eq!(compat.body["success"], false);
    }
    // Nesting that parses, in a field that wants a string or an object.
    let nested = json!({"code": "123456", "trustDevice": {"deviceName": [[[[[[[[["x"]]]]]]]]], "deviceType": {"a": {"b": {}}}, "deviceFingerprint": "fp"}});
    let response = app
        .post("/v1/auth/2fa/verify", nested, Some(&user.access_token))
        .await;
    response.assert_problem(400, "validation_failed");
    assert_eq!(
        response.body["errors"]["trustDevice.deviceName"],
        json!(["must be a string"])
    );
    assert_eq!(
        response.body["errors"]["trustDevice.deviceType"],
        json!(["must be a string"])
    );
    still_serving(&app).await;
}

#[tokio::test]
async fn wrong_types_are_answered_field_by_field() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let response = app
        .post(
            "/v1/auth/register",
            json!({"email": 5, "password": ["x"], "userName": {"a": 1}, "phoneNumber": true}),
            None,
        )
        .await;
    response.assert_problem(400, "validation_failed");
    for field in ["email", "password", "userName", "phoneNumber"] {
        assert_eq!(
            response.body["errors"][field],
            json!(["must be a string"]),
            "{field}: {}",
            response.text
        );
    }
    // A body that is not an object, on both surfaces.
    for body in ["[]", "\"ann\"", "42", "true", "null"] {
        let v1 = post_bytes(
            &app,
            "/v1/auth/login",
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await;
        v1.assert_problem(400, "validation_failed");
        assert_eq!(
            v1.body["errors"]["body"],
            json!(["must be a JSON object"]),
            "{body}"
        );
        let compat = post_bytes(
            &app,
            "/authentication/refresh-token",
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(compat.status, 400, "{body}: {}", compat.text);
        assert_eq!(
            compat.body["errors"],
            json!(["body must be a JSON object"]),
            "{body}"
        );
    }
    // A body that may be left out may also be `null`; anything else still has to be an object.
    let logout = app
        .send(
            app.client
                .post(app.url("/v1/auth/logout"))
                .bearer_auth(&user.access_token)
                .header("content-type", "application/json")
                .body("[1]"),
        )
        .await;
    logout.assert_problem(400, "validation_failed");
    let logout = app
        .send(
            app.client
                .post(app.url("/v1/auth/logout"))
                .bearer_auth(&user.access_token)
                .header("content-type", "application/json")
                .body("null"),
        )
        .await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    let user = app.signed_in_user().await;
    let nested = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": "123456", "trustDevice": "yes"}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(
        nested.body["errors"]["trustDevice"],
        json!(["must be an object"])
    );
    let enable = app
        .post(
            "/authentication/enable-2fa",
            json!({"email": user.email, "password": PASSWORD, "enable": "yes"}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(enable.status, 400);
    assert_eq!(
        enable.body["errors"],
        json!(["enable must be true or false"])
    );
    let query = app
        .get(
            "/v1/auth/security-events?limit=lots&offset=%FF",
            Some(&user.access_token),
        )
        .await;
    query.assert_problem(400, "validation_failed");
    let numbers = app
        .post(
            "/v1/auth/login",
            json!({"email": "ann@example.com", "password": 1e308}),
            None,
        )
        .await;
    assert_eq!(
        numbers.body["errors"]["password"],
        json!(["must be a string"])
    );
    still_serving(&app).await;
}

#[tokio::test]
async fn non_utf8_and_control_characters_are_refused_cleanly() {
    let app = TestApp::spawn().await;
    let invalid: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00, 0x7b],
        b"{\"email\": \"\xff\xfe@example.com\", \"password\": \"correct horse battery staple\"}"
            .to_vec(),
        b"{\"email\": \"ann@example.com\", \"password\": \"\xc3\x28\"}".to_vec(),
        // A lone surrogate escape is not a Unicode scalar value.
        br#"{"email": "ann@example.com", "password": "\ud800abc"}"#.to_vec(),
        // UTF-16 with a byte-order mark.
        b"\xfe\xff\x00{\x00}".to_vec(),
    ];
    for body in invalid {
        let v1 = post_bytes(&app, "/v1/auth/login", "application/json", body.clone()).await;
        v1.assert_problem(400, "malformed_json");
        let compat = post_bytes(
            &app,
            "/authentication/login",
            "application/json",
            body.clone(),
        )
        .await;
        assert_eq!(compat.status, 400, "{}", compat.text);
        assert_eq!(
            compat.body["errors"],
            json!(["The request body is not valid JSON"])
        );
    }
    // Valid JSON carrying control characters: refused per field, never stored or logged.
    let response = app
        .post(
            "/v1/auth/register",
            json!({"email": "ann\u{0}@example.com", "password": "pass\u{7}word-long"}),
            None,
        )
        .await;
    response.assert_problem(400, "validation_failed");
    assert_eq!(
        response.body["errors"]["email"],
        json!(["must not contain control characters"])
    );
    assert_eq!(
        response.body["errors"]["password"],
        json!(["must not contain control characters"])
    );
    // Bytes that are not UTF-8 in headers: ignored where optional, a 401 where required.
    let user = app.signed_in_user().await;
    let odd = HeaderValue::from_bytes(b"Mozilla \xff\xfe").unwrap();
    let login = app
        .send(
            app.client
                .post(app.url("/v1/auth/login"))
                .header("user-agent", odd.clone())
                .json(&json!({"email": user.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let me = app
        .send(app.client.get(app.url("/v1/auth/me")).header(
            "authorization",
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        ))
        .await;
    me.assert_problem(401, "unauthorized");
    still_serving(&app).await;
}

#[tokio::test]
async fn headers_of_64_kb_get_a_clean_answer() {
    let app =
        TestApp::spawn_with(|config| config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()])
            .await;
    let user = app.signed_in_user().await;
    let kb64 = "a".repeat(64 * 1024);

    // One 64 KiB header on a route that ignores it: served.
    let padded = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-padding", kb64.as_str()),
        )
        .await;
    assert_eq!(padded.status, 200);
    // A 64 KiB bearer token: refused like any bad token.
    let bearer = app.get("/v1/auth/me", Some(&kb64)).await;
    bearer.assert_problem(401, "unauthorized");
    let compat = app
        .post(
            "/authentication/enable-2fa",
            json!({"email": user.email, "password": PASSWORD, "enable": true}),
            Some(&kb64),
        )
        .await;
    assert_eq!(compat.status, 401);
    assert_eq!(
        compat.body["detail"],
        "Authorization token is missing or invalid"
    );
    // A 64 KiB user agent and X-Forwarded-For (behind a trusted proxy): the login works,
    // and what is recorded is bounded and well-formed.
    let forwarded = std::iter::repeat_n("203.0.113.9", 64 * 1024 / 12)
        .collect::<Vec<_>>()
        .join(",");
    let login = app
        .send(
            app.client
                .post(app.url("/v1/auth/login"))
                .header("user-agent", kb64.as_str())
                .header("x-forwarded-for", forwarded)
                .json(&json!({"email": user.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["user"]["lastLoginIp"], "203.0.113.9");
    let events = app
        .get(
            "/v1/auth/security-events?limit=1",
            Some(login.body["accessToken"].as_str().unwrap()),
        )
        .await;
    let agent = events.body[0]["userAgent"].as_str().unwrap();
    assert!(
        agent.len() <= 512,
        "stored user agent of {} bytes",
        agent.len()
    );
    // A garbage 64 KiB X-Forwarded-For is no better than none.
    let junk = app
        .send(
            app.client
                .post(app.url("/v1/auth/login"))
                .header("x-forwarded-for", format!("{kb64},,,::zz"))
                .json(&json!({"email": user.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(junk.status, 200, "{}", junk.text);
    assert_eq!(junk.body["user"]["lastLoginIp"], "127.0.0.1");

    // 64 KiB spread over 200 headers, or one header of 1 MiB: hyper refuses the header
    // block with 431 before it reaches the application.
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\n".to_vec();
    for i in 0..200 {
        many.extend_from_slice(format!("x-h{i}: {}\r\n", "b".repeat(320)).as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(
        raw(&app, &many, Duration::from_secs(10)).await.status,
        Some(431)
    );
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: tessera\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "c".repeat(1 << 20)
    );
    assert_eq!(
        raw(&app, huge.as_bytes(), Duration::from_secs(10))
            .await
            .status,
        Some(431)
    );
    still_serving(&app).await;
}

#[tokio::test]
async fn a_hundred_slow_connections_do_not_starve_others() {
    // Short timeouts so the slow clients are dealt with quickly: 1 s for a request, 2 s for
    // a connection to send its next request.
    let app = TestApp::spawn_with(|config| {
        config.request_timeout_secs = 1;
        config.connection_idle_timeout_secs = 2;
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for i in 0..100 {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        if i % 2 == 0 {
            // Complete headers, then a body that never finishes.
            stream
                .write_all(b"POST /v1/auth/login HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"email\": ")
                .await
                .unwrap();
        } else {
            // Headers that never finish (slowloris).
            stream
                .write_all(b"POST /v1/auth/login HTTP/1.1\r\nHost: tessera\r\nX-Slow: ")
                .await
                .unwrap();
        }
        slow.push(stream);
    }
    // Meanwhile everyone else is served.
    still_serving(&app).await;
    let answers = futures::future::join_all(
        slow.iter_mut()
            .map(|stream| read_answer(stream, Duration::from_secs(20))),
    )
    .await;
    for (i, answer) in answers.iter().enumerate() {
        if i % 2 == 0 {
            // The request timed out: a 408 problem document.
            assert_eq!(answer.status, Some(408), "connection {i}: {answer:?}");
            assert!(answer.closed, "connection {i} was left open");
            assert_eq!(answer.json()["code"], "request_timeout");
        } else {
            // Closed without a word: the headers never came.
            assert_eq!(answer.status, None, "connection {i}: {answer:?}");
            assert!(answer.closed, "connection {i} was left open");
        }
    }
    still_serving(&app).await;
}

#[tokio::test]
async fn unauthenticated_routes_are_rate_limited_per_client_address() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_per_minute = 60;
        config.rate_limit_burst = 3;
    })
    .await;
    let user = app.signed_in_user().await; // register and login: 2 of the 3
    let body = json!({"email": "nobody@example.com", "password": "wrong password"});
    let third = app.post("/v1/auth/login", body.clone(), None).await;
    third.assert_problem(401, "invalid_credentials");
    let limited = app.post("/v1/auth/login", body.clone(), None).await;
    limited.assert_problem(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("1"));
    // Every unauthenticated route shares the address's budget, on both surfaces; a refused
    // request's body is not even read.
    for path in [
        "/v1/auth/register",
        "/v1/auth/refresh",
        "/v1/auth/2fa/verify",
        "/authentication/login",
        "/authentication/verify-2fa",
        "/authentication/refresh-token",
        "/authentication/enable-2fa",
    ] {
        let response = post_bytes(&app, path, "application/json", b"not even json".to_vec()).await;
        response.assert_problem(429, "rate_limited");
    }
    // Signed-in routes are not limited.
    assert_eq!(
        app.get("/v1/auth/me", Some(&user.access_token))
            .await
            .status,
        200
    );
    assert_eq!(
        app.post("/v1/auth/logout", json!({}), Some(&user.access_token))
            .await
            .status,
        204
    );
    // The bucket refills with time (the server's clock): one request a second.
    app.clock.advance(1);
    app.post("/v1/auth/login", body.clone(), None)
        .await
        .assert_problem(401, "invalid_credentials");
    app.post("/v1/auth/login", body.clone(), None)
        .await
        .assert_problem(429, "rate_limited");
    app.clock.advance(60);
    for _ in 0..3 {
        app.post("/v1/auth/login", body.clone(), None)
            .await
            .assert_problem(401, "invalid_credentials");
    }
}

async fn login(app: &TestApp, forwarded: &str) -> TestResponse {
    app.send(
        app.client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": "nobody@example.com", "password": "wrong password"})),
    )
    .await
}

#[tokio::test]
async fn x_forwarded_for_counts_only_behind_a_trusted_proxy() {
    let limits = |config: &mut tessera::config::Config| {
        config.rate_limit_per_minute = 60;
        config.rate_limit_burst = 1;
    };
    // By default the header is ignored: a client cannot escape its limit by inventing
    // addresses.
    let direct = TestApp::spawn_with(limits).await;
    assert_eq!(login(&direct, "198.51.100.1").await.status, 401);
    login(&direct, "198.51.100.2")
        .await
        .assert_problem(429, "rate_limited");
    // Behind a trusted proxy, each forwarded client has its own budget.
    let proxied = TestApp::spawn_with(|config| {
        limits(config);
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    assert_eq!(login(&proxied, "198.51.100.1").await.status, 401);
    assert_eq!(login(&proxied, "198.51.100.2").await.status, 401);
    login(&proxied, "198.51.100.1")
        .await
        .assert_problem(429, "rate_limited");
    // The proxy's own hop is skipped, the client's is used; spoofed hops further left are not.
    login(&proxied, "203.0.113.50, 198.51.100.2")
        .await
        .assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn the_default_limits_let_a_busy_client_through() {
    // The defaults are generous: a burst of 300 requests from one address is served.
    let app = TestApp::spawn().await;
    assert_eq!(app.config.rate_limit_burst, 300);
    assert_eq!(app.config.rate_limit_per_minute, 300);
    let attempts = (0..300).map(|_| {
        app.post(
            "/v1/auth/refresh",
            json!({"refreshToken": "not-a-token"}),
            None,
        )
    });
    for response in futures::future::join_all(attempts).await {
        response.assert_problem(401, "invalid_refresh_token");
    }
    app.post(
        "/v1/auth/refresh",
        json!({"refreshToken": "not-a-token"}),
        None,
    )
    .await
    .assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let answers = vec![
        app.get("/healthz", None).await,
        app.get("/v1/auth/me", Some(&user.access_token)).await,
        app.get("/v1/auth/me", None).await,
        app.get("/no/such/route", None).await,
        app.post("/authentication/login", json!({}), None).await,
        post_bytes(&app, "/v1/auth/login", "text/plain", b"hi".to_vec()).await,
        app.get("/openapi.json", None).await,
        app.get("/docs", None).await,
    ];
    for answer in answers {
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
        ] {
            assert_eq!(
                answer.header(name),
                Some(value),
                "{name} on {} {}",
                answer.status,
                answer.text.chars().take(80).collect::<String>()
            );
        }
        let csp = answer.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(answer.header("x-request-id").is_some());
    }
}
