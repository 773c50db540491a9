//! Replay and the time window: each step's code once, one step either side.

use super::*;

#[tokio::test]
async fn the_same_code_twice_is_refused_the_second_time() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let first = app.two_factor_token(&user.email, PASSWORD).await;
    let second = app.two_factor_token(&user.email, PASSWORD).await;
    let code = totp_code(&enrolled.secret, app.now());

    assert_eq!(verify_code(&app, &first, &code).await.status, 200);
    verify_code(&app, &second, &code)
        .await
        .assert_problem(401, "invalid_code");

    // The second token is still good for the next step's code.
    app.clock.advance(30);
    let next = verify_code(&app, &second, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(next.status, 200, "{}", next.text);
}

#[tokio::test]
async fn the_code_that_confirmed_the_setup_does_not_log_in() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let secret = pending_secret(&app, &user).await;
    let code = totp_code(&secret, app.now());
    let confirmed = app
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({ "code": code }),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    let token = app.two_factor_token(&user.email, PASSWORD).await;
    verify_code(&app, &token, &code)
        .await
        .assert_problem(401, "invalid_code");
    app.clock.advance(30);
    let next = verify_code(&app, &token, &totp_code(&secret, app.now())).await;
    assert_eq!(next.status, 200, "{}", next.text);
}

#[tokio::test]
async fn an_older_step_is_refused_after_a_newer_one_was_accepted() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let now = app.now();

    let ahead = app.two_factor_token(&user.email, PASSWORD).await;
    assert_eq!(
        verify_code(&app, &ahead, &totp_code(&enrolled.secret, now + 30))
            .await
            .status,
        200,
        "next step accepted"
    );

    let current = app.two_factor_token(&user.email, PASSWORD).await;
    verify_code(&app, &current, &totp_code(&enrolled.secret, now))
        .await
        .assert_problem(401, "invalid_code");
}

#[tokio::test]
async fn codes_one_step_either_side_are_accepted_and_two_steps_out_refused() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    // The enrolment used the step two steps ago (enable_two_factor moved one step); move
    // on so that even the previous step is newer than anything accepted so far.
    app.clock.advance(60);
    let now = app.now();
    for (label, offset) in [("previous", -30), ("current", 0), ("next", 30)] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        let response = verify_code(&app, &token, &totp_code(&enrolled.secret, now + offset)).await;
        assert_eq!(response.status, 200, "{label} step: {}", response.text);
    }

    // The code of the next step taught the server a drift of one step; a code of the
    // current step re-centres the window on the server's clock.
    app.clock.advance(300);
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let response = verify_code(&app, &token, &totp_code(&enrolled.secret, app.now())).await;
    assert_eq!(response.status, 200, "current step: {}", response.text);

    // Far ahead of every accepted step, so only the window can refuse these.
    app.clock.advance(300);
    let now = app.now();
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    for (label, offset) in [
        ("two steps back", -60),
        ("two steps ahead", 60),
        ("three steps back", -90),
    ] {
        let response = verify_code(&app, &token, &totp_code(&enrolled.secret, now + offset)).await;
        assert_eq!(response.status, 401, "{label}: {}", response.text);
        assert_eq!(response.body["code"], "invalid_code", "{label}");
    }
    let current = verify_code(&app, &token, &totp_code(&enrolled.secret, now)).await;
    assert_eq!(
        current.status, 200,
        "the current step still works: {}",
        current.text
    );
}

#[tokio::test]
async fn the_window_edges_on_fresh_accounts() {
    // The same edges, each on an account that has accepted nothing since enrolment.
    let app = TestApp::spawn().await;
    for (offset, accepted) in [
        (-30, true),
        (0, true),
        (30, true),
        (-60, false),
        (60, false),
    ] {
        let user = app.signed_in_user().await;
        let enrolled = app.enable_two_factor(&user).await;
        app.clock.advance(60);
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        let response = verify_code(
            &app,
            &token,
            &totp_code(&enrolled.secret, app.now() + offset),
        )
        .await;
        if accepted {
            assert_eq!(response.status, 200, "offset {offset}: {}", response.text);
        } else {
            response.assert_problem(401, "invalid_code");
        }
    }
}
