use serde_json::json;

use crate::helpers::{TestApp, totp_code};

#[tokio::test]
async fn register_login_me_and_two_factor_round_trip() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let me = app.get("/v1/auth/me", Some(&user.access_token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["email"], user.email);

    let enrolled = app.enable_two_factor(&user).await;
    let verified = app.login_with_code(&enrolled).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let access = verified.body["accessToken"].as_str().unwrap();
    let status = app.get("/v1/auth/2fa/status", Some(access)).await;
    assert_eq!(status.body["enabled"], true, "{}", status.text);
    assert_eq!(status.body["backupCodesRemaining"], 10);
    let _ = totp_code(&enrolled.secret, app.now());
    let missing = app.post("/v1/auth/nope", json!({}), None).await;
    missing.assert_problem(404, "not_found");
}
