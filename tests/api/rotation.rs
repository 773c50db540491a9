//! Signing-key rotation without signing anyone out: a token signed before a rotation keeps
//! verifying (on `/v1` and, through the JWKS, with an independent Ed25519 verifier) until
//! it expires; the old key then leaves the JWKS. A rotation made on the database by
//! another process reaches a running instance without a restart.

use std::sync::Arc;

use serde_json::Value;
use tessera::admin;
use tessera::service::signing_keys;

use crate::helpers::{PASSWORD, TestApp};
use crate::tokens::{fetch_jwks, forge, parts, verify_independently};

const ACCESS_TTL: i64 = 15 * 60;
/// `access_token_ttl_secs` + `signing_key_refresh_secs` (the defaults).
const RETIRED_GRACE: i64 = ACCESS_TTL + 60;

fn kid_of(token: &str) -> String {
    parts(token).0["kid"].as_str().expect("a kid").to_owned()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    fetch_jwks(app).await.into_iter().map(|k| k.kid).collect()
}

async fn access_token(app: &TestApp, email: &str) -> String {
    let login = app.login(email, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    login.body["accessToken"].as_str().unwrap().to_owned()
}

async fn me(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/auth/me", Some(token)).await.status.as_u16()
}

#[tokio::test]
async fn a_token_signed_before_a_rotation_verifies_until_it_expires() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let old = user.access_token.clone();
    let old_kid = kid_of(&old);
    assert_eq!(jwks_kids(&app).await, vec![old_kid.clone()]);

    let report = admin::rotate_keys(&app.state, false).await.unwrap();
    assert!(report.contains(&old_kid), "{report}");
    let new = access_token(&app, &user.email).await;
    let new_kid = kid_of(&new);
    assert_ne!(new_kid, old_kid, "tokens are signed with the new key");
    let kids = jwks_kids(&app).await;
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );

    // Both tokens verify here and with the JWKS alone.
    let jwks = fetch_jwks(&app).await;
    for token in [&old, &new] {
        assert_eq!(me(&app, token).await, 200);
        verify_independently(token, &jwks).expect("verifies with the JWKS");
    }

    // The old token lives its normal life, and no longer.
    app.clock.advance(ACCESS_TTL - 1);
    assert_eq!(
        me(&app, &old).await,
        200,
        "still valid a second before expiry"
    );
    app.clock.advance(1);
    assert_eq!(me(&app, &old).await, 401, "expired");
    assert!(
        jwks_kids(&app).await.contains(&old_kid),
        "published for a lagging instance's tokens"
    );

    // A token signed with the old key (from its file) that claims a later expiry is
    // accepted while the key is published...
    let pem = std::fs::read_to_string(app.data_dir.path().join("jwt-ed25519.pem")).unwrap();
    let old_key =
        <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem)
            .unwrap();
    let (header, mut claims, _) = parts(&old);
    claims["exp"] = (app.now() + 10 * ACCESS_TTL).into();
    let long_lived = forge(&header, &claims, Some(&old_key));
    assert_eq!(me(&app, &long_lived).await, 200);
    // ... and past the grace, the old key leaves the JWKS and is refused, cached or not.
    app.clock.advance(RETIRED_GRACE - ACCESS_TTL);
    assert_eq!(jwks_kids(&app).await, vec![new_kid.clone()]);
    assert_eq!(me(&app, &long_lived).await, 401);
    let fresh = access_token(&app, &user.email).await;
    assert_eq!(kid_of(&fresh), new_kid);
    assert_eq!(me(&app, &fresh).await, 200);

    // A restart keeps the rotated key: the configured key file (the old key) is not
    // made current again.
    let app = app.restart().await;
    let after = access_token(&app, &user.email).await;
    assert_eq!(kid_of(&after), new_kid);
    assert_eq!(jwks_kids(&app).await, vec![new_kid]);
}

#[tokio::test]
async fn a_prepared_key_is_published_before_it_signs() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let first = kid_of(&user.access_token);
    let report = admin::rotate_keys(&app.state, true).await.unwrap();
    assert!(report.contains("Prepared"), "{report}");
    let kids = jwks_kids(&app).await;
    assert_eq!(kids.len(), 2, "current and prepared: {kids:?}");
    let prepared = kids.iter().find(|k| **k != first).unwrap().clone();
    // Still signing with the current key.
    assert_eq!(kid_of(&access_token(&app, &user.email).await), first);
    // A second --prepare keeps the one prepared.
    let again = admin::rotate_keys(&app.state, true).await.unwrap();
    assert!(
        again.contains(&prepared) && again.contains("already"),
        "{again}"
    );

    let rotated = admin::rotate_keys(&app.state, false).await.unwrap();
    assert!(
        rotated.contains(&prepared) && rotated.contains("prepared ahead"),
        "{rotated}"
    );
    let token = access_token(&app, &user.email).await;
    assert_eq!(kid_of(&token), prepared);
    verify_independently(&token, &fetch_jwks(&app).await).unwrap();
    let listed = admin::list_keys(&app.state).await.unwrap();
    assert!(
        listed.contains("current") && listed.contains("retired, published until"),
        "{listed}"
    );
}

#[tokio::test]
async fn a_rotation_by_another_process_reaches_a_running_instance() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let old_kid = kid_of(&user.access_token);
    // Another process on the same configuration and database (as `tessera admin` is).
    let other = tessera::startup::build_state(app.config.clone(), Arc::new(app.clock.clone()))
        .await
        .expect("a second instance's state");
    let rotation = signing_keys::rotate(&other, None).await.unwrap();
    assert_ne!(rotation.kid, old_kid);

    // The other instance signs with the new key; the running one has not re-read the
    // keys yet, and learns of the new key from the first token that names it.
    let claims: Value = parts(&user.access_token).1;
    let session = uuid::Uuid::parse_str(claims["sid"].as_str().unwrap()).unwrap();
    let user_id = uuid::Uuid::parse_str(&user.id).unwrap();
    let from_other = other
        .signer
        .sign(user_id, session, vec!["pwd".into()], app.now(), app.now())
        .unwrap();
    assert_eq!(kid_of(&from_other), rotation.kid);
    assert_eq!(
        me(&app, &from_other).await,
        200,
        "unknown kid: keys re-read"
    );
    // From then on, the running instance signs with the new key too, and the old
    // token still verifies.
    assert_eq!(kid_of(&access_token(&app, &user.email).await), rotation.kid);
    assert_eq!(me(&app, &user.access_token).await, 200);
    // A kid that names no key at all stays refused (after at most one re-read a second).
    let (mut header, claims, _) = parts(&from_other);
    header["kid"] = "no-such-key".into();
    let stranger = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    assert_eq!(
        me(&app, &forge(&header, &claims, Some(&stranger))).await,
        401
    );
    other.db.close().await;
}
