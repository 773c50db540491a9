//! The per-account second-factor lockout: 5 consecutive failures lock it 15 minutes (even
//! for a right code), doubling per repeat; success resets; at 100 consecutive failures
//! TOTP is suspended until a backup code is used.

use serde_json::json;

use crate::helpers::{
    Enrolled, PASSWORD, TestApp, TestResponse, totp_code, verify_code, wrong_code,
};

async fn new_token(app: &TestApp, enrolled: &Enrolled) -> String {
    app.two_factor_token(&enrolled.user.email, PASSWORD).await
}

/// `n` (at most 5) wrong codes on one fresh two-factor token, each refused as a wrong code.
async fn wrong_codes(app: &TestApp, enrolled: &Enrolled, n: usize) {
    assert!(n <= 5, "a token dies after 5 wrong codes");
    let token = new_token(app, enrolled).await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    for attempt in 1..=n {
        let response = verify_code(app, &token, &wrong).await;
        assert_eq!(
            response.status, 401,
            "wrong code {attempt}: {}",
            response.text
        );
        assert_eq!(
            response.body["code"], "invalid_code",
            "wrong code {attempt}"
        );
    }
}

/// The right TOTP code on a fresh token.
async fn right_code(app: &TestApp, enrolled: &Enrolled) -> TestResponse {
    let token = new_token(app, enrolled).await;
    verify_code(app, &token, &totp_code(&enrolled.secret, app.now())).await
}

/// Asserts the answer is the lock and returns its `Retry-After` in seconds.
#[track_caller]
fn retry_after(response: &TestResponse) -> i64 {
    response.assert_problem(429, "second_factor_locked");
    let header = response
        .header("retry-after")
        .expect("a Retry-After header");
    header
        .parse::<i64>()
        .unwrap_or_else(|_| panic!("Retry-After is integer seconds: {header:?}"))
}

#[tokio::test]
async fn five_wrong_codes_lock_the_second_factor_even_against_the_right_code() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 5).await;

    let locked = right_code(&app, &enrolled).await;
    let secs = retry_after(&locked);
    assert!((890..=900).contains(&secs), "about 15 minutes: {secs}");
    assert!(locked.body.get("accessToken").is_none());

    // A backup code is refused as well, and spends nothing.
    let token = new_token(&app, &enrolled).await;
    retry_after(&verify_code(&app, &token, &enrolled.backup_codes[0]).await);
    // The lock holds for the sensitive-change `code` path too.
    let disable = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": PASSWORD, "code": totp_code(&enrolled.secret, app.now())}),
            Some(&enrolled.user.access_token),
        )
        .await;
    retry_after(&disable);

    // Time counts down while locked.
    app.clock.advance(600);
    let secs = retry_after(&right_code(&app, &enrolled).await);
    assert!((290..=300).contains(&secs), "about 5 minutes left: {secs}");

    let summary = app
        .get(
            "/v1/auth/2fa/backup-codes",
            Some(&enrolled.user.access_token),
        )
        .await;
    assert_eq!(
        summary.body["used"], 0,
        "no backup code spent while locked: {}",
        summary.text
    );
}

#[tokio::test]
async fn four_wrong_codes_do_not_lock() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 4).await;
    let response = right_code(&app, &enrolled).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn wrong_codes_across_tokens_add_up_to_the_lock() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 3).await;
    wrong_codes(&app, &enrolled, 2).await;
    retry_after(&right_code(&app, &enrolled).await);
}

#[tokio::test]
async fn the_right_code_works_again_once_the_lock_is_over() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 5).await;
    let secs = retry_after(&right_code(&app, &enrolled).await);

    app.clock.advance(secs - 1);
    retry_after(&right_code(&app, &enrolled).await);
    app.clock.advance(2);
    let response = right_code(&app, &enrolled).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn refusals_by_the_lock_do_not_spend_the_two_factor_token() {
    // A one-minute lock, so that a token outlives it.
    let app = TestApp::spawn_with(|config| config.lockout_base_secs = 60).await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 5).await;
    let token = new_token(&app, &enrolled).await;
    for _ in 0..6 {
        let secs =
            retry_after(&verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await);
        assert!((50..=60).contains(&secs), "{secs}");
    }
    app.clock.advance(61);
    let response = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(
        response.status, 200,
        "the token survived six refusals: {}",
        response.text
    );
}

