//! Listing, renaming and removing passkeys; removing the last one; the operator's view.

use serde_json::json;

use super::*;
use crate::helpers::{PASSWORD, totp_code, verify_code};

#[tokio::test]
async fn passkeys_are_listed_and_renamed() {
    let app = spawn().await;
    let (user, _key, registered) = user_with_passkey(&app).await;
    let list = app.get("/v1/auth/passkeys", Some(&user.access_token)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let passkey = &list.body[0];
    assert_eq!(passkey["id"], registered["passkey"]["id"]);
    assert_eq!(passkey["name"], "Laptop");
    assert!(passkey["createdAt"].is_string());
    // The software authenticator syncs its passkeys (it sets the backup flags).
    assert_eq!(passkey["backupEligible"], true);
    assert_eq!(passkey["backedUp"], true);
    assert!(
        passkey["aaguid"].is_null(),
        "an all-zero model is no model: {passkey}"
    );

    let id = passkey["id"].as_str().unwrap();
    let renamed = app
        .send(
            app.client
                .patch(app.url(&format!("/v1/auth/passkeys/{id}")))
                .bearer_auth(&user.access_token)
                .json(&json!({"name": "Work laptop"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Work laptop");

    for (name, code) in [
        (json!(""), 400),
        (json!("x".repeat(101)), 400),
        (json!(7), 400),
    ] {
        let refused = app
            .send(
                app.client
                    .patch(app.url(&format!("/v1/auth/passkeys/{id}")))
                    .bearer_auth(&user.access_token)
                    .json(&json!({"name": name})),
            )
            .await;
        refused.assert_problem(code, "validation_failed");
    }
    // Another account's passkey is not found, nor is a malformed id.
    let other = app.signed_in_user().await;
    for path in [
        format!("/v1/auth/passkeys/{id}"),
        "/v1/auth/passkeys/nope".into(),
    ] {
        app.send(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&other.access_token)
                .json(&json!({"name": "mine"})),
        )
        .await
        .assert_problem(404, "not_found");
    }
    let empty = app
        .get("/v1/auth/passkeys", Some(&other.access_token))
        .await;
    assert_eq!(empty.body, json!([]));
}

#[tokio::test]
async fn removing_a_passkey_is_a_sensitive_change() {
    let app = spawn().await;
    let (user, mut key, registered) = user_with_passkey(&app).await;
    let id = registered["passkey"]["id"].as_str().unwrap();
    let path = format!("/v1/auth/passkeys/{id}");
    // The password sign-in proved no second factor.
    app.delete(&path, Some(&user.access_token))
        .await
        .assert_problem(403, "reauthentication_required");
    // A passkey sign-in did: register a second passkey with it, then remove the first.
    let signed_in = passwordless(&app, &mut key).await;
    let access = signed_in.body["accessToken"].as_str().unwrap().to_owned();
    let stranger = app.signed_in_user().await;
    app.delete(&path, Some(&stranger.access_token))
        .await
        .assert_problem(403, "reauthentication_required");
    let mut second = SoftKey::new();
    add_passkey(&app, &access, &mut second, "Phone").await;

    let removed = app.delete(&path, Some(&access)).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body["twoFactorEnabled"], true);
    app.delete(&path, Some(&access))
        .await
        .assert_problem(404, "not_found");
    passwordless(&app, &mut key)
        .await
        .assert_problem(401, "invalid_passkey");
    let events = events(&app, &access).await;
    assert!(
        events.iter().any(|(t, _)| t == "passkey_removed"),
        "{events:?}"
    );
}

#[tokio::test]
async fn removing_the_last_passkey_turns_two_factor_off() {
    let app = spawn().await;
    let (user, _key, registered) = user_with_passkey(&app).await;
    let id = registered["passkey"]["id"].as_str().unwrap();
    let code = registered["backupCodes"][0].as_str().unwrap();
    // An operator sees the passkey as the account's method, not an authenticator app.
    let admin = app.admin_key("support", &["users:read"]).await;
    let account = app
        .send(
            app.client
                .get(app.url(&format!("/admin/v1/users/{}", user.id)))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert_eq!(
        account.body["secondFactor"]["methods"],
        json!(["passkey", "backup_code"]),
        "{}",
        account.text
    );
    let other_session = app.login(&user.email, &user.password).await;
    assert_eq!(other_session.body["requires2FA"], true);

    let removed = app
        .send(
            app.client
                .delete(app.url(&format!("/v1/auth/passkeys/{id}")))
                .bearer_auth(&user.access_token)
                .json(&json!({"code": code})),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body["twoFactorEnabled"], false);

    let status = app
        .get("/v1/auth/2fa/status", Some(&user.access_token))
        .await;
    assert_eq!(status.body["enabled"], false, "{}", status.text);
    assert_eq!(status.body["methods"], json!([]));
    assert_eq!(status.body["backupCodesRemaining"], 0);
    let login = app.login(&user.email, &user.password).await;
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);
    let events = events(&app, &user.access_token).await;
    assert!(
        events
            .iter()
            .any(|(t, d)| t == "two_factor_disabled" && d["reason"] == "last_passkey_removed"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_passkey_next_to_totp_adds_a_method() {
    let app = spawn().await;
    let enrolled = app.enrolled_user().await;
    let user = &enrolled.user;
    // Fresh from the TOTP sign-in.
    let signed_in = app.login_with_code(&enrolled).await;
    let access = signed_in.body["accessToken"].as_str().unwrap();
    let mut key = SoftKey::new();
    let finished = add_passkey(&app, access, &mut key, "Phone").await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    assert!(finished.body.get("backupCodes").is_none());
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.body["method"], "totp");
    assert_eq!(
        status.body["methods"],
        json!(["totp", "passkey", "backup_code"])
    );
    let login = app.login(&user.email, &user.password).await;
    assert_eq!(
        login.body["methods"],
        json!(["totp", "passkey", "backup_code"])
    );

    // Turning 2FA off removes the passkeys with the rest.
    let off = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": user.password}),
            Some(access),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    passwordless(&app, &mut key)
        .await
        .assert_problem(401, "invalid_passkey");
}

#[tokio::test]
async fn the_operator_sees_passkeys_and_a_reset_removes_them() {
    use tessera::admin::{self, UserRef};
    let app = spawn().await;
    let (user, mut key, _) = user_with_passkey(&app).await;
    let who = UserRef::Email(user.email.clone());
    let shown = admin::show_user(&app.state, &who).await.expect("show-user");
    assert!(shown.contains("passkeys:            1"), "{shown}");
    assert!(shown.contains("\"Laptop\""), "{shown}");
    assert!(shown.contains("on (passkey, backup_code)"), "{shown}");

    let operator = admin::Operator::from_flag_or_env(Some("test".into())).unwrap();
    admin::reset_two_factor(&app.state, &who, &operator)
        .await
        .expect("reset-2fa");
    let shown = admin::show_user(&app.state, &who).await.expect("show-user");
    assert!(shown.contains("passkeys:            0"), "{shown}");
    passwordless(&app, &mut key)
        .await
        .assert_problem(401, "invalid_passkey");
}

/// An account whose second factor is a passkey adds an authenticator app next to it: a
/// sensitive change (its sign-in's second factor must be fresh), after which a password
/// login may answer with either, and the backup codes it has stay valid.
#[tokio::test]
async fn an_authenticator_app_is_added_next_to_a_passkey() {
    let app = spawn().await;
    let (user, mut key, registered) = user_with_passkey(&app).await;
    let backup_code = registered["backupCodes"][0].as_str().unwrap().to_owned();
    // The password sign-in that registered the passkey had no second factor.
    app.post("/v1/auth/2fa/setup", json!({}), Some(&user.access_token))
        .await
        .assert_problem(403, "reauthentication_required");
    let fresh = passwordless(&app, &mut key).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    let access = fresh.body["accessToken"].as_str().unwrap().to_owned();
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&access))
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": totp_code(&secret, app.now())}),
            Some(&access),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.body["enabled"], true);
    assert_eq!(confirmed.body["backupCodes"], json!([]), "none are shown");
    // Both are methods now, and a second app is refused.
    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    assert_eq!(status.body["method"], "totp", "{}", status.text);
    let methods = status.body["methods"].to_string();
    assert!(
        methods.contains("totp") && methods.contains("passkey"),
        "{methods}"
    );
    app.post("/v1/auth/2fa/setup", json!({}), Some(&access))
        .await
        .assert_problem(409, "two_factor_already_enabled");
    // A password login takes a code from the app, and the old backup codes still work.
    app.clock.advance(30);
    let login = app.login(&user.email, PASSWORD).await;
    let methods = login.body["methods"].to_string();
    assert!(
        methods.contains("totp") && methods.contains("passkey"),
        "{}",
        login.text
    );
    let token = login.body["twoFactorToken"].as_str().unwrap();
    let signed_in = verify_code(&app, token, &totp_code(&secret, app.now())).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let with_backup = verify_code(&app, &token, &backup_code).await;
    assert_eq!(with_backup.status, 200, "{}", with_backup.text);
    // Removing the passkey now leaves 2FA on: the app is still there.
    let id = registered["passkey"]["id"].as_str().unwrap();
    let removed = app
        .delete(&format!("/v1/auth/passkeys/{id}"), Some(&access))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body["twoFactorEnabled"], true, "{}", removed.text);
}
