//! A signature counter that goes backwards (a cloned authenticator) disables the passkey,
//! and two instances of one deployment finish each other's ceremonies.

use serde_json::json;

use super::*;
use crate::helpers::postgres_or_skip;

#[tokio::test]
async fn a_counter_that_goes_backwards_disables_the_passkey() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_key(&app, SoftKey::counting([0; 16]), "Security key").await;
    let clone = key.snapshot();

    let first = passwordless(&app, &mut key).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = passwordless(&app, &mut key).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let access = second.body["accessToken"].as_str().unwrap().to_owned();
    let latest = key.snapshot();

    // The copy taken before those two sign-ins signs with counter 1, below the 2 seen.
    key.restore(clone);
    passwordless(&app, &mut key)
        .await
        .assert_problem(401, "invalid_passkey");

    let list = app.get("/v1/auth/passkeys", Some(&access)).await;
    assert_eq!(list.body[0]["disabled"], true, "{}", list.text);
    let events = events(&app, &access).await;
    assert!(
        events
            .iter()
            .any(|(t, d)| t == "passkey_disabled" && d["reason"] == "counter_regression"),
        "{events:?}"
    );
    let status = app.get("/v1/auth/2fa/status", Some(&access)).await;
    assert_eq!(status.body["passkeys"], 0, "{}", status.text);

    // Disabled for good: the genuine authenticator is refused too, and a login no longer
    // offers it.
    key.restore(latest);
    passwordless(&app, &mut key)
        .await
        .assert_problem(401, "invalid_passkey");
    let login = app.login(&user.email, &user.password).await;
    assert_eq!(
        login.body["methods"],
        json!(["backup_code"]),
        "{}",
        login.text
    );
    let token = login.body["twoFactorToken"].as_str().unwrap();
    verify_start(&app, token)
        .await
        .assert_problem(409, "no_passkey");
}

#[tokio::test]
async fn a_counter_regression_in_the_second_step_is_a_wrong_answer_and_disables() {
    let app = spawn().await;
    let (user, mut key, _) = user_with_key(&app, SoftKey::counting([0; 16]), "Security key").await;
    let clone = key.snapshot();
    let token = app.two_factor_token(&user.email, &user.password).await;
    let ok = second_step(&app, &token, &mut key).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    key.restore(clone);
    let token = app.two_factor_token(&user.email, &user.password).await;
    second_step(&app, &token, &mut key)
        .await
        .assert_problem(401, "invalid_passkey");
    let list = app
        .get(
            "/v1/auth/passkeys",
            Some(ok.body["accessToken"].as_str().unwrap()),
        )
        .await;
    assert_eq!(list.body[0]["disabled"], true, "{}", list.text);
}

/// Two servers on one PostgreSQL database (each its own pools and state) finish each
/// other's ceremonies: registration, second step and passwordless sign-in.
#[tokio::test]
async fn two_instances_finish_each_others_ceremonies() {
    if postgres_or_skip("two_instances_finish_each_others_ceremonies").is_none() {
        return;
    }
    let a = spawn().await;
    let b = a.sibling().await;
    let user = a.signed_in_user().await;
    let mut key = SoftKey::counting([0; 16]);

    let started = register_start(&a, &user.access_token, json!({})).await;
    let credential = key.create(&started.body["options"], ORIGIN).await;
    let ceremony = &started.body["ceremonyId"];
    let finished = register_finish(&b, &user.access_token, ceremony, &credential, "x").await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    register_finish(&a, &user.access_token, ceremony, &credential, "x")
        .await
        .assert_problem(409, "invalid_ceremony");

    let token = a.two_factor_token(&user.email, &user.password).await;
    let started = verify_start(&b, &token).await;
    let credential = key.get(&started.body["options"], ORIGIN).await;
    let ceremony = &started.body["ceremonyId"];
    let verified = verify_finish(&a, &token, ceremony, &credential).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    verify_finish(&b, &token, ceremony, &credential)
        .await
        .assert_problem(401, "invalid_two_factor_token");

    let started = login_start(&a).await;
    let credential = key.get(&started.body["options"], ORIGIN).await;
    let ceremony = &started.body["ceremonyId"];
    // Both instances at once: exactly one finishes it.
    let (on_a, on_b) = tokio::join!(
        login_finish(&a, ceremony, &credential),
        login_finish(&b, ceremony, &credential),
    );
    let mut statuses = [on_a.status.as_u16(), on_b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "a: {} b: {}", on_a.text, on_b.text);
}
