//! Secrets at rest: what the database holds after a full flow. TOTP secrets only sealed
//! (AEAD, bound to their row), tokens and codes only as hashes, the password only as an
//! Argon2id hash. A database thief learns none of the secrets the flow used.

use serde_json::json;
use tessera::crypto;
use tessera::db::Db;
use tessera::service::second_factor::totp_aad;
use uuid::Uuid;

use crate::helpers::{TestApp, totp_code, verify_code};

/// Every value of one BLOB/TEXT column, as bytes, on either backend.
async fn column(app: &TestApp, sql: &str) -> Vec<Vec<u8>> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &app.state.db {
        Db::Sqlite { write: pool, .. } => {
            sqlx::query_scalar::<_, Vec<u8>>(sql).fetch_all(pool).await
        }
        Db::Postgres(pool) => sqlx::query_scalar::<_, Vec<u8>>(sql).fetch_all(pool).await,
    }
    .expect("column read")
}

async fn text_column(app: &TestApp, sql: &str) -> Vec<String> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &app.state.db {
        Db::Sqlite { write: pool, .. } => {
            sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await
        }
        Db::Postgres(pool) => sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await,
    }
    .expect("column read")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_database_holds_no_secret_in_the_clear() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, &user.password).await;
    let code = totp_code(&enrolled.secret, app.now());
    let trust =
        json!({"deviceName": "laptop", "deviceType": "desktop", "deviceFingerprint": "fp-at-rest"});
    let verified = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": code, "trustDevice": trust}),
            Some(&token),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let pending = app.two_factor_token(&user.email, &user.password).await;

    let raw_secret = data_encoding::BASE32_NOPAD
        .decode(enrolled.secret.as_bytes())
        .unwrap();
    let mut secrets: Vec<Vec<u8>> = vec![
        raw_secret.clone(),
        enrolled.secret.clone().into_bytes(),
        user.password.clone().into_bytes(),
        user.refresh_token.clone().into_bytes(),
        verified.body["refreshToken"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
        verified.body["deviceToken"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
        pending.clone().into_bytes(),
        b"fp-at-rest".to_vec(),
    ];
    for c in &enrolled.backup_codes {
        secrets.push(c.clone().into_bytes());
        secrets.push(c.replace('-', "").into_bytes());
    }

    // Every column that holds bytes or text derived from a secret.
    let mut stored: Vec<Vec<u8>> = Vec::new();
    for sql in [
        "SELECT secret_enc FROM totp_credentials WHERE secret_enc IS NOT NULL",
        "SELECT code_hash FROM backup_codes",
        "SELECT token_hash FROM refresh_tokens",
        "SELECT token_hash FROM two_factor_challenges",
        "SELECT token_hash FROM trusted_devices",
        "SELECT fingerprint_hash FROM trusted_devices",
    ] {
        let values = column(&app, sql).await;
        assert!(!values.is_empty(), "{sql} has rows");
        stored.extend(values);
    }
    for sql in [
        "SELECT password_hash FROM users",
        "SELECT details FROM security_events",
    ] {
        stored.extend(
            text_column(&app, sql)
                .await
                .into_iter()
                .map(String::into_bytes),
        );
    }
    for value in &stored {
        for secret in &secrets {
            assert!(
                !contains(value, secret),
                "a stored value contains a secret in the clear: {}",
                String::from_utf8_lossy(secret)
            );
        }
    }
    let hashes = text_column(&app, "SELECT password_hash FROM users").await;
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")),
        "{hashes:?}"
    );

    // Tokens are stored as their SHA-256, so a presented token can still be found.
    let refresh = column(&app, "SELECT token_hash FROM refresh_tokens").await;
    let expected = crypto::token_hash(verified.body["refreshToken"].as_str().unwrap());
    assert!(refresh.contains(&expected));
    let challenges = column(&app, "SELECT token_hash FROM two_factor_challenges").await;
    assert!(challenges.contains(&crypto::token_hash(&pending)));
}

#[tokio::test]
async fn a_sealed_totp_secret_opens_only_under_its_own_row() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let raw_secret = data_encoding::BASE32_NOPAD
        .decode(enrolled.secret.as_bytes())
        .unwrap();
    let sealed = column(&app, "SELECT secret_enc FROM totp_credentials")
        .await
        .remove(0);
    let owner: Uuid = user.id.parse().unwrap();
    let master = &app.state.keys.master;

    let opened = crypto::open(master, &totp_aad(owner), &sealed).expect("opens under its row");
    assert_eq!(opened.as_slice(), raw_secret.as_slice());
    assert!(
        crypto::open(master, &totp_aad(Uuid::new_v4()), &sealed).is_err(),
        "moved to another user's row, the ciphertext does not open"
    );
    let mut tampered = sealed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(
        crypto::open(master, &totp_aad(owner), &tampered).is_err(),
        "tampering is detected"
    );

    // Copying another user's sealed secret onto this user's row does not give a working
    // authenticator: the server refuses to open it rather than accept its codes.
    let other = app.signed_in_user().await;
    let other_enrolled = app.enable_two_factor(&other).await;
    let sql = "UPDATE totp_credentials SET secret_enc = (SELECT secret_enc FROM totp_credentials WHERE user_id = $1) WHERE user_id = $2";
    let other_id: Uuid = other.id.parse().unwrap();
    match &app.state.db {
        Db::Sqlite { write: pool, .. } => sqlx::query(sql)
            .bind(other_id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|_| ()),
        Db::Postgres(pool) => sqlx::query(sql)
            .bind(other_id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|_| ()),
    }
    .unwrap();
    let token = app.two_factor_token(&user.email, &user.password).await;
    let code = totp_code(&other_enrolled.secret, app.now());
    let refused = verify_code(&app, &token, &code).await;
    assert_ne!(
        refused.status, 200,
        "a secret moved between rows must not work: {}",
        refused.text
    );
}
