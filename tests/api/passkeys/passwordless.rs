//! Passwordless sign-in with a discoverable passkey: a full session whose `amr` says what
//! happened, fresh for sensitive changes; replayed, foreign and unknown answers refused.

use serde_json::json;

use super::*;

#[tokio::test]
async fn a_passkey_alone_signs_in_and_counts_as_a_fresh_second_factor() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let started = login_start(&app).await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert_eq!(started.body["options"]["mediation"], "conditional");
    assert!(
        started.body["options"]["publicKey"]
            .get("allowCredentials")
            .is_none_or(|a| a.as_array().is_some_and(Vec::is_empty)),
        "no account is named: {}",
        started.text
    );
    let credential = key.get(&started.body["options"], ORIGIN).await;
    let signed_in = login_finish(&app, &started.body["ceremonyId"], &credential).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert_eq!(signed_in.body["user"]["email"], user.email.as_str());
    let access = signed_in.body["accessToken"].as_str().unwrap();
    // A synced passkey (the software authenticator sets the backup flags): `swk`.
    assert_eq!(jwt_payload(access)["amr"], json!(["swk", "user", "mfa"]));

    // Fresh: a sensitive change needs no code.
    let regenerated = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(access),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    // The refresh token works like any other.
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": signed_in.body["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let events = events(&app, access).await;
    assert!(
        events
            .iter()
            .any(|(t, d)| t == "login_succeeded" && d["method"] == "passkey"),
        "{events:?}"
    );

    // A replay of the same answer finds no ceremony.
    login_finish(&app, &started.body["ceremonyId"], &credential)
        .await
        .assert_problem(409, "invalid_ceremony");
}

/// A passkey bound to its authenticator (a security key: not backup eligible) signs in as
/// a hardware key, `hwk`, where a synced one is `swk` (above).
#[tokio::test]
async fn a_device_bound_passkey_signs_in_as_a_hardware_key() {
    let app = spawn().await;
    let (_user, mut key, _) = user_with_key(&app, SoftKey::device_bound(), "Security key").await;
    let signed_in = passwordless(&app, &mut key).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let access = signed_in.body["accessToken"].as_str().unwrap();
    assert_eq!(jwt_payload(access)["amr"], json!(["hwk", "user", "mfa"]));
    // The server took it for a device-bound passkey (its flags as of this sign-in).
    let list = app.get("/v1/auth/passkeys", Some(access)).await;
    assert_eq!(list.body[0]["backupEligible"], false, "{}", list.text);
    assert_eq!(list.body[0]["backedUp"], false, "{}", list.text);
}

/// User verification is what makes a passkey enough on its own (`user` in the `amr`): the
/// account's own passkey answering with user presence only is refused and signs no one in.
#[tokio::test]
async fn an_answer_without_user_verification_is_refused() {
    let app = spawn().await;
    let (_user, mut key, _) = user_with_passkey(&app).await;
    let started = login_start(&app).await;
    assert_eq!(
        started.body["options"]["publicKey"]["userVerification"], "required",
        "{}",
        started.text
    );
    key.stop_verifying();
    let credential = key.get(&started.body["options"], ORIGIN).await;
    let refused = login_finish(&app, &started.body["ceremonyId"], &credential).await;
    refused.assert_problem(401, "invalid_passkey");
    assert!(
        refused.body.get("accessToken").is_none(),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn an_answer_from_another_origin_is_refused() {
    let app = spawn().await;
    let (_user, mut key, _) = user_with_passkey(&app).await;
    let started = login_start(&app).await;
    let credential = key
        .get(&started.body["options"], "https://evil.tessera.example")
        .await;
    login_finish(&app, &started.body["ceremonyId"], &credential)
        .await
        .assert_problem(401, "invalid_passkey");
}

#[tokio::test]
async fn an_answer_for_another_rp_id_is_refused() {
    let app = spawn().await;
    let (_user, mut key, _) = user_with_passkey(&app).await;
    let started = login_start(&app).await;
    let mut options = started.body["options"].clone();
    options["publicKey"]["rpId"] = json!("other.example");
    let credential = key.get(&options, "https://other.example").await;
    login_finish(&app, &started.body["ceremonyId"], &credential)
        .await
        .assert_problem(401, "invalid_passkey");
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let app = spawn().await;
    let (_user, mut key, _) = user_with_passkey(&app).await;
    let started = login_start(&app).await;
    let credential = key.get(&started.body["options"], ORIGIN).await;
    app.clock.advance(5 * 60);
    login_finish(&app, &started.body["ceremonyId"], &credential)
        .await
        .assert_problem(409, "invalid_ceremony");
}

#[tokio::test]
async fn a_passkey_the_server_does_not_know_is_refused() {
    let app = spawn().await;
    let (_user, _key, _) = user_with_passkey(&app).await;
    // A passkey for this RP ID registered elsewhere (another server's database).
    let elsewhere = spawn().await;
    let (_other, mut stranger, _) = user_with_passkey(&elsewhere).await;
    let unknown = passwordless(&app, &mut stranger).await;
    unknown.assert_problem(401, "invalid_passkey");
}

/// A disabled account signs in with no method: the passkey alone, which never passes the
/// password step, is refused too and starts no session.
#[tokio::test]
async fn a_disabled_account_cannot_sign_in_with_its_passkey() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let admin = app.admin_key("ops", &["users:write"]).await;
    let disabled = app
        .post(
            &format!("/admin/v1/users/{}/disable", user.id),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let refused = passwordless(&app, &mut key).await;
    refused.assert_problem(401, "invalid_credentials");
    assert!(
        refused.body.get("accessToken").is_none(),
        "{}",
        refused.text
    );
}
