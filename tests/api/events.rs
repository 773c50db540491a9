//! The security event log: what is recorded, in which order, with which client facts,
//! paging, isolation between accounts, and that no secret ever shows up in it.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, TestResponse, backup_codes_in, totp_code, unix_time, wrong_code,
};

const NEW_PASSWORD: &str = "another long passphrase 9000";

/// A client that sends its own User-Agent on every request.
struct Agent<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    user_agent: String,
}

impl<'a> Agent<'a> {
    fn new(app: &'a TestApp, user_agent: &str) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            app,
            client,
            user_agent: user_agent.to_owned(),
        }
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> TestResponse {
        let mut request = self.client.post(self.app.url(path)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.app.send(request).await
    }

    async fn delete(&self, path: &str, bearer: Option<&str>) -> TestResponse {
        let mut request = self.client.delete(self.app.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.app.send(request).await
    }

    /// Registers a new account; returns its email.
    async fn register(&self) -> String {
        let email = format!("events-{}@example.com", uuid::Uuid::new_v4().simple());
        let registered = self
            .post(
                "/v1/auth/register",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(registered.status, 201, "{}", registered.text);
        email
    }

    async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// Turns 2FA on; returns the secret and the backup codes.
    async fn enable_two_factor(&self, access: &str) -> (String, Vec<String>) {
        let setup = self
            .post("/v1/auth/2fa/setup", json!({}), Some(access))
            .await;
        assert_eq!(setup.status, 200, "{}", setup.text);
        let secret = setup.body["secret"].as_str().unwrap().to_owned();
        let code = totp_code(&secret, self.app.now());
        let confirmed = self
            .post(
                "/v1/auth/2fa/verify-setup",
                json!({"code": code}),
                Some(access),
            )
            .await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.text);
        let codes = backup_codes_in(&confirmed.body);
        (secret, codes)
    }

    /// The password step of a 2FA login: the twoFactorToken.
    async fn challenge(&self, email: &str, password: &str) -> String {
        let login = self.login(email, password).await;
        assert_eq!(login.body["requires2FA"], true, "{}", login.text);
        login.body["twoFactorToken"].as_str().unwrap().to_owned()
    }

    async fn verify(&self, challenge: &str, body: Value) -> TestResponse {
        self.post("/v1/auth/2fa/verify", body, Some(challenge))
            .await
    }
}

/// Every event of the holder of `access`, newest first (one page of the largest size).
async fn all_events(app: &TestApp, access: &str) -> Vec<Value> {
    let page = app
        .get("/v1/auth/security-events?limit=100", Some(access))
        .await;
    assert_eq!(page.status, 200, "events: {}", page.text);
    page.body.as_array().expect("an array").clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type is a string"))
        .collect()
}

fn device_input(fingerprint: &str, name: &str) -> Value {
    json!({"deviceName": name, "deviceType": "desktop", "deviceFingerprint": fingerprint})
}

#[tokio::test]
async fn each_action_is_recorded_newest_first_with_time_ip_and_user_agent() {
    let app = TestApp::spawn().await;
    let agent = Agent::new(&app, "EventsTest/1.0 (integration)");
    let email = agent.register().await;
    // (type, when, details it must contain), in the order things happen.
    let mut expected: Vec<(&str, i64, Value)> = Vec::new();

    // A password-only login.
    app.clock.advance(1);
    let login = agent.login(&email, PASSWORD).await;
    assert_eq!(login.body["requires2FA"], false, "{}", login.text);
    let password_only = login.body["accessToken"].as_str().unwrap().to_owned();
    expected.push(("login_succeeded", app.now(), json!({"method": "password"})));

    // 2FA turned on.
    app.clock.advance(1);
    let (secret, backup_codes) = agent.enable_two_factor(&password_only).await;
    expected.push(("two_factor_enabled", app.now(), json!({"method": "totp"})));

    // A wrong code, then the right one.
    app.clock.advance(30);
    let challenge = agent.challenge(&email, PASSWORD).await;
    let wrong = agent
        .verify(&challenge, json!({"code": wrong_code(&secret, app.now())}))
        .await;
    wrong.assert_problem(401, "invalid_code");
    expected.push(("second_factor_failed", app.now(), json!({"method": "totp"})));
    app.clock.advance(1);
    let verified = agent
        .verify(&challenge, json!({"code": totp_code(&secret, app.now())}))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    expected.push((
        "login_succeeded",
        app.now(),
        json!({"method": "second_factor", "secondFactor": "totp"}),
    ));

    // A login with a backup code.
    app.clock.advance(1);
    let challenge = agent.challenge(&email, PASSWORD).await;
    let by_backup = agent
        .verify(&challenge, json!({"code": backup_codes[0]}))
        .await;
    assert_eq!(by_backup.status, 200, "{}", by_backup.text);
    expected.push(("backup_code_used", app.now(), json!({"remaining": 9})));
    expected.push((
        "login_succeeded",
        app.now(),
        json!({"method": "second_factor", "secondFactor": "backup_code"}),
    ));

    // Two devices trusted, one used to log in, then removed.
    app.clock.advance(1);
    let first = agent
        .post(
            "/v1/auth/2fa/trusted-devices",
            device_input("fp-1", "Desk"),
            Some(&access),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let first_id = first.body["id"].as_str().unwrap().to_owned();
    expected.push((
        "device_trusted",
        app.now(),
        json!({"deviceId": first_id, "deviceName": "Desk"}),
    ));
    app.clock.advance(1);
    let second = agent
        .post(
            "/v1/auth/2fa/trusted-devices",
            device_input("fp-2", "Sofa"),
            Some(&access),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.text);
    expected.push(("device_trusted", app.now(), json!({"deviceName": "Sofa"})));
    app.clock.advance(1);
    let by_device = agent
        .post(
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD,
                   "deviceToken": first.body["deviceToken"], "deviceFingerprint": "fp-1"}),
            None,
        )
        .await;
    assert_eq!(by_device.body["requires2FA"], false, "{}", by_device.text);
    expected.push((
        "login_succeeded",
        app.now(),
        json!({"method": "trusted_device", "deviceId": first_id}),
    ));
    app.clock.advance(1);
    let removed = agent
        .delete(
            &format!("/v1/auth/2fa/trusted-devices/{first_id}"),
            Some(&access),
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    expected.push(("device_removed", app.now(), json!({"deviceId": first_id})));

    // Backup codes regenerated.
    app.clock.advance(1);
    let regenerated = agent
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({}),
            Some(&access),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    expected.push(("backup_codes_regenerated", app.now(), json!({})));

    // The password changed: three other sessions (password-only, backup-code, device)
    // and the remaining device are revoked.
    app.clock.advance(1);
    let changed = agent
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
            Some(&access),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    expected.push(("password_changed", app.now(), json!({})));
    expected.push((
        "sessions_revoked",
        app.now(),
        json!({"count": 3, "reason": "password_changed"}),
    ));
    expected.push((
        "devices_removed",
        app.now(),
        json!({"count": 1, "reason": "password_changed"}),
    ));

    // 2FA turned off.
    app.clock.advance(1);
    let disabled = agent
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": NEW_PASSWORD}),
            Some(&access),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    expected.push(("two_factor_disabled", app.now(), json!({})));

    let events = all_events(&app, &access).await;
    expected.reverse();
    let expected_types: Vec<&str> = expected.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(types(&events), expected_types, "types, newest first");
    let mut ids = BTreeSet::new();
    for (event, (kind, at, details)) in events.iter().zip(&expected) {
        let fields: BTreeSet<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from([
                "id",
                "type",
                "occurredAt",
                "ipAddress",
                "userAgent",
                "details"
            ]),
            "{event}"
        );
        assert!(
            ids.insert(event["id"].as_str().unwrap().to_owned()),
            "ids are unique"
        );
        assert_eq!(
            unix_time(&event["occurredAt"]),
            *at,
            "time of {kind}: {event}"
        );
        assert_eq!(event["ipAddress"], "127.0.0.1", "{event}");
        assert_eq!(event["userAgent"], agent.user_agent.as_str(), "{event}");
        assert!(event["details"].is_object(), "{event}");
        for (key, value) in details.as_object().unwrap() {
            assert_eq!(
                &event["details"][key], value,
                "{kind} details.{key}: {event}"
            );
        }
    }
    let times: Vec<i64> = events.iter().map(|e| unix_time(&e["occurredAt"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
}

#[tokio::test]
async fn lockout_and_failed_password_are_recorded() {
    let app = TestApp::spawn().await;
    let agent = Agent::new(&app, "LockoutTest/2.0");
    let email = agent.register().await;
    let login = agent.login(&email, PASSWORD).await;
    let access = login.body["accessToken"].as_str().unwrap().to_owned();
    let (secret, _) = agent.enable_two_factor(&access).await;
    app.clock.advance(30);

    let wrong_password = agent.login(&email, "definitely not the password").await;
    wrong_password.assert_problem(401, "invalid_credentials");

    let challenge = agent.challenge(&email, PASSWORD).await;
    for _ in 0..5 {
        let refused = agent
            .verify(&challenge, json!({"code": wrong_code(&secret, app.now())}))
            .await;
        refused.assert_problem(401, "invalid_code");
    }
    let locked = agent
        .verify(
            &agent.challenge(&email, PASSWORD).await,
            json!({"code": totp_code(&secret, app.now())}),
        )
        .await;
    locked.assert_problem(429, "second_factor_locked");

    let events = all_events(&app, &access).await;
    assert_eq!(
        types(&events)[..8],
        [
            "second_factor_locked",
            "second_factor_failed",
            "second_factor_failed",
            "second_factor_failed",
            "second_factor_failed",
            "second_factor_failed",
            "login_failed",
            "two_factor_enabled",
        ],
        "{events:#?}"
    );
    assert_eq!(
        events[0]["details"]["lockedForSeconds"],
        15 * 60,
        "{}",
        events[0]
    );
    let failures: Vec<&Value> = events[1..6]
        .iter()
        .map(|e| &e["details"]["consecutiveFailures"])
        .collect();
    assert_eq!(
        failures,
        [&json!(5), &json!(4), &json!(3), &json!(2), &json!(1)],
        "newest first"
    );
    assert_eq!(events[6]["details"]["reason"], "wrong_password");
    for event in &events[..7] {
        assert_eq!(event["ipAddress"], "127.0.0.1");
        assert_eq!(event["userAgent"], "LockoutTest/2.0");
    }
}

#[tokio::test]
async fn abandoned_second_factor_is_recorded_once_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let agent = Agent::new(&app, "AbandonTest/3.0");
    let email = agent.register().await;
    let access = agent.login(&email, PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (secret, _) = agent.enable_two_factor(&access).await;
    app.clock.advance(30);

    // One second step completed, one left unused.
    let completed = agent.challenge(&email, PASSWORD).await;
    let verified = agent
        .verify(&completed, json!({"code": totp_code(&secret, app.now())}))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    let password_verified_at = app.now();
    let _abandoned = agent.challenge(&email, PASSWORD).await;

    app.clock.advance(5 * 60 - 1);
    let report = tessera::service::maintenance::run_once(&app.state)
        .await
        .expect("maintenance");
    assert_eq!(report.abandoned_second_factors, 0, "not expired yet");
    assert!(!types(&all_events(&app, &access).await).contains(&"second_factor_abandoned"));

    app.clock.advance(1);
    let report = tessera::service::maintenance::run_once(&app.state)
        .await
        .expect("maintenance");
    assert_eq!(report.abandoned_second_factors, 1, "only the unused one");
    let again = tessera::service::maintenance::run_once(&app.state)
        .await
        .expect("maintenance");
    assert_eq!(again.abandoned_second_factors, 0, "reported once");

    let events = all_events(&app, &access).await;
    let abandoned: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "second_factor_abandoned")
        .collect();
    assert_eq!(abandoned.len(), 1, "{events:#?}");
    let event = abandoned[0];
    assert_eq!(event, &events[0], "the newest event");
    assert_eq!(unix_time(&event["occurredAt"]), app.now());
    assert_eq!(
        unix_time(&event["details"]["passwordVerifiedAt"]),
        password_verified_at
    );
    // The client facts are those of the abandoned login, not of the maintenance run.
    assert_eq!(event["ipAddress"], "127.0.0.1");
    assert_eq!(event["userAgent"], "AbandonTest/3.0");
}

#[tokio::test]
async fn security_events_are_paged() {
    let app = TestApp::spawn().await;
    let agent = Agent::new(&app, "PagingTest");
    let email = agent.register().await;
    let mut access = String::new();
    for round in 0..7 {
        app.clock.advance(10);
        if round % 3 == 2 {
            agent
                .login(&email, "wrong password here")
                .await
                .assert_problem(401, "invalid_credentials");
        } else {
            let login = agent.login(&email, PASSWORD).await;
            assert_eq!(login.status, 200, "{}", login.text);
            access = login.body["accessToken"].as_str().unwrap().to_owned();
        }
    }

    let everything = all_events(&app, &access).await;
    assert_eq!(everything.len(), 7, "{everything:#?}");
    let default_page = app.get("/v1/auth/security-events", Some(&access)).await;
    assert_eq!(default_page.status, 200, "{}", default_page.text);
    assert_eq!(
        default_page.body.as_array().unwrap(),
        &everything,
        "no parameters: the first page holds all 7"
    );
    let times: Vec<i64> = everything
        .iter()
        .map(|e| unix_time(&e["occurredAt"]))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] > w[1]),
        "newest first: {times:?}"
    );
    assert_eq!(times[0], app.now());

