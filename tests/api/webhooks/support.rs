//! A real webhook receiver (an axum server on port 0) that checks each signature with an
//! independent implementation (the `standardwebhooks` crate), and a small SMTP sink.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use tessera::config::{Config, WebhookEndpoint};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::TestApp;

/// A secret in the Standard Webhooks form, and a second one for rotation.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const NEXT_SECRET: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM=";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signatures: Vec<String>,
    pub body: Value,
    pub raw: String,
    pub headers: HeaderMap,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

#[derive(Clone)]
struct Shared {
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

/// Answers the status set with [`Receiver::answer`]: a redirect (3xx) points back at the
/// receiver (a client that followed it would be seen twice); 0 never answers.
async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let raw = String::from_utf8(body.to_vec()).expect("UTF-8 body");
    let status = shared.status.load(Ordering::SeqCst);
    shared.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or(0),
        signatures: header("webhook-signature")
            .split(' ')
            .map(str::to_owned)
            .collect(),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
        headers: headers.clone(),
        status,
    });
    match status {
        0 => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
        300..=399 => (
            StatusCode::from_u16(status).unwrap(),
            [(axum::http::header::LOCATION, "/hook?followed=1")],
        )
            .into_response(),
        _ => StatusCode::from_u16(status).unwrap().into_response(),
    }
}

impl Receiver {
    /// A receiver answering 200 (`up`) or 503.
    pub async fn start(up: bool) -> Self {
        let shared = Shared {
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(if up { 200 } else { 503 })),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            got: shared.got,
            status: shared.status,
        }
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests it accepted (answered 2xx).
    pub fn accepted(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits (waking the server's worker) until `count` requests arrived in all, failing
    /// the test after 20 s.
    pub async fn wait_for_requests(&self, app: Option<&TestApp>, count: usize) -> Vec<Received> {
        self.wait(app, || self.all().len() >= count, "requests")
            .await;
        self.all()
    }

    /// Waits until `count` requests were accepted.
    pub async fn wait_for_accepted(&self, app: Option<&TestApp>, count: usize) -> Vec<Received> {
        self.wait(app, || self.accepted().len() >= count, "accepted")
            .await;
        self.accepted()
    }

    async fn wait(&self, app: Option<&TestApp>, done: impl Fn() -> bool, what: &str) {
        for _ in 0..200 {
            if done() {
                return;
            }
            if let Some(app) = app {
                app.state.outbox.wake();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the receiver never got enough {what}: {:#?}", self.all());
    }
}

/// Checks a request's signatures with the `standardwebhooks` crate: one per secret, over
/// its id, timestamp and body.
#[track_caller]
pub fn assert_signed(received: &Received, secrets: &[&str]) {
    assert!(received.id.starts_with("msg_"), "{received:?}");
    assert_eq!(received.signatures.len(), secrets.len(), "{received:?}");
    for secret in secrets {
        let expected = standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign(&received.id, received.timestamp, received.raw.as_bytes())
            .unwrap();
        assert!(
            received.signatures.contains(&expected),
            "no signature by {secret}: {received:?}"
        );
    }
}

/// An endpoint named `hooks` at `url` for `events`, signed with `secrets`.
/// The name of the endpoint [`endpoint`] configures.
pub const CHANNEL: &str = "hooks";

pub fn endpoint(url: &str, secrets: &[&str], events: &[&str]) -> WebhookEndpoint {
    WebhookEndpoint {
        name: CHANNEL.into(),
        url: url.to_owned(),
        secrets: secrets
            .iter()
            .map(|s| SecretString::from((*s).to_owned()))
            .collect(),
        events: events.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The test settings for webhooks to `receiver`: loopback allowed, a quick poll.
pub fn with_webhook(config: &mut Config, url: &str, events: &[&str]) {
    config.webhooks = vec![endpoint(url, &[SECRET], events)];
    config.webhook_allow_private_targets = true;
    config.outbox_poll_interval_ms = 100;
}

/// One email the sink received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// Recipients whose address contains this are refused for good (`550`), as a real server
/// refuses a mailbox that does not exist.
pub const REFUSED_MAILBOX: &str = "no-such-mailbox";

/// An SMTP server on port 0 speaking just enough of RFC 5321 for one client: greeting,
/// EHLO/HELO, MAIL, RCPT, DATA (dot-terminated, dot-unstuffed), RSET, NOOP, QUIT.
#[derive(Clone)]
pub struct SmtpSink {
    pub url: String,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let store = mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        Self { url, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, app: &TestApp, count: usize) -> Vec<Mail> {
        for _ in 0..200 {
            if self.mails().len() >= count {
                return self.mails();
            }
            app.state.outbox.wake();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the SMTP sink got {} mail(s)", self.mails().len());
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_owned();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let recipient = line[8..].trim().to_owned();
            if recipient.contains(REFUSED_MAILBOX) {
                write.write_all(b"550 5.1.1 no such mailbox\r\n").await?;
                continue;
            }
            to.push(recipient);
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push('\n');
            }
            store.lock().unwrap().push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            write.write_all(b"250 queued\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP and anything else.
            write.write_all(b"250 OK\r\n").await?;
        }
    }
    Ok(())
}
