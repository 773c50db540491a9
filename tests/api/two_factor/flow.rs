//! The whole flow: setup, confirmation, a login with a code, and the new access token at work.

use super::*;

#[tokio::test]
async fn full_flow_setup_confirm_login_verify_and_use_the_new_access_token() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;

    let setup = setup(&app, &user).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "verify-setup: {}", confirmed.text);
    assert_eq!(confirmed.body["enabled"], true);
    assert_eq!(confirmed.body["backupCodes"].as_array().unwrap().len(), 10);
    app.clock.advance(30);

    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status, 200, "login: {}", login.text);
    assert_eq!(login.body["requires2FA"], true);
    let token = login.body["twoFactorToken"]
        .as_str()
        .expect("twoFactorToken")
        .to_owned();
    assert!(!token.is_empty());
    assert_eq!(
        unix(login.body["twoFactorTokenExpiry"].as_str().unwrap()),
        app.now() + 300
    );
    assert_eq!(login.body["methods"], json!(["totp", "backup_code"]));
    assert!(
        login.body.get("accessToken").is_none(),
        "no access token before the second factor: {}",
        login.text
    );
    assert!(
        login.body.get("refreshToken").is_none(),
        "no refresh token before the second factor"
    );

    let verified = verify_code(&app, &token, &totp_code(&secret, app.now())).await;
    assert_eq!(verified.status, 200, "verify: {}", verified.text);
    assert_eq!(verified.body["tokenType"], "Bearer");
    assert_eq!(verified.body["expiresIn"], 900);
    assert!(
        verified.body["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(verified.body["user"]["id"], user.id);
    assert_eq!(verified.body["user"]["twoFactorEnabled"], true);
    let access = verified.body["accessToken"].as_str().unwrap();
    let claims = jwt_payload(access);
    assert_eq!(claims["sub"], user.id);
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .expect("amr is an array")
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(amr.contains(&"otp"), "amr has otp: {amr:?}");
    assert!(amr.contains(&"pwd"), "amr has pwd: {amr:?}");

    let me = app.get("/v1/auth/me", Some(access)).await;
    assert_eq!(me.status, 200, "me: {}", me.text);
    assert_eq!(me.body["id"], user.id);
    assert_eq!(me.body["twoFactorEnabled"], true);
}
