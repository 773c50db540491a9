//! Notifications through the real `tessera` binary: messages pending when the server is
//! killed (SIGKILL) are delivered after a restart; two instances on one PostgreSQL
//! database deliver each message once; the `tessera admin webhooks` commands.

use std::path::Path;
use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::support::{Receiver, SECRET, assert_signed};
use crate::helpers::{PASSWORD, fresh_postgres_database, postgres_or_skip};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

struct Server {
    child: Child,
    base: String,
}

/// A configuration file with one webhook endpoint `hooks` for `events`.
fn write_config(dir: &Path, url: &str, events: &[&str]) -> std::path::PathBuf {
    let path = dir.join("tessera.toml");
    let events: Vec<String> = events.iter().map(|e| format!("{e:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "webhook_allow_private_targets = true\noutbox_poll_interval_ms = 100\n\n\
             [[webhooks]]\nname = \"hooks\"\nurl = {url:?}\nsecrets = [{SECRET:?}]\nevents = [{}]\n",
            events.join(", ")
        ),
    )
    .unwrap();
    path
}

async fn start(config: &Path, data_dir: &Path, database_url: &str) -> Server {
    let mut child = Command::new(BIN)
        .env("TESSERA_CONFIG", config)
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_DATABASE_URL", database_url)
        .env("TESSERA_LOG_LEVEL", "warn")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tessera");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("tessera printed its URL");
        if let Some(url) = line.strip_prefix("Tessera listening on ") {
            break url.trim().to_owned();
        }
    };
    Server { child, base }
}

async fn database_url(data_dir: &Path) -> String {
    match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => fresh_postgres_database(&admin).await,
        _ => format!("sqlite://{}", data_dir.join("tessera.db").display()),
    }
}

async fn post(base: &str, path: &str, body: serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// `count` failed logins of a new account through `bases` in turn.
async fn failed_logins(bases: &[&str], count: usize) {
    let email = format!("hooks-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": PASSWORD});
    assert_eq!(post(bases[0], "/v1/auth/register", body).await, 201);
    for i in 0..count {
        let wrong = json!({"email": email, "password": "certainly not the password"});
        let status = post(bases[i % bases.len()], "/v1/auth/login", wrong).await;
        assert!(status == 401 || status == 429, "{status}");
    }
}

async fn admin(
    config: &Path,
    data_dir: &Path,
    database_url: &str,
    args: &[&str],
) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("admin")
        .args(args)
        .env("TESSERA_CONFIG", config)
        .env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_DATABASE_URL", database_url)
        .env("TESSERA_LOG_LEVEL", "warn")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn messages_pending_when_the_server_is_killed_are_delivered_after_restart() {
    let receiver = Receiver::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &receiver.url, &["login_failed"]);
    let url = database_url(dir.path()).await;
    let mut server = start(&config, dir.path(), &url).await;
    failed_logins(&[&server.base], 3).await;
    // Each tried once, refused, and scheduled again.
    let refused = receiver.wait_for_requests(None, 3).await;
    assert!(refused.iter().all(|r| r.status == 503));
    // Killed once the failures are recorded: the messages wait for their retry (a worker
    // killed mid-attempt leaves its claim to run out its lease, a minute and more).
    for _ in 0..100 {
        let (_, listed) = admin(&config, dir.path(), &url, &["webhooks", "deliveries"]).await;
        if listed.matches("HTTP 503").count() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();

    receiver.answer(200);
    let server = start(&config, dir.path(), &url).await;
    let accepted = receiver.wait_for_accepted(None, 3).await;
    let mut ids: Vec<&str> = accepted.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every message, once");
    for message in &accepted {
        assert_signed(message, &[SECRET]);
        assert_eq!(message.body["type"], "login_failed");
    }

    // The operator's view and tools.
    let (ok, list) = admin(&config, dir.path(), &url, &["webhooks", "list"]).await;
    assert!(ok, "{list}");
    assert!(
        list.contains("hooks") && list.contains("delivered 3"),
        "{list}"
    );
    let (ok, deliveries) = admin(&config, dir.path(), &url, &["webhooks", "deliveries"]).await;
    assert!(ok, "{deliveries}");
    assert!(deliveries.contains("3 message(s)"), "{deliveries}");
    let id = deliveries
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (ok, replayed) = admin(&config, dir.path(), &url, &["webhooks", "replay", &id]).await;
    assert!(ok, "{replayed}");
    receiver.wait_for_accepted(None, 4).await;
    let (ok, missing) = admin(
        &config,
        dir.path(),
        &url,
        &["webhooks", "replay", &uuid::Uuid::new_v4().to_string()],
    )
    .await;
    assert!(!ok && missing.contains("no message"), "{missing}");
    let (ok, tested) = admin(&config, dir.path(), &url, &["webhooks", "test", "hooks"]).await;
    assert!(ok && tested.contains("HTTP 200"), "{tested}");
    let got = receiver.wait_for_accepted(None, 5).await;
    let test = got
        .iter()
        .find(|r| r.body["type"] == "test")
        .expect("a test message");
    assert_signed(test, &[SECRET]);
    let (ok, unknown) = admin(&config, dir.path(), &url, &["webhooks", "test", "nope"]).await;
    assert!(!ok && unknown.contains("no webhook endpoint"), "{unknown}");
    drop(server);
}

/// Two instances share one PostgreSQL database and both deliver: each message arrives
/// once (claims skip the rows the other instance holds).
#[tokio::test]
async fn two_instances_on_postgres_deliver_each_message_once() {
    let Some(admin_url) = postgres_or_skip("two_instances_on_postgres_deliver_each_message_once")
    else {
        return;
    };
    let receiver = Receiver::start(true).await;
    let url = fresh_postgres_database(&admin_url).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = write_config(dir_a.path(), &receiver.url, &["login_failed"]);
    let a = start(&config, dir_a.path(), &url).await;
    // The second instance shares the first one's keys (they sign and seal for the same
    // database).
    for file in std::fs::read_dir(dir_a.path()).unwrap() {
        let file = file.unwrap();
        if file.file_name() != "tessera.toml" {
            std::fs::copy(file.path(), dir_b.path().join(file.file_name())).unwrap();
        }
    }
    let b = start(&config, dir_b.path(), &url).await;
    let count = 12;
    failed_logins(&[&a.base, &b.base], count).await;
    let accepted = receiver.wait_for_accepted(None, count).await;
    // Both workers keep polling for a while: still nothing twice.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let all = receiver.all();
    let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "{accepted:?}");
    assert_eq!(before, count, "no message delivered twice");
}
