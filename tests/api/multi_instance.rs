//! Two real `tessera` processes on one PostgreSQL database: every single-use rule and
//! counter must hold across instances, and a token from one must verify on the other.
//! Skipped (with a message) when `TESSERA_TEST_DATABASE_URL` is not set.

use std::process::Stdio;

use futures::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{
    PASSWORD, backup_codes_in, fresh_postgres_database, postgres_or_skip, totp_code,
};

struct Instance {
    base: String,
    _child: Child,
}

async fn start_instance(data_dir: &std::path::Path, database_url: &str) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        // Re-read the signing keys every second, so a rotation test need not wait long.
        .env("TESSERA_SIGNING_KEY_REFRESH_SECS", "1")
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_DATABASE_URL", database_url)
        .env("TESSERA_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tessera");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .expect("read stdout")
            .expect("tessera printed its URL");
        if let Some(url) = line.strip_prefix("Tessera listening on ") {
            break url.trim().to_owned();
        }
    };
    Instance {
        base,
        _child: child,
    }
}

struct Pair {
    a: Instance,
    b: Instance,
    client: reqwest::Client,
    dir: tempfile::TempDir,
    url: String,
}

/// Two instances sharing keys (one data dir) and one fresh PostgreSQL database.
async fn pair() -> Option<Pair> {
    let admin = postgres_or_skip("two-instance test")?;
    let url = fresh_postgres_database(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let a = start_instance(dir.path(), &url).await;
    let b = start_instance(dir.path(), &url).await;
    Some(Pair {
        a,
        b,
        client: reqwest::Client::new(),
        dir,
        url,
    })
}

impl Pair {
    fn base(&self, i: usize) -> &str {
        if i.is_multiple_of(2) {
            &self.a.base
        } else {
            &self.b.base
        }
    }

    async fn post(&self, i: usize, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{}", self.base(i), path))
            .json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, i: usize, path: &str, bearer: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{}", self.base(i), path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Registers and signs in on instance A; returns (email, access, refresh).
    async fn user(&self) -> (String, String, String) {
        let email = format!("multi-{}@example.com", uuid::Uuid::new_v4().simple());
        let (status, _) = self
            .post(
                0,
                "/v1/auth/register",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 201);
        let (status, body) = self
            .post(
                0,
                "/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 200);
        (
            email,
            body["accessToken"].as_str().unwrap().into(),
            body["refreshToken"].as_str().unwrap().into(),
        )
    }

    /// Turns 2FA on with the code of the current step; returns (secret, backup codes).
    async fn enrol(&self, access: &str) -> (String, Vec<String>) {
        let (_, setup) = self
            .post(0, "/v1/auth/2fa/setup", json!({}), Some(access))
            .await;
        let secret = setup["secret"].as_str().unwrap().to_owned();
        let code = totp_code(&secret, now());
        let (status, body) = self
            .post(
                1,
                "/v1/auth/2fa/verify-setup",
                json!({"code": code}),
                Some(access),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let codes = backup_codes_in(&body);
        (secret, codes)
    }

    async fn two_factor_token(&self, i: usize, email: &str) -> String {
        let (status, body) = self
            .post(
                i,
                "/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["twoFactorToken"].as_str().unwrap().to_owned()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_token_issued_by_one_instance_verifies_on_the_other() {
    let Some(pair) = pair().await else { return };
    let (_, access, refresh) = pair.user().await;
    let (status, me) = pair.get(1, "/v1/auth/me", &access).await;
    assert_eq!(status, 200, "{me}");
    let (status, _) = pair
        .post(
            1,
            "/v1/auth/refresh",
            json!({"refreshToken": refresh}),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn one_totp_code_wins_once_across_instances() {
    let Some(pair) = pair().await else { return };
    let (email, access, _) = pair.user().await;
    let (secret, _) = pair.enrol(&access).await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(pair.two_factor_token(i, &email).await);
    }
    // The enrolment used the current step; the next step's code is inside the window.
    let code = totp_code(&secret, now() + 30);
    let attempts = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| pair.post(i, "/v1/auth/2fa/verify", json!({"code": code}), Some(t)));
    let results = join_all(attempts).await;
    let wins = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(wins, 1, "exactly one verify may succeed: {results:?}");
}

#[tokio::test]
async fn one_backup_code_wins_once_across_instances() {
    let Some(pair) = pair().await else { return };
    let (email, access, _) = pair.user().await;
    let (_, codes) = pair.enrol(&access).await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(pair.two_factor_token(i, &email).await);
    }
    let attempts = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| pair.post(i, "/v1/auth/2fa/verify", json!({"code": codes[0]}), Some(t)));
    let results = join_all(attempts).await;
    let wins = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        wins, 1,
        "exactly one use of the backup code may succeed: {results:?}"
    );
}

#[tokio::test]
async fn one_refresh_token_rotates_once_across_instances() {
    let Some(pair) = pair().await else { return };
    let (_, _, refresh) = pair.user().await;
    let attempts = (0..20).map(|i| {
        pair.post(
            i,
            "/v1/auth/refresh",
            json!({"refreshToken": refresh}),
            None,
        )
    });
    let results = join_all(attempts).await;
    let wins = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(wins, 1, "exactly one refresh may succeed: {results:?}");
}

#[tokio::test]
async fn a_lockout_earned_on_one_instance_holds_on_the_other() {
    let Some(pair) = pair().await else { return };
    let (email, access, _) = pair.user().await;
    let (secret, _) = pair.enrol(&access).await;
    let token = pair.two_factor_token(0, &email).await;
    for i in 0..5 {
        let (status, body) = pair
            .post(
                i,
                "/v1/auth/2fa/verify",
                json!({"code": "000000"}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 401, "wrong code {i}: {body}");
    }
    let right = totp_code(&secret, now() + 30);
    for i in 0..2 {
        let fresh = pair.two_factor_token(i, &email).await;
        let (status, body) = pair
            .post(
                i,
                "/v1/auth/2fa/verify",
                json!({"code": right}),
                Some(&fresh),
            )
            .await;
        assert_eq!(status, 429, "instance {i} must refuse while locked: {body}");
        assert_eq!(body["code"], "second_factor_locked");
    }
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    crate::tokens::parts(token).0["kid"]
        .as_str()
        .expect("a kid")
        .to_owned()
}

#[tokio::test]
async fn both_instances_see_a_rotation_made_by_the_admin_command() {
    let Some(pair) = pair().await else { return };
    let (email, old, _) = pair.user().await;
    let old_kid = kid_of(&old);
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "--operator", "test", "keys", "rotate"])
        .env("TESSERA_DATA_DIR", pair.dir.path())
        .env("TESSERA_DATABASE_URL", &pair.url)
        .env("TESSERA_LOG_LEVEL", "warn")
        .output()
        .await
        .expect("run tessera admin keys rotate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&old_kid), "names the retired key: {stdout}");

    // Each instance picks the new key up within its re-read interval (1 s here), without
    // a restart: poll each for a token signed with another key than the old one.
    for i in [0, 1] {
        let mut rotated = None;
        for _ in 0..50 {
            let (status, body) = pair
                .post(
                    i,
                    "/v1/auth/login",
                    json!({"email": email, "password": PASSWORD}),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let token = body["accessToken"].as_str().unwrap().to_owned();
            if kid_of(&token) != old_kid {
                rotated = Some(token);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let token = rotated.unwrap_or_else(|| panic!("instance {i} signs with the new key"));
        // The new token verifies on both instances, and so does the one from before.
        for j in [0, 1] {
            let (status, body) = pair.get(j, "/v1/auth/me", &token).await;
            assert_eq!(status, 200, "new token on instance {j}: {body}");
            let (status, body) = pair.get(j, "/v1/auth/me", &old).await;
            assert_eq!(status, 200, "old token on instance {j}: {body}");
        }
        let jwks: Value = pair
            .client
            .get(format!("{}/.well-known/jwks.json", pair.base(i)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(
            kids.contains(&old_kid.as_str()) && kids.contains(&kid_of(&token).as_str()),
            "{kids:?}"
        );
    }
}
