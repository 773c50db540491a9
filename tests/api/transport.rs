//! Who the client is and how it reached us: trusted proxies and `X-Forwarded-For`, the
//! request id, TLS and HSTS, and connections that carry a body to a route that needs none.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// One response read off a raw connection: status, head (lower-cased) and body.
struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

/// Reads the next response (an interim `100 Continue` included) from `stream`; bytes past
/// it stay in `buffer`. `None` when the server closes the connection first.
async fn next_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<RawResponse> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).into_owned();
            buffer.drain(..end + 4 + length);
            return Some(RawResponse { status, head, body });
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Sends `POST path` with the `{}` body in a second write, then a second request on the
/// same connection; returns both answers (the second `None` if the connection was closed).
///
/// With `expect_continue`, the body is sent only once the server has either asked for it
/// (`100 Continue`, sent when the handler starts reading) or answered without it: the body
/// then certainly arrives after the server's decision, as it does by chance when a client's
/// second TCP segment is delayed, so a route that answers without reading is caught every
/// time rather than now and then.
async fn body_in_a_second_write(
    app: &TestApp,
    path: &str,
    bearer: &str,
    expect_continue: bool,
) -> (RawResponse, Option<RawResponse>) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let expect = if expect_continue {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: tessera\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n{expect}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut buffer = Vec::new();
    let first = if expect_continue {
        let answer = next_response(&mut stream, &mut buffer)
            .await
            .expect("an answer to the head");
        stream.write_all(b"{}").await.unwrap();
        if answer.status == 100 {
            next_response(&mut stream, &mut buffer)
                .await
                .expect("an answer")
        } else {
            answer
        }
    } else {
        stream.write_all(b"{}").await.unwrap();
        next_response(&mut stream, &mut buffer)
            .await
            .expect("an answer")
    };
    let status = format!(
        "GET /v1/auth/2fa/status HTTP/1.1\r\nHost: tessera\r\nAuthorization: Bearer {bearer}\r\n\r\n"
    );
    let second = match stream.write_all(status.as_bytes()).await {
        Ok(()) => next_response(&mut stream, &mut buffer).await,
        Err(_) => None,
    };
    (first, second)
}

#[tokio::test]
async fn a_body_sent_to_a_route_that_needs_none_is_read_and_the_connection_kept() {
    let app = TestApp::spawn().await;
    for path in [
        "/v1/auth/2fa/setup",
        "/v1/auth/2fa/regenerate-backup-codes",
        "/v1/auth/logout",
    ] {
        for expect_continue in [true, false] {
            let user = app.signed_in_user().await;
            let (first, second) =
                body_in_a_second_write(&app, path, &user.access_token, expect_continue).await;
            assert!(
                first.status < 500 && first.status != 400,
                "POST {path} with {{}}: {} {}",
                first.status,
                first.body
            );
            assert!(
                !first.head.contains("connection: close"),
                "POST {path} kept the connection: {}",
                first.head
            );
            let second = second.unwrap_or_else(|| {
                panic!("POST {path} (expect {expect_continue}): the next request got no answer")
            });
            assert!(
                [200, 401].contains(&second.status),
                "the next request was answered: {} {}",
                second.status,
                second.body
            );
        }
    }
    // The setup answer itself is a normal one.
    let user = app.signed_in_user().await;
    let (first, _) =
        body_in_a_second_write(&app, "/v1/auth/2fa/setup", &user.access_token, true).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("\"secret\""), "{}", first.body);
}

#[tokio::test]
async fn a_route_that_takes_no_fields_accepts_empty_and_refuses_unknown_fields() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    // No body at all, and an empty object: both fine.
    let bare = app
        .send(
            app.client
                .post(app.url("/v1/auth/2fa/setup"))
                .bearer_auth(&user.access_token),
        )
        .await;
    assert_eq!(bare.status, 200, "{}", bare.text);
    let empty = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
        .await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    // An unknown field is refused on /v1, as on every other route.
    let unknown = app
        .post(
            "/v1/auth/2fa/setup",
            json!({"secret": "mine"}),
            Some(&user.access_token),
        )
        .await;
    unknown.assert_problem(400, "validation_failed");
    assert_eq!(
        unknown.body["errors"]["secret"][0], "is not a known field",
        "{}",
        unknown.text
    );
    // A body that is not JSON is refused like elsewhere.
    let text = app
        .send(
            app.client
                .post(app.url("/v1/auth/2fa/setup"))
                .bearer_auth(&user.access_token)
                .header("content-type", "text/plain")
                .body("hello"),
        )
        .await;
    text.assert_problem(415, "unsupported_media_type");
}

