//! Access and refresh tokens: the JWT checked against the published JWKS by an
//! independent verifier (`ed25519-dalek` directly), forged and expired tokens, refresh
//! rotation and theft detection, concurrent refreshes, and keys surviving a restart.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser};

const ACCESS_TTL: i64 = 15 * 60;
const REFRESH_TTL: i64 = 30 * 24 * 3600;

/// One key of the JWKS, checked to be an Ed25519 OKP key.
pub(crate) struct Jwk {
    pub(crate) kid: String,
    key: VerifyingKey,
}

pub(crate) async fn fetch_jwks(app: &TestApp) -> Vec<Jwk> {
    let response = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(
        response.content_type().starts_with("application/json"),
        "{}",
        response.content_type()
    );
    let keys = response.body["keys"].as_array().expect("a `keys` array");
    assert!(!keys.is_empty(), "at least one key: {}", response.text);
    keys.iter()
        .map(|k| {
            assert_eq!(k["kty"], "OKP", "{k}");
            assert_eq!(k["crv"], "Ed25519", "{k}");
            assert!(
                k.get("d").is_none(),
                "the JWKS never holds the private key: {k}"
            );
            let x = URL_SAFE_NO_PAD
                .decode(k["x"].as_str().expect("x"))
                .expect("x is base64url");
            let x: [u8; 32] = x
                .as_slice()
                .try_into()
                .expect("an Ed25519 public key is 32 bytes");
            Jwk {
                kid: k["kid"].as_str().expect("kid").to_owned(),
                key: VerifyingKey::from_bytes(&x).expect("a valid Ed25519 point"),
            }
        })
        .collect()
}

/// The JSON of one base64url segment of a JWT.
fn segment(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("a base64url segment");
    serde_json::from_slice(&bytes).expect("a JSON segment")
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Splits a compact JWT into header, claims and signature, without verifying anything.
pub(crate) fn parts(token: &str) -> (Value, Value, Vec<u8>) {
    let pieces: Vec<&str> = token.split('.').collect();
    assert_eq!(pieces.len(), 3, "a compact JWS: {token}");
    let signature = URL_SAFE_NO_PAD
        .decode(pieces[2])
        .expect("signature is base64url");
    (segment(pieces[0]), segment(pieces[1]), signature)
}

/// Verifies `token` with the JWKS alone, as another service would; returns the claims.
pub(crate) fn verify_independently(token: &str, jwks: &[Jwk]) -> Result<Value, String> {
    let (header, claims, signature) = parts(token);
    if header["alg"] != "EdDSA" {
        return Err(format!("alg is {}", header["alg"]));
    }
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let jwk = jwks
        .iter()
        .find(|k| k.kid == kid)
        .ok_or("kid not in the JWKS")?;
    let signature: [u8; 64] = signature
        .as_slice()
        .try_into()
        .map_err(|_| "signature is not 64 bytes")?;
    let (signed, _) = token.rsplit_once('.').unwrap();
    jwk.key
        .verify_strict(signed.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|e| format!("signature: {e}"))?;
    Ok(claims)
}

/// A token with this header and these claims, signed by `key` (or unsigned for `None`).
pub(crate) fn forge(header: &Value, claims: &Value, key: Option<&SigningKey>) -> String {
    let signed = format!("{}.{}", encode(header), encode(claims));
    match key {
        Some(key) => format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(key.sign(signed.as_bytes()).to_bytes())
        ),
        None => format!("{signed}."),
    }
}

async fn refresh(app: &TestApp, token: &str) -> crate::helpers::TestResponse {
    app.post("/v1/auth/refresh", json!({"refreshToken": token}), None)
        .await
}

fn tokens_of(body: &Value) -> (String, String) {
    (
        body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned(),
        body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_owned(),
    )
}

