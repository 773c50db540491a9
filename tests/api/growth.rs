//! What one account, or anyone hammering at one account, can add to the database: the
//! event log records real changes only.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

/// Every event of the account, newest first.
async fn all_events(app: &TestApp, access: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let page = app
            .get(
                &format!("/v1/auth/security-events?limit=100&offset={}", events.len()),
                Some(access),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let rows = page.body.as_array().expect("an array").clone();
        if rows.is_empty() {
            return events;
        }
        events.extend(rows);
    }
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// An account with 2FA on and a fresh access token (so it may trust devices).
async fn enrolled_with_fresh_token(app: &TestApp) -> (TestUser, String) {
    let user = app.signed_in_user().await;
    let enrolled = app.enable_two_factor(&user).await;
    let verified = app.login_with_code(&enrolled).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    (user, access)
}

#[tokio::test]
async fn removing_devices_that_are_not_there_records_nothing() {
    let app = TestApp::spawn().await;
    let (_, access) = enrolled_with_fresh_token(&app).await;
    let before = all_events(&app, &access).await.len();

    for _ in 0..50 {
        let none = app
            .delete("/v1/auth/2fa/trusted-devices", Some(&access))
            .await;
        assert_eq!(none.status, 200, "{}", none.text);
        assert_eq!(none.body, json!({"removed": 0}));
        let unknown = app
            .delete(
                &format!("/v1/auth/2fa/trusted-devices/{}", uuid::Uuid::new_v4()),
                Some(&access),
            )
            .await;
        unknown.assert_problem(404, "not_found");
    }
    assert_eq!(
        all_events(&app, &access).await.len(),
        before,
        "nothing removed, nothing recorded"
    );

    // A removal that removes something is recorded, each kind once.
    for fingerprint in ["fp-1", "fp-2"] {
        let trusted = app
            .post(
                "/v1/auth/2fa/trusted-devices",
                json!({"deviceName": "Laptop", "deviceType": "desktop", "deviceFingerprint": fingerprint}),
                Some(&access),
            )
            .await;
        assert_eq!(trusted.status, 201, "{}", trusted.text);
    }
    let first = app.get("/v1/auth/2fa/trusted-devices", Some(&access)).await;
    let id = first.body[0]["id"].as_str().unwrap().to_owned();
    let one = app
        .delete(&format!("/v1/auth/2fa/trusted-devices/{id}"), Some(&access))
        .await;
    assert_eq!(one.status, 204, "{}", one.text);
    let rest = app
        .delete("/v1/auth/2fa/trusted-devices", Some(&access))
        .await;
    assert_eq!(rest.body, json!({"removed": 1}));
    let events = all_events(&app, &access).await;
    assert_eq!(of_type(&events, "device_removed").len(), 1);
    let removed = of_type(&events, "devices_removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(
        removed[0]["details"],
        json!({"count": 1, "reason": "user_request"})
    );
    assert_eq!(events.len(), before + 4, "two trusted, two removals");
}
