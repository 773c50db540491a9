//! Concurrency: one code raced by many requests succeeds exactly once.

use super::*;

async fn race_one_code(app: &TestApp, email: &str, code: &str) -> Vec<TestResponse> {
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(app.two_factor_token(email, PASSWORD).await);
    }
    futures::future::join_all(tokens.iter().map(|token| verify_code(app, token, code))).await
}

#[track_caller]
fn assert_exactly_one_success(responses: &[TestResponse]) {
    let successes = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        successes,
        1,
        "exactly one success; statuses {:?}",
        responses
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    );
    for response in responses.iter().filter(|r| r.status != 200) {
        let code = response.body["code"].as_str().unwrap_or_default();
        assert!(
            (response.status == 401 && code == "invalid_code")
                || (response.status == 429 && code == "second_factor_locked"),
            "a loser is refused as a wrong code or by the lock: {}",
            response.text
        );
    }
}

#[tokio::test]
async fn twenty_concurrent_verifies_with_one_totp_code_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let code = totp_code(&enrolled.secret, app.now());
    let responses = race_one_code(&app, &user.email, &code).await;
    assert_exactly_one_success(&responses);
}

#[tokio::test]
async fn twenty_concurrent_uses_of_one_backup_code_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let responses = race_one_code(&app, &user.email, &enrolled.backup_codes[4]).await;
    assert_exactly_one_success(&responses);

    let summary = app
        .get("/v1/auth/2fa/backup-codes", Some(&user.access_token))
        .await;
    assert_eq!(
        summary.body["used"], 1,
        "the code was spent once: {}",
        summary.text
    );
}