#[tokio::test]
async fn access_token_verifies_against_the_jwks_with_the_documented_claims() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let login_time = app.now();
    let jwks = fetch_jwks(&app).await;

    let (header, _, _) = parts(&user.access_token);
    assert_eq!(header["alg"], "EdDSA");
    assert!(
        jwks.iter().any(|k| header["kid"] == k.kid.as_str()),
        "the header's kid is published: {header}"
    );

    let claims =
        verify_independently(&user.access_token, &jwks).expect("the token verifies with the JWKS");
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["iat"], login_time);
    assert_eq!(claims["exp"], login_time + ACCESS_TTL);
    assert_eq!(claims["auth_time"], login_time);
    assert_eq!(claims["amr"], json!(["pwd"]));
    let jti = claims["jti"].as_str().expect("jti");
    assert!(uuid::Uuid::parse_str(jti).is_ok(), "jti is a UUID: {jti}");

    // The verifier is not a rubber stamp: one changed byte of the signed part fails it.
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!(uuid::Uuid::new_v4().to_string());
    let signature = user.access_token.rsplit_once('.').unwrap().1;
    let tampered = format!(
        "{}.{}.{signature}",
        encode(&header),
        encode(&tampered_claims)
    );
    assert!(verify_independently(&tampered, &jwks).is_err());

    // Every token gets its own jti.
    let second = app.login(&user.email, PASSWORD).await;
    let second_claims =
        verify_independently(second.body["accessToken"].as_str().unwrap(), &jwks).unwrap();
    assert_ne!(second_claims["jti"], claims["jti"]);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let victim = app.signed_in_user().await;
    let (header, claims, _) = parts(&user.access_token);
    let genuine = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(genuine.status, 200, "{}", genuine.text);

    // Unsigned, `alg: none`.
    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let unsigned = forge(&none_header, &claims, None);
    app.get("/v1/auth/me", Some(&unsigned))
        .await
        .assert_problem(401, "unauthorized");
    // `alg: none` but with the real signature still attached.
    let signature = user.access_token.rsplit_once('.').unwrap().1;
    let relabelled = format!("{}.{}.{signature}", encode(&none_header), encode(&claims));
    app.get("/v1/auth/me", Some(&relabelled))
        .await
        .assert_problem(401, "unauthorized");

    // Signed with another Ed25519 key under the server's kid.
    let attacker = SigningKey::from_bytes(&[7u8; 32]);
    let other_key = forge(&header, &claims, Some(&attacker));
    app.get("/v1/auth/me", Some(&other_key))
        .await
        .assert_problem(401, "unauthorized");

    // The genuine signature over a payload whose `sub` now names another user.
    let mut stolen = claims.clone();
    stolen["sub"] = json!(victim.id);
    let tampered = format!("{}.{}.{signature}", encode(&header), encode(&stolen));
    app.get("/v1/auth/me", Some(&tampered))
        .await
        .assert_problem(401, "unauthorized");

    // A far-future `exp` on the genuine signature.
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 86_400);
    let extended = format!("{}.{}.{signature}", encode(&header), encode(&longer));
    app.get("/v1/auth/me", Some(&extended))
        .await
        .assert_problem(401, "unauthorized");

    // The genuine token still works: nothing above was refused for another reason.
    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], user.id.as_str());
}

#[tokio::test]
async fn access_token_expires_after_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    app.clock.advance(ACCESS_TTL - 1);
    let before = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(before.status, 200, "valid until exp: {}", before.text);
    app.clock.advance(2);
    let after = app.get("/v1/auth/me", Some(&user.access_token)).await;
    after.assert_problem(401, "unauthorized");
    // The session itself lives on: the refresh token still gets a working access token.
    let refreshed = refresh(&app, &user.refresh_token).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let (access, _) = tokens_of(&refreshed.body);
    assert_eq!(app.get("/v1/auth/me", Some(&access)).await.status, 200);
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let first = refresh(&app, &user.refresh_token).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let (_, second_refresh) = tokens_of(&first.body);
    assert_ne!(
        second_refresh, user.refresh_token,
        "a new refresh token each time"
    );

    let reused = refresh(&app, &user.refresh_token).await;
    reused.assert_problem(401, "invalid_refresh_token");
}

#[tokio::test]
async fn reusing_a_retired_refresh_token_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let other = app.login(&user.email, PASSWORD).await;
    assert_eq!(other.status, 200);

    let r2 = refresh(&app, &user.refresh_token).await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    let (_, r2_refresh) = tokens_of(&r2.body);
    let r3 = refresh(&app, &r2_refresh).await;
    assert_eq!(r3.status, 200, "{}", r3.text);
    let (newest_access, newest_refresh) = tokens_of(&r3.body);
    assert_eq!(
        app.get("/v1/auth/me", Some(&newest_access)).await.status,
        200
    );

    // The first token, retired two rotations ago, turns up again: theft.
    refresh(&app, &user.refresh_token)
        .await
        .assert_problem(401, "invalid_refresh_token");

    refresh(&app, &newest_refresh)
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.get("/v1/auth/me", Some(&newest_access))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/v1/auth/me", Some(&user.access_token))
        .await
        .assert_problem(401, "unauthorized");

    // Another family (a separate login) is untouched.
    let (other_access, other_refresh) = tokens_of(&other.body);
    assert_eq!(
        app.get("/v1/auth/me", Some(&other_access)).await.status,
        200
    );
    assert_eq!(refresh(&app, &other_refresh).await.status, 200);
}