#[tokio::test]
async fn the_lock_doubles_on_repeat() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 5).await;
    let first = retry_after(&right_code(&app, &enrolled).await);
    assert!((890..=900).contains(&first), "{first}");

    app.clock.advance(901);
    wrong_codes(&app, &enrolled, 5).await;
    let second = retry_after(&right_code(&app, &enrolled).await);
    assert!(
        (1790..=1800).contains(&second),
        "about 30 minutes: {second}"
    );

    app.clock.advance(1801);
    wrong_codes(&app, &enrolled, 5).await;
    let third = retry_after(&right_code(&app, &enrolled).await);
    assert!((3590..=3600).contains(&third), "about an hour: {third}");

    // Over at last: a success, and the next lock is back to 15 minutes.
    app.clock.advance(3601);
    assert_eq!(right_code(&app, &enrolled).await.status, 200);
    app.clock.advance(30);
    wrong_codes(&app, &enrolled, 5).await;
    let after_success = retry_after(&right_code(&app, &enrolled).await);
    assert!(
        (890..=900).contains(&after_success),
        "a success starts the ladder over: {after_success}"
    );
}

#[tokio::test]
async fn the_lock_is_capped_at_a_day() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    let mut last = 0;
    // 15 min, 30, 60, 2 h, 4 h, 8 h, 16 h, then 24 h (not 32 h).
    for _ in 0..8 {
        wrong_codes(&app, &enrolled, 5).await;
        last = retry_after(&right_code(&app, &enrolled).await);
        app.clock.advance(last + 1);
    }
    assert!(
        (86_390..=86_400).contains(&last),
        "capped at 24 hours: {last}"
    );
}

#[tokio::test]
async fn a_success_resets_the_failure_counter() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 4).await;
    assert_eq!(right_code(&app, &enrolled).await.status, 200);

    app.clock.advance(30);
    wrong_codes(&app, &enrolled, 4).await;
    let response = right_code(&app, &enrolled).await;
    assert_eq!(
        response.status, 200,
        "4 + 4 failures with a success between do not lock: {}",
        response.text
    );

    // And a backup-code success resets it as well.
    app.clock.advance(30);
    wrong_codes(&app, &enrolled, 4).await;
    let token = new_token(&app, &enrolled).await;
    assert_eq!(
        verify_code(&app, &token, &enrolled.backup_codes[0])
            .await
            .status,
        200
    );
    wrong_codes(&app, &enrolled, 4).await;
    let response = right_code(&app, &enrolled).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn a_lock_earned_on_one_surface_holds_on_the_other() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    wrong_codes(&app, &enrolled, 5).await;

    let login = app
        .post(
            "/authentication/login",
            json!({"email": enrolled.user.email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["requires2FA"], true, "{}", login.text);
    let temp = login.body["token"].as_str().unwrap();
    let compat = app
        .post(
            "/authentication/verify-2fa",
            json!({"code": totp_code(&enrolled.secret, app.now()), "token": temp}),
            None,
        )
        .await;
    assert_ne!(
        compat.status, 200,
        "the lock holds on the compatibility surface: {}",
        compat.text
    );
    assert_eq!(compat.body["success"], false, "{}", compat.text);
    assert!(compat.body["token"].is_null(), "{}", compat.text);
}

#[tokio::test]
async fn one_hundred_failures_suspend_totp_until_a_backup_code_is_used() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;

    // 20 rounds of 5 wrong codes, each followed by waiting out the lock it earns.
    for round in 1..=20 {
        wrong_codes(&app, &enrolled, 5).await;
        let token = new_token(&app, &enrolled).await;
        let locked = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
        let secs = retry_after(&locked);
        assert!(secs > 0, "round {round}");
        app.clock.advance(secs + 1);
    }

    // The right TOTP code is refused: suspended, not locked, and counted neither against
    // the account nor against the token (six refusals on one token).
    let token = new_token(&app, &enrolled).await;
    for _ in 0..6 {
        let refused = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
        refused.assert_problem(403, "totp_suspended");
    }

    // A backup code still works (on that same token), and lifts the suspension.
    let backup = verify_code(&app, &token, &enrolled.backup_codes[2]).await;
    assert_eq!(
        backup.status, 200,
        "a backup code gets through a suspension: {}",
        backup.text
    );

    app.clock.advance(30);
    let response = right_code(&app, &enrolled).await;
    assert_eq!(response.status, 200, "TOTP works again: {}", response.text);
}

#[tokio::test]
async fn ninety_nine_failures_do_not_suspend_totp() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    for _ in 1..=19 {
        wrong_codes(&app, &enrolled, 5).await;
        let secs = retry_after(&right_code(&app, &enrolled).await);
        app.clock.advance(secs + 1);
    }
    wrong_codes(&app, &enrolled, 4).await;
    let response = right_code(&app, &enrolled).await;
    assert_eq!(
        response.status, 200,
        "99 failures: not yet suspended: {}",
        response.text
    );
}
