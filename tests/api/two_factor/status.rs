//! Status and the backup-code summary, before, during and after two-factor is on.

use super::*;

#[tokio::test]
async fn status_before_during_and_after_enabling() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;

    let before = status(&app, &user.access_token).await;
    assert_eq!(
        before.body,
        json!({"enabled": false, "method": null, "enabledAt": null, "setupPending": false,
               "backupCodesRemaining": 0, "trustedDevices": 0, "methods": [], "passkeys": 0})
    );

    let secret = pending_secret(&app, &user).await;
    let during = status(&app, &user.access_token).await;
    assert_eq!(during.body["enabled"], false);
    assert_eq!(during.body["setupPending"], true);
    assert_eq!(during.body["method"], Value::Null);

    let enabled_at = app.now();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    let after = status(&app, &user.access_token).await;
    assert_eq!(after.body["enabled"], true);
    assert_eq!(after.body["method"], "totp");
    assert_eq!(unix(after.body["enabledAt"].as_str().unwrap()), enabled_at);
    assert_eq!(after.body["setupPending"], false);
    assert_eq!(after.body["backupCodesRemaining"], 10);
    assert_eq!(after.body["trustedDevices"], 0);
    assert_eq!(after.body["methods"], json!(["totp", "backup_code"]));
    assert_eq!(after.body["passkeys"], 0);
    assert_eq!(
        after.body.as_object().unwrap().len(),
        8,
        "exactly the contract fields and the methods in use: {}",
        after.text
    );
}

#[tokio::test]
async fn backup_code_summary_counts_down_after_a_backup_code_login() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let generated_at = app.now();
    let enrolled = app.enable_two_factor(&user).await;

    let summary = app
        .get("/v1/auth/2fa/backup-codes", Some(&user.access_token))
        .await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert_eq!(summary.body["total"], 10);
    assert_eq!(summary.body["remaining"], 10);
    assert_eq!(summary.body["used"], 0);
    assert_eq!(
        unix(summary.body["generatedAt"].as_str().unwrap()),
        generated_at
    );

    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let used = verify_code(&app, &token, &enrolled.backup_codes[3]).await;
    assert_eq!(used.status, 200, "{}", used.text);
    let access = used.body["accessToken"].as_str().unwrap();
    let amr = jwt_payload(access)["amr"].clone();
    assert!(
        amr.as_array().unwrap().contains(&json!("otp")),
        "a backup code is a second factor: {amr}"
    );

    let summary = app.get("/v1/auth/2fa/backup-codes", Some(access)).await;
    assert_eq!(summary.body["total"], 10);
    assert_eq!(summary.body["remaining"], 9);
    assert_eq!(summary.body["used"], 1);
    assert_eq!(
        unix(summary.body["generatedAt"].as_str().unwrap()),
        generated_at
    );
    assert_eq!(status(&app, access).await.body["backupCodesRemaining"], 9);
}

#[tokio::test]
async fn status_and_backup_codes_agree_while_two_factor_is_switched_off() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let login = app.login_with_code(&enrolled).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let access = login.body["accessToken"].as_str().unwrap().to_owned();
    let off = app
        .post(
            "/authentication/enable-2fa",
            json!({"email": user.email, "password": PASSWORD, "enable": false}),
            Some(&access),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);

    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    let codes = app.get("/v1/auth/2fa/backup-codes", Some(&access)).await;
    assert_eq!(status.body["enabled"], false, "{}", status.text);
    assert_eq!(
        status.body["backupCodesRemaining"], codes.body["remaining"],
        "one source of truth: status {} backup-codes {}",
        status.text, codes.text
    );
    assert_eq!(
        codes.body["remaining"], 10,
        "kept while switched off: {}",
        codes.text
    );
}