/// The refresh-token rows the database holds for the sessions of the user `user_id`.
async fn refresh_token_rows(app: &TestApp, user_id: &str) -> i64 {
    let user_id = uuid::Uuid::parse_str(user_id).unwrap();
    let sql = "SELECT COUNT(*) FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
               WHERE s.user_id = $1";
    let mut conn = app.state.db.read().await.unwrap();
    tessera::db::run!(conn, e => sqlx::query_scalar::<_, i64>(sql).bind(user_id).fetch_one(&mut *e).await)
        .unwrap()
}

/// However often a session is refreshed, the database keeps one refresh token for it (the
/// live one; none is kept for a reuse grace, which is off by default), and a token retired
/// long ago is still known as the session's by the family it starts with: presenting it
/// ends the session.
#[tokio::test]
async fn a_session_keeps_only_its_live_refresh_token_however_often_it_is_refreshed() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let mut latest = user.refresh_token.clone();
    for _ in 0..30 {
        let rotated = refresh(&app, &latest).await;
        assert_eq!(rotated.status, 200, "{}", rotated.text);
        latest = tokens_of(&rotated.body).1;
    }
    assert_eq!(refresh_token_rows(&app, &user.id).await, 1);

    refresh(&app, &user.refresh_token)
        .await
        .assert_problem(401, "invalid_refresh_token");
    refresh(&app, &latest)
        .await
        .assert_problem(401, "invalid_refresh_token");
}

/// With a reuse grace, the tokens retired inside it are kept (each may be exchanged once
/// more) and the older ones are not.
#[tokio::test]
async fn a_session_keeps_the_tokens_retired_inside_the_reuse_grace_and_no_older_ones() {
    let app = TestApp::spawn_with(|c| c.refresh_reuse_grace_secs = 5).await;
    let user = app.signed_in_user().await;
    let mut latest = user.refresh_token.clone();
    for _ in 0..3 {
        let rotated = refresh(&app, &latest).await;
        assert_eq!(rotated.status, 200, "{}", rotated.text);
        latest = tokens_of(&rotated.body).1;
    }
    assert_eq!(
        refresh_token_rows(&app, &user.id).await,
        4,
        "3 retired, 1 live"
    );
    app.clock.advance(6);
    let rotated = refresh(&app, &latest).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(
        refresh_token_rows(&app, &user.id).await,
        2,
        "the one retired now, and the live one"
    );
}

/// A session signed in before refresh tokens carried their family (a token without one,
/// as an older server issued them) refreshes as before, into a token of a family, and its
/// old token presented again still ends the session.
#[tokio::test]
async fn a_refresh_token_from_before_families_still_refreshes() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let session: uuid::Uuid = {
        let hash = tessera::crypto::token_hash(&user.refresh_token);
        let sql = "SELECT session_id FROM refresh_tokens WHERE token_hash = $1";
        let mut conn = app.state.db.read().await.unwrap();
        tessera::db::run!(conn, e => sqlx::query_scalar::<_, uuid::Uuid>(sql).bind(&hash[..]).fetch_one(&mut *e).await)
            .unwrap()
    };
    let legacy = tessera::crypto::random_token();
    {
        let hash = tessera::crypto::token_hash(&legacy);
        let mut tx = app.state.db.begin().await.unwrap();
        let sql = "UPDATE sessions SET refresh_family = NULL WHERE id = $1";
        tessera::db::run!(tx, e => sqlx::query(sql).bind(session).execute(&mut *e).await.map(|_| ()))
            .unwrap();
        // As migration 0012 marks the rows it finds.
        let sql = "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, before_families) \
                   VALUES ($1, $2, $3, TRUE)";
        tessera::db::run!(tx, e => sqlx::query(sql).bind(&hash[..]).bind(session).bind(app.now())
            .execute(&mut *e).await.map(|_| ()))
        .unwrap();
        tx.commit().await.unwrap();
    }

    let rotated = refresh(&app, &legacy).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let (access, next) = tokens_of(&rotated.body);
    assert!(
        tessera::crypto::refresh_token_family(&next).is_some(),
        "{next}"
    );
    assert_eq!(app.get("/v1/auth/me", Some(&access)).await.status, 200);
    let again = refresh(&app, &next).await;
    assert_eq!(again.status, 200, "{}", again.text);

    // The old token, retired and without a family, still ends the session when it comes
    // back (someone else refreshed first): its row is kept.
    refresh(&app, &legacy)
        .await
        .assert_problem(401, "invalid_refresh_token");
    let (_, newest) = tokens_of(&again.body);
    refresh(&app, &newest)
        .await
        .assert_problem(401, "invalid_refresh_token");
}