/// A certificate authority made for one test, and server certificates it signs.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A server certificate (for `localhost` and 127.0.0.1) and its key, in PEM, and the
/// certificate's DER to recognise it in a handshake.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tessera test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        Self {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A new server certificate with a new key, named `name`.
    pub fn server_cert(&self, name: &str) -> ServerCert {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// An HTTPS client that trusts this CA only, on a fresh connection pool, and reports
    /// the certificate the server presented.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.pem().as_bytes()).unwrap())
            .tls_info(true)
            .https_only(true)
            .build()
            .unwrap()
    }
}

impl ServerCert {
    /// Writes the certificate and key to `cert.pem` and `key.pem` in `dir`.
    pub fn write_to(&self, dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// `GET base/healthz` with `client`: the answer and the DER certificate the server showed.
pub async fn healthz_over_tls(
    client: &reqwest::Client,
    base: &str,
) -> (reqwest::Response, Vec<u8>) {
    let response = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("TLS request");
    let der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the server's certificate")
        .to_vec();
    (response, der)
}

#[tokio::test]
async fn native_tls_serves_https_with_hsts() {
    let ca = TestCa::new();
    let pki = tempfile::tempdir().unwrap();
    let served = ca.server_cert("first");
    let (cert, key) = served.write_to(pki.path());
    let app = TestApp::spawn_with(|config| {
        config.tls_cert_file = Some(cert);
        config.tls_key_file = Some(key);
    })
    .await;
    assert!(
        app.address.starts_with("https://127.0.0.1:"),
        "{}",
        app.address
    );
    let client = ca.client();
    let (health, der) = healthz_over_tls(&client, &app.address).await;
    assert_eq!(health.status(), 200);
    assert_eq!(der, served.der, "the configured certificate is served");
    assert_eq!(
        health.headers().get("strict-transport-security").unwrap(),
        "max-age=31536000"
    );
    // The API works over it, and its answers carry HSTS too.
    let registered = app
        .send(
            client
                .post(format!("{}/v1/auth/register", app.address))
                .json(&json!({"email": "tls@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(
        registered.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(app.address.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // Still serving after that.
    assert_eq!(
        healthz_over_tls(&client, &app.address).await.0.status(),
        200
    );
}

#[tokio::test]
async fn hsts_is_sent_over_plain_http_only_for_a_trusted_proxy_saying_https() {
    let hsts = |answer: &TestResponse| {
        answer
            .header("strict-transport-security")
            .map(str::to_owned)
    };
    let with_proto = |app: &TestApp, proto: Option<&str>| {
        let mut request = app.client.get(app.url("/healthz"));
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        request
    };
    // Nobody is trusted: never, whatever the client says.
    let direct = TestApp::spawn().await;
    for proto in [None, Some("https"), Some("http")] {
        let answer = direct.send(with_proto(&direct, proto)).await;
        assert_eq!(
            hsts(&answer),
            None,
            "untrusted peer, X-Forwarded-Proto {proto:?}"
        );
    }
    // Behind a trusted proxy: when it says the client came over HTTPS.
    let proxied = TestApp::spawn_with(|config| {
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for (proto, expected) in [
        (Some("https"), Some("max-age=31536000")),
        (Some("HTTPS"), Some("max-age=31536000")),
        (Some("http"), None),
        (Some("https, http"), None),
        (None, None),
    ] {
        let answer = proxied.send(with_proto(&proxied, proto)).await;
        assert_eq!(
            hsts(&answer).as_deref(),
            expected,
            "trusted proxy, X-Forwarded-Proto {proto:?}"
        );
    }
    // On an error answer too.
    let missing = proxied
        .send(
            proxied
                .client
                .get(proxied.url("/no/such/route"))
                .header("x-forwarded-proto", "https"),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(hsts(&missing).as_deref(), Some("max-age=31536000"));
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections() {
    let ca = TestCa::new();
    let pki = tempfile::tempdir().unwrap();
    let first = ca.server_cert("first");
    let (cert, key) = first.write_to(pki.path());
    let app = TestApp::spawn_with(|config| {
        config.tls_cert_file = Some(cert);
        config.tls_key_file = Some(key);
    })
    .await;
    let tls = app.tls.clone().expect("TLS is on");
    assert_eq!(
        healthz_over_tls(&ca.client(), &app.address).await.1,
        first.der
    );

    // The files are replaced (a renewal); after the reload new connections see the new one.
    let second = ca.server_cert("second");
    second.write_to(pki.path());
    assert_eq!(
        healthz_over_tls(&ca.client(), &app.address).await.1,
        first.der,
        "nothing changes until the reload"
    );
    tls.reload().expect("reload");
    assert_eq!(
        healthz_over_tls(&ca.client(), &app.address).await.1,
        second.der
    );

    // A broken pair is refused, and the current certificate stays in use.
    std::fs::write(pki.path().join("key.pem"), "not a key").unwrap();
    let err = tls.reload().unwrap_err();
    assert!(format!("{err:#}").contains("key.pem"), "{err:#}");
    let mismatched = ca.server_cert("third");
    std::fs::write(pki.path().join("cert.pem"), &mismatched.cert_pem).unwrap();
    std::fs::write(pki.path().join("key.pem"), &first.key_pem).unwrap();
    assert!(
        tls.reload().is_err(),
        "a certificate with another's key is refused"
    );
    assert_eq!(
        healthz_over_tls(&ca.client(), &app.address).await.1,
        second.der
    );
}

#[tokio::test]
async fn stalled_tls_handshakes_hold_up_nobody_and_are_closed() {
    let ca = TestCa::new();
    let pki = tempfile::tempdir().unwrap();
    let (cert, key) = ca.server_cert("tessera").write_to(pki.path());
    let app = TestApp::spawn_with(|config| {
        config.tls_cert_file = Some(cert);
        config.tls_key_file = Some(key);
        config.request_timeout_secs = 1;
        config.connection_idle_timeout_secs = 2;
    })
    .await;
    let address = app.address.trim_start_matches("https://").to_owned();
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        if i % 2 == 0 {
            // The start of a TLS record announcing a ClientHello that never comes.
            stream
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .unwrap();
        }
        stalled.push(stream);
    }
    // The handshakes happen in the connections' own tasks: everyone else is served.
    let (health, _) = healthz_over_tls(&ca.client(), &app.address).await;
    assert_eq!(health.status(), 200);
    // And each stalled connection is closed by the connection deadline.
    for (i, stream) in stalled.iter_mut().enumerate() {
        let mut buffer = [0u8; 64];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("stalled connection {i} was left open"));
        assert!(matches!(read, Ok(0) | Err(_)), "connection {i}: {read:?}");
    }
    assert_eq!(
        healthz_over_tls(&ca.client(), &app.address)
            .await
            .0
            .status(),
        200
    );
}

#[tokio::test]
async fn tls_settings_are_checked_at_start() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "tls_cert_file = \"/tmp/cert.pem\"\n").unwrap();
    let err = tessera::config::Config::load(Some(file.path())).unwrap_err();
    assert!(format!("{err:#}").contains("tls_key_file"), "{err:#}");

    let pki = tempfile::tempdir().unwrap();
    std::fs::write(pki.path().join("cert.pem"), "no certificate here").unwrap();
    std::fs::write(pki.path().join("key.pem"), "no key here").unwrap();
    let config = tessera::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: pki.path().join("data"),
        tls_cert_file: Some(pki.path().join("cert.pem")),
        tls_key_file: Some(pki.path().join("key.pem")),
        ..Default::default()
    };
    let err = tessera::startup::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("cert.pem"), "{err:#}");
}