    let mut paged = Vec::new();
    for offset in [0, 3, 6] {
        let page = app
            .get(
                &format!("/v1/auth/security-events?limit=3&offset={offset}"),
                Some(&access),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.body.as_array().unwrap();
        assert_eq!(
            items.len(),
            if offset == 6 { 1 } else { 3 },
            "page at {offset}"
        );
        paged.extend(items.iter().cloned());
    }
    assert_eq!(paged, everything, "the pages, in order, are the whole log");

    let one = app
        .get("/v1/auth/security-events?limit=1&offset=2", Some(&access))
        .await;
    assert_eq!(one.body.as_array().unwrap(), &everything[2..3]);
    let offset_only = app
        .get("/v1/auth/security-events?offset=5", Some(&access))
        .await;
    assert_eq!(offset_only.body.as_array().unwrap(), &everything[5..]);
    let past_end = app
        .get("/v1/auth/security-events?limit=10&offset=7", Some(&access))
        .await;
    assert_eq!(past_end.status, 200);
    assert_eq!(past_end.body, json!([]));
    let max = app
        .get("/v1/auth/security-events?limit=100&offset=0", Some(&access))
        .await;
    assert_eq!(max.status, 200, "100 is allowed: {}", max.text);
}

#[tokio::test]
async fn invalid_paging_parameters_are_400() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "offset=-1",
        "limit=ten",
        "offset=abc",
        "limit=1.5",
        "limit=99999999999999999999",
    ] {
        let answer = app
            .get(
                &format!("/v1/auth/security-events?{query}"),
                Some(&user.access_token),
            )
            .await;
        answer.assert_problem(400, "validation_failed");
        assert!(
            answer.body["errors"].is_object(),
            "{query}: {}",
            answer.text
        );
    }
    app.get("/v1/auth/security-events", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/v1/auth/security-events", Some("not-a-token"))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn users_never_see_each_others_events() {
    let app = TestApp::spawn().await;
    let alice = Agent::new(&app, "alice-agent");
    let bob = Agent::new(&app, "bob-agent");
    let alice_email = alice.register().await;
    let bob_email = bob.register().await;

    let alice_access = alice.login(&alice_email, PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (alice_secret, _) = alice.enable_two_factor(&alice_access).await;
    app.clock.advance(30);
    let challenge = alice.challenge(&alice_email, PASSWORD).await;
    alice
        .verify(
            &challenge,
            json!({"code": wrong_code(&alice_secret, app.now())}),
        )
        .await
        .assert_problem(401, "invalid_code");
    let verified = alice
        .verify(
            &challenge,
            json!({"code": totp_code(&alice_secret, app.now())}),
        )
        .await;
    let alice_fresh = verified.body["accessToken"].as_str().unwrap().to_owned();
    let device = alice
        .post(
            "/v1/auth/2fa/trusted-devices",
            device_input("alice-fp", "Alice's laptop"),
            Some(&alice_fresh),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    let alice_device = device.body["id"].as_str().unwrap().to_owned();

    let bob_access = bob.login(&bob_email, PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.login(&bob_email, "bob forgot it again")
        .await
        .assert_problem(401, "invalid_credentials");

    let alice_events = all_events(&app, &alice_fresh).await;
    let bob_events = all_events(&app, &bob_access).await;
    assert_eq!(
        types(&alice_events),
        [
            "device_trusted",
            "login_succeeded",
            "second_factor_failed",
            "two_factor_enabled",
            "login_succeeded"
        ]
    );
    assert_eq!(types(&bob_events), ["login_failed", "login_succeeded"]);
    assert!(
        alice_events.iter().all(|e| e["userAgent"] == "alice-agent"),
        "{alice_events:#?}"
    );
    assert!(
        bob_events.iter().all(|e| e["userAgent"] == "bob-agent"),
        "{bob_events:#?}"
    );
    let bob_text = serde_json::to_string(&bob_events).unwrap();
    assert!(
        !bob_text.contains(&alice_device) && !bob_text.contains("Alice"),
        "{bob_text}"
    );
    let alice_ids: BTreeSet<&str> = alice_events
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        bob_events
            .iter()
            .all(|e| !alice_ids.contains(e["id"].as_str().unwrap()))
    );
    // Paging past one's own events never reaches anyone else's.
    let beyond = app
        .get("/v1/auth/security-events?offset=2", Some(&bob_access))
        .await;
    assert_eq!(beyond.body, json!([]), "{}", beyond.text);
}

#[tokio::test]
async fn events_never_contain_secrets_codes_or_tokens() {
    let app = TestApp::spawn().await;
    let agent = Agent::new(&app, "SecretsTest");
    let mut secrets: Vec<String> = vec![PASSWORD.into(), NEW_PASSWORD.into()];
    let keep = |secrets: &mut Vec<String>, answer: &TestResponse, fields: &[&str]| {
        for field in fields {
            if let Some(value) = answer.body[*field].as_str() {
                secrets.push(value.to_owned());
            }
        }
    };

    let email = agent.register().await;
    let login = agent.login(&email, PASSWORD).await;
    keep(&mut secrets, &login, &["accessToken", "refreshToken"]);
    let access = login.body["accessToken"].as_str().unwrap().to_owned();

    // Setup and verify-setup.
    let setup = agent
        .post("/v1/auth/2fa/setup", json!({}), Some(&access))
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    keep(&mut secrets, &setup, &["secret", "otpauthUrl", "qrCode"]);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let code = totp_code(&secret, app.now());
    secrets.push(code.clone());
    let confirmed = agent
        .post(
            "/v1/auth/2fa/verify-setup",
            json!({"code": code}),
            Some(&access),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let backup_codes: Vec<String> = backup_codes_in(&confirmed.body);
    secrets.extend(backup_codes.iter().cloned());

    // A login with TOTP that trusts the device, after a wrong code.
    app.clock.advance(30);
    let challenge = agent.challenge(&email, PASSWORD).await;
    secrets.push(challenge.clone());
    let wrong = wrong_code(&secret, app.now());
    agent
        .verify(&challenge, json!({"code": wrong}))
        .await
        .assert_problem(401, "invalid_code");
    let code = totp_code(&secret, app.now());
    secrets.push(code.clone());
    let fingerprint = format!("fingerprint-{}", uuid::Uuid::new_v4().simple());
    secrets.push(fingerprint.clone());
    let verified = agent
        .verify(
            &challenge,
            json!({"code": code, "trustDevice": device_input(&fingerprint, "Desk")}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    keep(
        &mut secrets,
        &verified,
        &["accessToken", "refreshToken", "deviceToken"],
    );
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    let device_token = verified.body["deviceToken"].as_str().unwrap().to_owned();

    // A login with a backup code.
    app.clock.advance(1);
    let challenge = agent.challenge(&email, PASSWORD).await;
    secrets.push(challenge.clone());
    let by_backup = agent
        .verify(&challenge, json!({"code": backup_codes[4]}))
        .await;
    assert_eq!(by_backup.status, 200, "{}", by_backup.text);
    keep(&mut secrets, &by_backup, &["accessToken", "refreshToken"]);

    // A login with the trusted device, and a refresh.
    let by_device = agent
        .post(
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD, "deviceToken": device_token, "deviceFingerprint": fingerprint}),
            None,
        )
        .await;
    assert_eq!(by_device.body["requires2FA"], false, "{}", by_device.text);
    keep(&mut secrets, &by_device, &["accessToken", "refreshToken"]);
    let refreshed = agent
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": by_device.body["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    keep(&mut secrets, &refreshed, &["accessToken", "refreshToken"]);

    // Another trusted device added directly.
    let second_fingerprint = format!("fingerprint-{}", uuid::Uuid::new_v4().simple());
    secrets.push(second_fingerprint.clone());
    let added = agent
        .post(
            "/v1/auth/2fa/trusted-devices",
            device_input(&second_fingerprint, "Sofa"),
            Some(&access),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    keep(&mut secrets, &added, &["deviceToken"]);

    // Regenerated backup codes, with a TOTP code in the request.
    app.clock.advance(30);
    let code = totp_code(&secret, app.now());
    secrets.push(code.clone());
    let regenerated = agent
        .post(
            "/v1/auth/2fa/regenerate-backup-codes",
            json!({"code": code}),
            Some(&access),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    secrets.extend(backup_codes_in(&regenerated.body));

    // A second step left to expire.
    let abandoned = agent.challenge(&email, PASSWORD).await;
    secrets.push(abandoned.clone());
    app.clock.advance(5 * 60);
    tessera::service::maintenance::run_once(&app.state)
        .await
        .expect("maintenance");

    // A fresh login, the password changed, and 2FA turned off.
    let challenge = agent.challenge(&email, PASSWORD).await;
    secrets.push(challenge.clone());
    let code = totp_code(&secret, app.now());
    secrets.push(code.clone());
    let verified = agent.verify(&challenge, json!({"code": code})).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    keep(&mut secrets, &verified, &["accessToken", "refreshToken"]);
    let access = verified.body["accessToken"].as_str().unwrap().to_owned();
    let changed = agent
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
            Some(&access),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    let disabled = agent
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": NEW_PASSWORD}),
            Some(&access),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);

    let page = app
        .get("/v1/auth/security-events?limit=100", Some(&access))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let kinds: BTreeSet<&str> = types(page.body.as_array().unwrap()).into_iter().collect();
    for kind in [
        "login_succeeded",
        "two_factor_enabled",
        "second_factor_failed",
        "device_trusted",
        "backup_code_used",
        "backup_codes_regenerated",
        "second_factor_abandoned",
        "password_changed",
        "sessions_revoked",
        "devices_removed",
        "two_factor_disabled",
    ] {
        assert!(kinds.contains(kind), "the flow recorded {kind}: {kinds:?}");
    }

    // Neither the text as sent nor any JSON-escaped or normalised form holds a secret.
    let text = page.text.to_lowercase();
    assert!(secrets.len() > 30, "collected {} secrets", secrets.len());
    for secret in &secrets {
        let forms = [
            secret.to_lowercase(),
            secret.replace('-', "").to_lowercase(),
            serde_json::to_string(secret)
                .unwrap()
                .trim_matches('"')
                .to_lowercase(),
        ];
        for form in forms {
            assert!(
                !text.contains(&form),
                "the events hold a secret ({secret}): {}",
                page.text
            );
        }
    }
}

/// A sign-in from a browser family the account has not used recently is
/// `new_device_sign_in`, with the family and the network; the account's first sign-in
/// and a later one from the same family are not.
#[tokio::test]
async fn a_sign_in_from_another_browser_is_a_new_device_sign_in() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    let login = |agent: &'static str| {
        app.send(
            app.client
                .post(app.url("/v1/auth/login"))
                .header("user-agent", agent)
                .json(&json!({"email": user.email, "password": PASSWORD})),
        )
    };
    let first = login(safari).await;
    assert_eq!(first.status, 200, "{}", first.text);
    login(safari).await;
    let access = first.body["accessToken"].as_str().unwrap();
    let events = all_events(&app, access).await;
    let new_device: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "new_device_sign_in")
        .collect();
    assert_eq!(new_device.len(), 1, "{events:?}");
    let event = new_device[0];
    assert_eq!(event["details"]["device"], "Safari on iOS", "{event}");
    assert_eq!(event["details"]["network"], "127.0.0.1", "{event}");
    assert_eq!(event["ipAddress"], "127.0.0.1", "{event}");
    assert_eq!(event["userAgent"], safari, "{event}");
}

/// Each passkey change is an event of its own, with the client's address, in order: the
/// first passkey turning 2FA on, a use, a clone caught by its counter, the removal.
#[tokio::test]
async fn passkey_changes_are_recorded() {
    use crate::passkeys::{self, SoftKey};
    let app = passkeys::spawn().await;
    let user = app.signed_in_user().await;
    let mut key = SoftKey::counting([0; 16]);
    let registered = passkeys::register(&app, &user, &mut key, "Desk key").await;
    let clone = key.snapshot();
    let signed_in = passkeys::passwordless(&app, &mut key).await;
    let access = signed_in.body["accessToken"].as_str().unwrap().to_owned();
    key.restore(clone);
    passkeys::passwordless(&app, &mut key)
        .await
        .assert_problem(401, "invalid_passkey");
    let id = registered["passkey"]["id"].as_str().unwrap();
    let removed = app
        .delete(&format!("/v1/auth/passkeys/{id}"), Some(&access))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);

    let events = all_events(&app, &access).await;
    let newest_first: Vec<&str> = types(&events)
        .into_iter()
        .filter(|t| {
            t.starts_with("passkey_") || t.starts_with("two_factor_") || *t == "login_succeeded"
        })
        .collect();
    assert_eq!(
        newest_first,
        [
            "two_factor_disabled",
            "passkey_removed",
            "passkey_disabled",
            "login_succeeded",
            "passkey_registered",
            "two_factor_enabled",
            "login_succeeded",
        ],
        "{events:#?}"
    );
    for event in &events {
        assert_eq!(event["ipAddress"], "127.0.0.1", "{event}");
    }
    let of = |kind: &str| events.iter().find(|e| e["type"] == kind).unwrap();
    assert_eq!(of("passkey_registered")["details"]["passkeyId"], id);
    assert_eq!(of("passkey_removed")["details"]["passkeyId"], id);
    assert_eq!(
        of("passkey_disabled")["details"]["reason"],
        "counter_regression"
    );
    assert_eq!(of("two_factor_enabled")["details"]["method"], "passkey");
}