#[tokio::test]
async fn refresh_keeps_the_original_auth_time() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let login_time = app.now();
    let jwks = fetch_jwks(&app).await;
    app.clock.advance(600);
    let refreshed = refresh(&app, &user.refresh_token).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let (access, next) = tokens_of(&refreshed.body);
    let claims = verify_independently(&access, &jwks).expect("the refreshed token verifies");
    assert_eq!(claims["auth_time"], login_time, "auth_time is the login's");
    assert_eq!(claims["iat"], login_time + 600, "iat is the refresh's");
    assert_eq!(claims["exp"], login_time + 600 + ACCESS_TTL);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["sub"], user.id.as_str());

    app.clock.advance(3600);
    let again = refresh(&app, &next).await;
    assert_eq!(again.status, 200, "{}", again.text);
    let (access, _) = tokens_of(&again.body);
    let claims = verify_independently(&access, &jwks).expect("the twice-refreshed token verifies");
    assert_eq!(claims["auth_time"], login_time);
}

#[tokio::test]
async fn refresh_tokens_expire_thirty_days_after_login_however_often_rotated() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let login_time = app.now();
    let mut current = user.refresh_token.clone();
    // Rotate every 10 days: each rotation keeps the family's absolute expiry.
    for _ in 0..2 {
        app.clock.advance(10 * 86_400);
        let response = refresh(&app, &current).await;
        assert_eq!(response.status, 200, "{}", response.text);
        assert_eq!(
            response.body["refreshTokenExpiry"],
            time::OffsetDateTime::from_unix_timestamp(login_time + REFRESH_TTL)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        );
        current = tokens_of(&response.body).1;
    }
    // A minute before the end it still rotates; that fresh token is refused after the end.
    app.clock.set(login_time + REFRESH_TTL - 61);
    let last = refresh(&app, &current).await;
    assert_eq!(last.status, 200, "{}", last.text);
    let (access, newest) = tokens_of(&last.body);
    app.clock.set(login_time + REFRESH_TTL + 1);
    refresh(&app, &newest)
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.get("/v1/auth/me", Some(&access))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let attempts = (0..20).map(|_| refresh(&app, &user.refresh_token));
    let responses = futures::future::join_all(attempts).await;

    let winners: Vec<_> = responses.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "statuses: {:?}",
        responses
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    );
    for loser in responses.iter().filter(|r| r.status != 200) {
        loser.assert_problem(401, "invalid_refresh_token");
    }
    let (access, new_refresh) = tokens_of(&winners[0].body);
    assert_ne!(new_refresh, user.refresh_token);
    assert!(!access.is_empty());
}

#[tokio::test]
async fn keys_and_sessions_survive_a_restart() {
    let app = TestApp::spawn().await;
    let user: TestUser = app.signed_in_user().await;
    let kid_before: Vec<String> = fetch_jwks(&app).await.into_iter().map(|k| k.kid).collect();

    for name in ["jwt-ed25519.pem", "master.key", "pepper.key"] {
        use std::os::unix::fs::PermissionsExt;
        let path = app.data_dir.path().join(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{name} is owner-only, mode {:o}",
            mode & 0o777
        );
    }

    let app = app.restart().await;
    let jwks = fetch_jwks(&app).await;
    let kid_after: Vec<String> = jwks.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(kid_after, kid_before, "the signing key was kept");
    verify_independently(&user.access_token, &jwks)
        .expect("the old token verifies with the new JWKS");

    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], user.id.as_str());
    let refreshed = refresh(&app, &user.refresh_token).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["user"]["id"], user.id.as_str());
}

