//! Setup and its confirmation: the contract fields, the pending secret's life, and who may enrol.

use super::*;

#[tokio::test]
async fn setup_answers_exactly_the_contract_fields_and_a_qr_code_of_the_otpauth_url() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let setup = setup(&app, &user).await;

    let body = setup.body.as_object().expect("an object");
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accountName",
            "algorithm",
            "digits",
            "expiresAt",
            "issuer",
            "otpauthUrl",
            "period",
            "qrCode",
            "secret"
        ],
        "exactly the contract fields"
    );
    assert_eq!(body["algorithm"], "SHA1");
    assert_eq!(body["digits"], 6);
    assert_eq!(body["period"], 30);
    assert_eq!(body["accountName"], user.email);
    let issuer = body["issuer"].as_str().unwrap();
    assert_eq!(issuer, app.config.issuer);
    assert_eq!(
        unix(body["expiresAt"].as_str().unwrap()),
        app.now() + 600,
        "pending for 10 minutes"
    );

    let secret = body["secret"].as_str().unwrap();
    let raw = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("secret is unpadded base32");
    assert_eq!(raw.len(), 20, "a 160-bit secret");

    let url = body["otpauthUrl"].as_str().unwrap();
    let account = user.email.replace('@', "%40");
    assert_eq!(
        url,
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period=30"
        )
    );

    let qr = body["qrCode"].as_str().unwrap();
    let png_b64 = qr
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URI");
    let png = base64::engine::general_purpose::STANDARD
        .decode(png_b64)
        .expect("base64 PNG");
    let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .expect("a PNG image")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    assert_eq!(content, url, "the QR code holds exactly otpauthUrl");

    // A setup is not yet an enrolment.
    let status = status(&app, &user.access_token).await;
    assert_eq!(status.body["enabled"], false);
    assert_eq!(status.body["setupPending"], true);
}

#[tokio::test]
async fn setup_while_two_factor_is_on_is_a_conflict_and_keeps_the_secret() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    let (access, _) = sign_in_with_code(&app, &enrolled).await;

    let again = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&access))
        .await;
    again.assert_problem(409, "two_factor_already_enabled");
    assert!(!again.text.contains(&enrolled.secret));

    // The enrolled secret still signs in.
    app.clock.advance(30);
    sign_in_with_code(&app, &enrolled).await;
}

#[tokio::test]
async fn a_second_setup_replaces_the_pending_secret() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let first = pending_secret(&app, &user).await;
    let second = pending_secret(&app, &user).await;
    assert_ne!(first, second, "a new secret each time");

    let with_first = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&first, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    with_first.assert_problem(401, "invalid_code");
    assert_eq!(
        status(&app, &user.access_token).await.body["enabled"],
        false
    );

    let with_second = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&second, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(with_second.status, 200, "{}", with_second.text);
    assert_eq!(status(&app, &user.access_token).await.body["enabled"], true);
}

#[tokio::test]
async fn a_pending_setup_expires_after_ten_minutes() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = pending_secret(&app, &user).await;

    app.clock.advance(601);
    let status_now = status(&app, &user.access_token).await;
    assert_eq!(
        status_now.body["setupPending"], false,
        "an expired setup is not pending"
    );
    // The sign-in is no longer recent either, so the password comes along.
    let late = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()), "password": PASSWORD }),
            Some(&user.access_token),
        )
        .await;
    late.assert_problem(409, "no_pending_setup");
    assert_eq!(
        status(&app, &user.access_token).await.body["enabled"],
        false
    );
}

#[tokio::test]
async fn a_pending_setup_still_confirms_just_before_ten_minutes() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = pending_secret(&app, &user).await;
    app.clock.advance(599);
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
}

#[tokio::test]
async fn verify_setup_without_a_setup_is_a_conflict() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let response = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": "123456" }),
            Some(&user.access_token),
        )
        .await;
    response.assert_problem(409, "no_pending_setup");
}

#[tokio::test]
async fn verify_setup_with_a_wrong_code_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = pending_secret(&app, &user).await;

    let wrong = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": wrong_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    wrong.assert_problem(401, "invalid_code");
    assert!(wrong.body.get("backupCodes").is_none());
    let status_now = status(&app, &user.access_token).await;
    assert_eq!(status_now.body["enabled"], false);
    assert_eq!(
        status_now.body["setupPending"], true,
        "the pending secret survives a wrong code"
    );
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(
        login.body["requires2FA"], false,
        "still a password-only account"
    );

    let right = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": totp_code(&secret, app.now()) }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.text);
}

#[tokio::test]
async fn enrolment_needs_a_recent_sign_in_or_the_password() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    // A stolen access token, used after the sign-in stopped being recent.
    app.clock.advance(app.config.fresh_second_factor_secs + 1);
    let bearer = Some(user.access_token.as_str());
    app.post("/v1/auth/2fa/setup", json!({}), bearer)
        .await
        .assert_problem(403, "reauthentication_required");
    app.post(
        "/v1/auth/2fa/setup",
        json!({"password": "not the password"}),
        bearer,
    )
    .await
    .assert_problem(401, "invalid_credentials");
    // A refreshed token keeps the original sign-in time: still not recent.
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": user.refresh_token}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let refreshed_access = refreshed.body["accessToken"].as_str().unwrap().to_owned();
    app.post("/v1/auth/2fa/setup", json!({}), Some(&refreshed_access))
        .await
        .assert_problem(403, "reauthentication_required");

    // With the password, the owner enrols.
    let setup = app
        .post("/v1/auth/2fa/setup", json!({"password": PASSWORD}), bearer)
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let code = totp_code(&secret, app.now());
    app.post("/v1/auth/2fa/verify-setup", json!({"code": code}), bearer)
        .await
        .assert_problem(403, "reauthentication_required");
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": code, "password": PASSWORD}),
            bearer,
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    // A fresh sign-in needs no password: the seed flow (log in, then set up) is unchanged.
    let other = app.signed_in_user().await;
    let setup = app
        .post("/v1/auth/2fa/setup", json!({}), Some(&other.access_token))
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
}