/// A device is new again once it has not signed in for `new_device_window_days`: each
/// sign-in moves its last sighting, so one back within the window is not news, and one
/// back after it is.
#[tokio::test]
async fn a_device_back_after_the_window_is_new_again() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    let window = app.state.config.new_device_window_days * 86_400;
    let login = || app.login(&user.email, PASSWORD);
    let new_devices = |access: String| {
        let app = &app;
        async move {
            let events = all_events(app, &access).await;
            events
                .iter()
                .filter(|e| e["type"] == "new_device_sign_in")
                .count()
        }
    };

    app.clock.advance(window - 86_400);
    let within = login().await;
    assert_eq!(within.status, 200, "{}", within.text);
    let access = within.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(new_devices(access).await, 0, "seen within the window");

    // Counted from the sign-in just above, not from the first one.
    app.clock.advance(window - 86_400);
    let still_within = login().await;
    let access = still_within.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        new_devices(access).await,
        0,
        "each sign-in renews the device"
    );

    app.clock.advance(window + 1);
    let after = login().await;
    assert_eq!(after.status, 200, "{}", after.text);
    let access = after.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(new_devices(access).await, 1, "back after the window");
}

/// A sign-in with a trusted device is not from a new device even from another browser:
/// one of its devices (the trusted one) was seen recently.
#[tokio::test]
async fn a_trusted_device_in_another_browser_is_not_a_new_device() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    app.clock.advance(30);
    let trust = json!({"trustDevice": device_input("fp-events", "Laptop")});
    let trusted = app.login_with_code_and(&enrolled, trust).await;
    assert_eq!(trusted.status, 200, "{}", trusted.text);
    let device_token = trusted.body["deviceToken"].as_str().unwrap().to_owned();

    let login = |agent: &'static str| {
        app.send(
            app.client
                .post(app.url("/v1/auth/login"))
                .header("user-agent", agent)
                .json(&json!({
                    "email": enrolled.user.email,
                    "password": enrolled.user.password,
                    "deviceToken": device_token,
                    "deviceFingerprint": "fp-events",
                })),
        )
    };
    let other_browser =
        login("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0").await;
    assert_eq!(other_browser.status, 200, "{}", other_browser.text);
    let access = other_browser.body["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("the trusted device skips the code: {}", other_browser.text));
    let events = all_events(&app, access).await;
    assert!(
        !events.iter().any(|e| e["type"] == "new_device_sign_in"),
        "{events:?}"
    );
    assert!(
        types(&events)
            .iter()
            .filter(|t| **t == "login_succeeded")
            .count()
            >= 3,
        "{events:?}"
    );
}

/// An account unused for longer than `new_device_window_days`, its old devices pruned by
/// maintenance, still reports a sign-in from a new device: the pruning keeps its most
/// recent device, so the sign-in is not taken for the account's first.
#[tokio::test]
async fn a_long_unused_account_still_reports_a_new_device_after_pruning() {
    let app = TestApp::spawn().await;
    let user = app.signed_in_user().await;
    app.clock
        .advance((app.state.config.new_device_window_days + 1) * 86_400);
    tessera::service::maintenance::run_once(&app.state)
        .await
        .unwrap();
    let elsewhere = app
        .send(
            app.client
                .post(app.url("/v1/auth/login"))
                .header(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                )
                .json(&json!({"email": user.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
    let access = elsewhere.body["accessToken"].as_str().unwrap();
    let events = all_events(&app, access).await;
    assert!(
        events.iter().any(|e| e["type"] == "new_device_sign_in"),
        "{events:?}"
    );
}
