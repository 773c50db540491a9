//! Backup codes: ten distinct codes, each good for one login, in any order.

use super::*;

#[tokio::test]
async fn backup_codes_are_ten_distinct_codes_in_display_form() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    assert_eq!(enrolled.backup_codes.len(), 10);
    for code in &enrolled.backup_codes {
        let (left, right) = code
            .split_once('-')
            .unwrap_or_else(|| panic!("{code} has a dash"));
        assert_eq!(left.len(), 5, "{code}");
        assert_eq!(right.len(), 5, "{code}");
        assert!(
            left.chars()
                .chain(right.chars())
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
            "{code} is lowercase alphanumeric"
        );
    }
    let mut distinct = enrolled.backup_codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "all different");
}

#[tokio::test]
async fn a_backup_code_logs_in_case_and_dash_insensitively_and_only_once() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let code = &enrolled.backup_codes[0];
    let shouted = code.replace('-', "").to_uppercase();

    let token = app.two_factor_token(&user.email, PASSWORD).await;
    let first = verify_code(&app, &token, &shouted).await;
    assert_eq!(
        first.status, 200,
        "uppercase without a dash: {}",
        first.text
    );

    for form in [code.clone(), shouted.clone(), code.to_uppercase()] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        verify_code(&app, &token, &form)
            .await
            .assert_problem(401, "invalid_code");
    }
    // Another code still works.
    let token = app.two_factor_token(&user.email, PASSWORD).await;
    assert_eq!(
        verify_code(&app, &token, &enrolled.backup_codes[1])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn backup_codes_work_in_any_order() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    for index in [9, 2, 7, 0, 5] {
        let token = app.two_factor_token(&user.email, PASSWORD).await;
        let response = verify_code(&app, &token, &enrolled.backup_codes[index]).await;
        assert_eq!(response.status, 200, "code #{index}: {}", response.text);
    }
    let summary = app
        .get("/v1/auth/2fa/backup-codes", Some(&user.access_token))
        .await;
    assert_eq!(summary.body["remaining"], 5);
    assert_eq!(summary.body["used"], 5);
}