#[tokio::test]
async fn a_data_dir_created_on_first_start_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("fresh");
    let app = TestApp::spawn_with(|config| config.data_dir = data_dir.clone()).await;
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let mode = std::fs::metadata(&data_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "data dir mode {:o}", mode & 0o777);
    assert!(data_dir.join("master.key").exists());
}

#[tokio::test]
async fn with_a_reuse_grace_two_refreshes_sent_at_once_keep_the_session() {
    let app = TestApp::spawn_with(|c| c.refresh_reuse_grace_secs = 5).await;
    let user = app.signed_in_user().await;
    let (a, b) = tokio::join!(
        refresh(&app, &user.refresh_token),
        refresh(&app, &user.refresh_token)
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(b.status, 200, "{}", b.text);
    for answer in [&a, &b] {
        let (access, next) = tokens_of(&answer.body);
        let me = app.get("/v1/auth/me", Some(&access)).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(refresh(&app, &next).await.status, 200);
    }
}

#[tokio::test]
async fn the_reuse_grace_allows_one_more_exchange_and_only_within_its_seconds() {
    let app = TestApp::spawn_with(|c| c.refresh_reuse_grace_secs = 5).await;

    // Once more within the grace; a third use is theft and ends the session.
    let user = app.signed_in_user().await;
    let rotated = refresh(&app, &user.refresh_token).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    app.clock.advance(4);
    let graced = refresh(&app, &user.refresh_token).await;
    assert_eq!(graced.status, 200, "{}", graced.text);
    let (graced_access, _) = tokens_of(&graced.body);
    refresh(&app, &user.refresh_token)
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.get("/v1/auth/me", Some(&graced_access))
        .await
        .assert_problem(401, "unauthorized");
    let (_, after_first) = tokens_of(&rotated.body);
    refresh(&app, &after_first)
        .await
        .assert_problem(401, "invalid_refresh_token");

    // After the grace, the first reuse already ends the session.
    let user = app.signed_in_user().await;
    let rotated = refresh(&app, &user.refresh_token).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    app.clock.advance(6);
    refresh(&app, &user.refresh_token)
        .await
        .assert_problem(401, "invalid_refresh_token");
    let (_, next) = tokens_of(&rotated.body);
    refresh(&app, &next)
        .await
        .assert_problem(401, "invalid_refresh_token");
}

/// A `twoFactorToken` proves only a password: it is useless anywhere but the second step,
/// and nothing else stands in for it there.
#[tokio::test]
async fn a_two_factor_token_is_useless_anywhere_but_the_second_step() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let token = app.two_factor_token(&user.email, PASSWORD).await;

    for path in [
        "/v1/auth/me",
        "/v1/auth/2fa/status",
        "/v1/auth/2fa/backup-codes",
        "/v1/auth/2fa/trusted-devices",
        "/v1/auth/security-events",
    ] {
        app.get(path, Some(&token))
            .await
            .assert_problem(401, "unauthorized");
    }
    for path in [
        "/v1/auth/2fa/setup",
        "/v1/auth/2fa/regenerate-backup-codes",
        "/v1/auth/logout",
    ] {
        app.post(path, json!({}), Some(&token))
            .await
            .assert_problem(401, "unauthorized");
    }
    refresh(&app, &token)
        .await
        .assert_problem(401, "invalid_refresh_token");
    let compat = app
        .post(
            "/authentication/refresh-token",
            json!({"refreshToken": token}),
            None,
        )
        .await;
    assert_eq!(compat.status, 401, "{}", compat.text);
    assert_eq!(compat.body["success"], false, "{}", compat.text);

    // Neither an access token nor a refresh token opens the second step.
    for bearer in [&user.access_token, &user.refresh_token] {
        app.post(
            "/v1/auth/2fa/verify",
            json!({"code": enrolled.backup_codes[0]}),
            Some(bearer),
        )
        .await
        .assert_problem(401, "invalid_two_factor_token");
    }
    // And the token still does its one job.
    let verified = app
        .post(
            "/v1/auth/2fa/verify",
            json!({"code": enrolled.backup_codes[0]}),
            Some(&token),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
}
