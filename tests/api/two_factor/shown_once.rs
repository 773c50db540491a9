//! Secrets and codes are shown once, and never again anywhere.

use super::*;

#[tokio::test]
async fn the_secret_and_backup_codes_never_appear_after_they_are_shown() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let setup = setup(&app, &user).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let otpauth = setup.body["otpauthUrl"].as_str().unwrap().to_owned();
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": totp_code(&secret, app.now())}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200);
    let backup: Vec<String> = backup_codes_in(&confirmed.body);
    let mut later: Vec<(&str, TestResponse)> = vec![("verify-setup", confirmed)];
    app.clock.advance(30);

    later.push((
        "status",
        app.get("/v1/auth/2fa/status", Some(&user.access_token))
            .await,
    ));
    let login = app.login(&user.email, PASSWORD).await;
    let token = login.body["twoFactorToken"].as_str().unwrap().to_owned();
    later.push(("login", login));
    later.push((
        "wrong verify",
        verify_code(&app, &token, &wrong_code(&secret, app.now())).await,
    ));
    let verified = verify_code(&app, &token, &totp_code(&secret, app.now())).await;
    assert_eq!(verified.status, 200);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    let refresh = verified.body["refreshToken"].as_str().unwrap().to_owned();
    later.push(("verify", verified));
    later.push(("me", app.get("/v1/auth/me", Some(&access)).await));
    later.push((
        "status again",
        app.get("/v1/auth/2fa/status", Some(&access)).await,
    ));
    later.push((
        "backup-codes",
        app.get("/v1/auth/2fa/backup-codes", Some(&access)).await,
    ));
    later.push((
        "setup again",
        app.post("/v1/auth/2fa/setup", json!({}), Some(&access))
            .await,
    ));
    later.push((
        "security events",
        app.get("/v1/auth/security-events", Some(&access)).await,
    ));
    later.push((
        "refresh",
        app.post("/v1/auth/refresh", json!({"refreshToken": refresh}), None)
            .await,
    ));
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    later.push((
        "verify with a backup code",
        verify_code(&app, &token, &backup[0]).await,
    ));
    later.push((
        "status after a backup code",
        app.get("/v1/auth/2fa/status", Some(&access)).await,
    ));
    let regenerated = app
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(&access),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let new_codes: Vec<String> = backup_codes_in(&regenerated.body);
    later.push(("regenerate", regenerated));
    later.push((
        "backup-codes after",
        app.get("/v1/auth/2fa/backup-codes", Some(&access)).await,
    ));
    later.push((
        "status after",
        app.get("/v1/auth/2fa/status", Some(&access)).await,
    ));
    later.push((
        "security events after",
        app.get("/v1/auth/security-events", Some(&access)).await,
    ));
    later.push((
        "trusted devices",
        app.get("/v1/auth/2fa/trusted-devices", Some(&access)).await,
    ));

    let raw_secret = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let secret_forms = [
        secret.clone(),
        secret.to_lowercase(),
        otpauth.clone(),
        base64::engine::general_purpose::STANDARD.encode(&raw_secret),
        data_encoding::HEXLOWER.encode(&raw_secret),
    ];
    for (label, response) in &later {
        assert!(response.status.as_u16() < 500, "{label}: {}", response.text);
        for form in &secret_forms {
            assert!(
                !response.text.contains(form.as_str()),
                "{label} leaks the secret: {}",
                response.text
            );
        }
        for code in &backup {
            let shown = *label == "verify-setup";
            let normalized = code.replace('-', "");
            assert_eq!(
                response.text.contains(code.as_str()),
                shown,
                "{label} and backup code {code}"
            );
            assert!(
                shown || !response.text.contains(&normalized),
                "{label} leaks backup code {code}"
            );
        }
        for code in &new_codes {
            let shown = *label == "regenerate";
            assert_eq!(
                response.text.contains(code.as_str()),
                shown,
                "{label} and new backup code {code}"
            );
        }
    }
}
