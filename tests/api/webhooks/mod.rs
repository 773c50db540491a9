//! Security notifications: signed webhooks to a real receiver, delivered at least once
//! through the transactional outbox, retried on the moved clock, refused toward private
//! addresses; new-device sign-ins; emails to a real SMTP server.

mod process;
mod support;

use serde_json::json;
use tessera::domain::webhook::RETRY_DELAYS;
use tessera::service::{RequestContext, events, outbox};

use crate::helpers::{PASSWORD, TestApp};
use support::{
    NEXT_SECRET, REFUSED_MAILBOX, Receiver, SECRET, SmtpSink, assert_signed, endpoint, with_webhook,
};

#[tokio::test]
async fn a_subscribed_event_arrives_signed_with_every_secret_and_no_secret_in_it() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| {
        with_webhook(c, &url, &["two_factor_enabled"]);
        c.webhooks = vec![endpoint(
            &url,
            &[SECRET, NEXT_SECRET],
            &["two_factor_enabled"],
        )];
    })
    .await;
    let enrolled = app.enrolled_user().await;

    let got = receiver.wait_for_accepted(Some(&app), 1).await;
    let message = &got[0];
    assert_signed(message, &[SECRET, NEXT_SECRET]);
    // The clock is today's: the crate's own verification (timestamp tolerance included)
    // passes too.
    standardwebhooks::Webhook::new(NEXT_SECRET)
        .unwrap()
        .verify(message.raw.as_bytes(), &message.headers)
        .expect("standardwebhooks verifies the message");
    assert!((message.timestamp - app.now()).abs() <= 60);
    assert_eq!(message.body["type"], "two_factor_enabled");
    assert!(message.body["timestamp"].is_string());
    let data = &message.body["data"];
    assert_eq!(data["accountId"], enrolled.user.id.as_str());
    assert_eq!(data["ipAddress"], "127.0.0.1");
    assert!(data["details"].is_object(), "{}", message.raw);
    for secret in [
        enrolled.secret.as_str(),
        PASSWORD,
        &enrolled.user.access_token,
    ] {
        assert!(!message.raw.contains(secret), "a secret in {}", message.raw);
    }
    for code in &enrolled.backup_codes {
        assert!(!message.raw.contains(code.as_str()));
    }

    // Events nobody subscribed to (sign-ups, logins) wrote no message.
    let deliveries = outbox::deliveries(&app.state, None, 100).await.unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].status, "delivered");
    assert_eq!(receiver.all().len(), 1);
}

/// Three failed logins while the receiver answers 503: each is tried once and scheduled
/// 5 s later; nothing more happens until the clock gets there; then every message arrives
/// once.
#[tokio::test]
async fn receiver_down_then_up_gets_every_message_once() {
    let receiver = Receiver::start(false).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| {
        with_webhook(c, &url, &["login_failed"]);
        c.metrics_listen = Some("127.0.0.1:0".into());
    })
    .await;
    let user = app.signed_in_user().await;
    for _ in 0..3 {
        let wrong = app.login(&user.email, "not the password at all").await;
        assert_eq!(wrong.status, 401);
    }
    let first = receiver.wait_for_requests(Some(&app), 3).await;
    assert!(first.iter().all(|r| r.status == 503));
    // The worker records the outcomes after the answers came.
    for _ in 0..100 {
        let tried = outbox::deliveries(&app.state, None, 10).await.unwrap();
        if tried.iter().filter(|d| d.last_error.is_some()).count() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let metrics = app.scrape_metrics().await.text;
    assert!(
        metrics.contains(
            "tessera_notification_deliveries_total{channel=\"webhook\",outcome=\"failed\"} 3"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tessera_outbox_pending 3"), "{metrics}");

    // Up again, but the retry is not due: waking the worker sends nothing.
    receiver.answer(200);
    for _ in 0..5 {
        app.state.outbox.wake();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        receiver.all().len(),
        3,
        "nothing sent before the retry is due"
    );
    let pending = outbox::deliveries(&app.state, None, 10).await.unwrap();
    assert!(
        pending.iter().all(|d| d.status == "pending"
            && d.attempts == 1
            && d.next_attempt_at == app.now() + 5),
        "{pending:?}"
    );

    app.clock.advance(RETRY_DELAYS[0]);
    let accepted = receiver.wait_for_accepted(Some(&app), 3).await;
    let mut ids: Vec<&str> = accepted.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct messages");
    // A retry carries the same id as the failed attempt.
    let mut first_ids: Vec<&str> = first.iter().map(|r| r.id.as_str()).collect();
    first_ids.sort();
    assert_eq!(ids, first_ids);
    for message in &accepted {
        assert_signed(message, &[SECRET]);
    }

    // Much later, nothing is sent twice.
    app.clock.advance(86_400);
    for _ in 0..5 {
        app.state.outbox.wake();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.accepted().len(), 3);
    let metrics = app.scrape_metrics().await.text;
    assert!(metrics.contains("tessera_outbox_pending 0"), "{metrics}");
    assert!(
        metrics.contains(
            "tessera_notification_deliveries_total{channel=\"webhook\",outcome=\"delivered\"} 3"
        ),
        "{metrics}"
    );
}

/// A receiver that always fails gets the attempts of the schedule (about a day on the
/// moved clock), then none: the message is dead.
#[tokio::test]
async fn a_message_is_dead_after_the_schedule_runs_out() {
    let receiver = Receiver::start(false).await;
    receiver.answer(500);
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| with_webhook(c, &url, &["password_changed"])).await;
    let user = app.signed_in_user().await;
    change_password(&app, &user.access_token).await;
    receiver.wait_for_requests(Some(&app), 1).await;
    for (i, delay) in RETRY_DELAYS.iter().enumerate() {
        // One second short: not yet.
        app.clock.advance(delay - 1);
        app.state.outbox.wake();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert_eq!(receiver.all().len(), i + 1, "attempt {} came early", i + 2);
        app.clock.advance(1);
        receiver.wait_for_requests(Some(&app), i + 2).await;
    }
    let total: i64 = RETRY_DELAYS.iter().sum();
    assert!(total > 24 * 3600, "about a day");
    let dead = outbox::deliveries(&app.state, None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].status, "dead", "{dead:?}");
    assert_eq!(dead[0].attempts, RETRY_DELAYS.len() as i64 + 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 500"));
    app.clock.advance(7 * 86_400);
    app.state.outbox.wake();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        receiver.all().len(),
        RETRY_DELAYS.len() + 1,
        "none after death"
    );
    let all = receiver.all();
    assert!(all.iter().all(|r| r.id == all[0].id), "one message retried");
}

/// The event and its message are written by one transaction: rolled back, neither exists
/// and nothing is sent; committed, it arrives.
#[tokio::test]
async fn a_rolled_back_change_sends_nothing() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| with_webhook(c, &url, &["*"])).await;
    let user = app.signed_in_user().await;
    let user_id: uuid::Uuid = user.id.parse().unwrap();
    // Sign-up and login events (subscribed through `*`) arrive first.
    let before = receiver.wait_for_accepted(Some(&app), 1).await.len();
    let ctx = RequestContext {
        ip: "192.0.2.10".into(),
        user_agent: Some("rollback-test".into()),
    };
    let record = |marker: &'static str| {
        let state = app.state.clone();
        let ctx = ctx.clone();
        async move {
            let mut tx = state.db.begin().await.unwrap();
            events::Occasion::new(user_id, state.now(), Some(&ctx))
                .record(
                    &state,
                    &mut tx,
                    events::PASSWORD_CHANGED,
                    json!({"marker": marker}),
                )
                .await
                .unwrap();
            tx
        }
    };
    let rolled_back = record("rolled-back").await;
    drop(rolled_back);
    record("committed").await.commit().await.unwrap();

    let got = receiver.wait_for_accepted(Some(&app), before + 1).await;
    for _ in 0..5 {
        app.state.outbox.wake();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let got_now = receiver.all();
    assert_eq!(got_now.len(), got.len(), "nothing more arrived");
    let markers: Vec<&str> = got_now
        .iter()
        .filter_map(|r| r.body["data"]["details"]["marker"].as_str())
        .collect();
    assert_eq!(markers, ["committed"]);
}

#[tokio::test]
async fn private_and_loopback_targets_are_refused_unless_allowed() {
    let receiver = Receiver::start(true).await;
    let port = receiver.url.split(':').nth(2).unwrap().to_owned();
    let by_name = format!("http://localhost:{port}");
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| {
        with_webhook(c, &url, &["login_failed"]);
        c.webhook_allow_private_targets = false;
        let mut named = endpoint(&by_name, &[SECRET], &["login_failed"]);
        named.name = "by-name".into();
        c.webhooks.push(named);
    })
    .await;
    let user = app.signed_in_user().await;
    assert_eq!(
        app.login(&user.email, "wrong password here").await.status,
        401
    );
    let mut tried = Vec::new();
    for _ in 0..100 {
        app.state.outbox.wake();
        tried = outbox::deliveries(&app.state, None, 10).await.unwrap();
        if tried.len() == 2
            && tried
                .iter()
                .all(|d| d.attempts == 1 && d.last_error.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(tried.len(), 2, "{tried:?}");
    for d in &tried {
        let error = d.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("not a public address") || error.contains("no public address"),
            "{d:?}"
        );
    }
    assert!(
        receiver.all().is_empty(),
        "the loopback receiver got nothing"
    );
}

/// The first sign-in is not news; the same device again is not; another browser is, and
/// so is the first device after the window.
#[tokio::test]
async fn a_sign_in_from_a_new_device_is_an_event_and_a_webhook() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| with_webhook(c, &url, &["new_device_sign_in"])).await;
    let user = app.signed_in_user().await;
    let login_as = |agent: &'static str| {
        let request = app
            .client
            .post(app.url("/v1/auth/login"))
            .header("user-agent", agent)
            .json(&json!({"email": user.email, "password": PASSWORD}));
        app.send(request)
    };
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const FIREFOX_NEXT: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0";
    // Counted with a token from the latest sign-in (the clock moves past expiries).
    let count = |access: String| {
        let app = &app;
        async move {
            let page = app
                .get("/v1/auth/security-events?limit=100", Some(&access))
                .await;
            assert_eq!(page.status, 200, "{}", page.text);
            page.body
                .as_array()
                .expect("an array")
                .iter()
                .filter(|e| e["type"] == "new_device_sign_in")
                .count()
        }
    };
    let token =
        |r: &crate::helpers::TestResponse| r.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        count(user.access_token.clone()).await,
        0,
        "the account's first device is not news"
    );
    let signed_in = login_as(FIREFOX).await;
    assert_eq!(count(token(&signed_in)).await, 1, "another browser is");
    let signed_in = login_as(FIREFOX_NEXT).await;
    assert_eq!(
        count(token(&signed_in)).await,
        1,
        "a browser update is the same device"
    );
    app.clock.advance(91 * 86_400);
    let signed_in = login_as(FIREFOX).await;
    assert_eq!(
        count(token(&signed_in)).await,
        2,
        "unseen for longer than the window"
    );

    let got = receiver.wait_for_accepted(Some(&app), 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body["type"], "new_device_sign_in");
    assert_eq!(got[0].body["data"]["details"]["device"], "Firefox on Linux");
    assert_eq!(got[0].body["data"]["userAgent"], FIREFOX);
}

/// A mailbox the mail server refuses for good (550) makes the email dead after its first
/// attempt, with the server's answer as the error: no day of retries against a refusal
/// that cannot change. Another account's email still goes out.
#[tokio::test]
async fn an_email_refused_for_good_is_dead_at_once() {
    let sink = SmtpSink::start().await;
    let app = app_emailing_to(&sink).await;
    let refused = app
        .signed_in_user_with_email(&format!("{REFUSED_MAILBOX}@example.com"))
        .await;
    change_password(&app, &refused.access_token).await;
    let mut dead = Vec::new();
    for _ in 0..100 {
        app.state.outbox.wake();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        dead = outbox::deliveries(&app.state, None, 10).await.unwrap();
        if dead.iter().any(|d| d.status != "pending") {
            break;
        }
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].status, "dead", "{dead:?}");
    assert_eq!(dead[0].attempts, 1, "{dead:?}");
    let error = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(error.contains("550"), "{error}");

    // Not a broken mail server: another account's email is delivered.
    let other = app.signed_in_user().await;
    change_password(&app, &other.access_token).await;
    let mails = sink.wait_for(&app, 1).await;
    assert_eq!(mails[0].to, [format!("<{}>", other.email)]);
}

/// Emails reach a real SMTP server: plain text and HTML, to the account's address.
#[tokio::test]
async fn emails_reach_an_smtp_server() {
    let sink = SmtpSink::start().await;
    let smtp = sink.url.clone();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(secrecy::SecretString::from(smtp));
        c.smtp_from = "Tessera <security@example.com>".into();
        c.outbox_poll_interval_ms = 100;
    })
    .await;
    let user = app.signed_in_user().await;
    change_password(&app, &user.access_token).await;
    let mails = sink.wait_for(&app, 1).await;
    assert_eq!(
        mails.len(),
        1,
        "only the password change is emailed: {mails:?}"
    );
    let mail = &mails[0];
    assert_eq!(mail.to, [format!("<{}>", user.email)]);
    assert_eq!(mail.from, "<security@example.com>");
    assert!(
        mail.data.contains("Subject: Tessera: password changed"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("text/plain"), "{}", mail.data);
    assert!(mail.data.contains("text/html"), "{}", mail.data);
    assert!(!mail.data.contains(PASSWORD));

    // Another browser signs in: the owner is told.
    let other = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
        .json(&json!({"email": user.email, "password": "another long passphrase"}));
    assert_eq!(app.send(other).await.status, 200);
    let mails = sink.wait_for(&app, 2).await;
    assert!(
        mails[1]
            .data
            .contains("Subject: Tessera: sign-in from a new device"),
        "{}",
        mails[1].data
    );
    assert!(
        mails[1].data.contains("Chrome on Windows"),
        "{}",
        mails[1].data
    );

    // 2FA on, then off: the email says so.
    let enrolled = app
        .enable_two_factor(&user_with_token(&app, &user.email).await)
        .await;
    let code = crate::helpers::totp_code(&enrolled.secret, app.now());
    let off = app
        .post(
            "/v1/auth/2fa/disable",
            json!({"password": "another long passphrase", "code": code}),
            Some(&enrolled.user.access_token),
        )
        .await;
    assert!(off.status.is_success(), "{}", off.text);
    let mails = sink.wait_for(&app, 3).await;
    assert!(
        mails[2]
            .data
            .contains("two-factor authentication turned off"),
        "{}",
        mails[2].data
    );
}

/// Waits until every message has a recorded outcome of its first attempt.
async fn attempted(app: &TestApp, count: usize) -> Vec<outbox::Delivery> {
    for _ in 0..100 {
        app.state.outbox.wake();
        let tried = outbox::deliveries(&app.state, None, 100).await.unwrap();
        if tried.len() == count
            && tried
                .iter()
                .all(|d| d.status != "pending" || d.last_error.is_some())
        {
            return tried;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{count} message(s) not attempted: {:?}",
        outbox::deliveries(&app.state, None, 100).await
    );
}

/// A redirect is a failed attempt, not followed; an answer slower than
/// `notification_timeout_secs` is one too.
#[tokio::test]
async fn redirects_are_not_followed_and_slow_answers_time_out() {
    let receiver = Receiver::start(true).await;
    receiver.answer(307);
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| {
        with_webhook(c, &url, &["password_changed"]);
        c.notification_timeout_secs = 1;
    })
    .await;
    let user = app.signed_in_user().await;
    let change = |from: &'static str, to: &'static str| {
        app.post(
            "/v1/auth/password",
            json!({"currentPassword": from, "newPassword": to}),
            Some(&user.access_token),
        )
    };
    assert_eq!(
        change(PASSWORD, "another long passphrase").await.status,
        204
    );
    let tried = attempted(&app, 1).await;
    assert_eq!(
        tried[0].last_error.as_deref(),
        Some("HTTP 307"),
        "{tried:?}"
    );
    assert_eq!(receiver.all().len(), 1, "the redirect was not followed");

    receiver.answer(0);
    assert_eq!(
        change("another long passphrase", "yet another passphrase")
            .await
            .status,
        204
    );
    let tried = attempted(&app, 2).await;
    let slow = tried
        .iter()
        .find(|d| d.last_error.as_deref() != Some("HTTP 307"))
        .unwrap();
    assert!(
        slow.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{tried:?}"
    );
}

/// A worker that claimed a message and died (its claim made here, in the test, and never
/// finished) holds it until its lease runs out on the clock; then another claim sends it.
#[tokio::test]
async fn a_message_claimed_by_a_dead_worker_is_sent_once_its_lease_runs_out() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| {
        with_webhook(c, &url, &["password_changed"]);
        // The worker only looks when woken.
        c.outbox_poll_interval_ms = 3_600_000;
    })
    .await;
    let user = app.signed_in_user().await;
    // The worker's first look happened at start; the message below waits to be woken for.
    let mut tx = app.state.db.begin().await.unwrap();
    let user_id: uuid::Uuid = user.id.parse().unwrap();
    events::Occasion::new(user_id, app.now(), None)
        .record(&app.state, &mut tx, events::PASSWORD_CHANGED, json!({}))
        .await
        .unwrap();
    let now = app.now();
    let channels = [support::CHANNEL.to_owned()];
    let claimed =
        tessera::db::outbox::claim(&mut tx, now, now + 80, uuid::Uuid::new_v4(), 10, &channels)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed.len(), 1, "the dead worker's claim");

    for _ in 0..5 {
        app.state.outbox.wake();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(receiver.all().is_empty(), "held by the lease");
    app.clock.advance(80);
    let got = receiver.wait_for_accepted(Some(&app), 1).await;
    assert_eq!(got.len(), 1);
    let done = outbox::deliveries(&app.state, None, 10).await.unwrap();
    assert_eq!(done[0].status, "delivered");
    assert_eq!(done[0].attempts, 2, "the dead worker's attempt counts");
}

/// A worker claims only the messages of the channels its instance is configured with: a
/// message for a channel it does not have (another instance's endpoint, or one removed
/// from this configuration) stays pending, unattempted, for an instance that has it,
/// however long the clock runs, while its own channel's messages are delivered.
#[tokio::test]
async fn a_channel_this_instance_does_not_have_is_left_pending_for_another() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| with_webhook(c, &url, &["password_changed"])).await;
    let user = app.signed_in_user().await;
    let user_id: uuid::Uuid = user.id.parse().unwrap();
    let elsewhere = "another-instances-endpoint";
    let mut tx = app.state.db.begin().await.unwrap();
    tessera::db::outbox::insert(
        &mut tx,
        &tessera::db::outbox::NewMessage {
            id: uuid::Uuid::new_v4(),
            channel: elsewhere,
            user_id: Some(user_id),
            event_type: events::PASSWORD_CHANGED,
            payload: "{}",
            created_at: app.now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    change_password(&app, &user.access_token).await;
    let got = receiver.wait_for_accepted(Some(&app), 1).await;
    assert_eq!(got.len(), 1, "this instance's own channel is delivered");
    // Past the whole retry schedule: a worker that took the message would have tried it,
    // failed (no such endpoint here) and, in the end, given it up as dead.
    for delay in RETRY_DELAYS {
        app.clock.advance(delay);
        app.state.outbox.wake();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let left = outbox::deliveries(&app.state, Some(elsewhere), 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].status, "pending", "{left:?}");
    assert_eq!(left[0].attempts, 0, "never claimed: {left:?}");
    assert_eq!(left[0].last_error, None, "{left:?}");
}

/// The worker stops with the server: a message that falls due after the stop waits for
/// the next start, and is delivered then.
#[tokio::test]
async fn the_worker_stops_with_the_server_and_the_next_start_delivers() {
    let receiver = Receiver::start(false).await;
    let url = receiver.url.clone();
    let mut app = TestApp::spawn_with(|c| with_webhook(c, &url, &["password_changed"])).await;
    let user = app.signed_in_user().await;
    change_password(&app, &user.access_token).await;
    attempted(&app, 1).await;
    app.stop().await;
    receiver.answer(200);
    app.clock.advance(RETRY_DELAYS[0]);
    app.state.outbox.wake();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.accepted().len(), 0, "no worker after the stop");

    let app = app.restart().await;
    let got = receiver.wait_for_accepted(Some(&app), 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["type"], "password_changed");
}

/// A fresh sign-in for `email` with the changed password.
async fn user_with_token(app: &TestApp, email: &str) -> crate::helpers::TestUser {
    let login = app.login(email, "another long passphrase").await;
    assert_eq!(login.status, 200, "{}", login.text);
    crate::helpers::TestUser {
        id: String::new(),
        email: email.to_owned(),
        password: "another long passphrase".into(),
        access_token: login.body["accessToken"].as_str().unwrap().to_owned(),
        refresh_token: login.body["refreshToken"].as_str().unwrap().to_owned(),
    }
}

/// Webhook endpoints in the configuration file are checked at start-up: a mistake stops
/// the program with the endpoint and the reason named.
#[test]
fn webhook_settings_are_checked_when_read() {
    use tessera::config::Config;
    let dir = tempfile::tempdir().unwrap();
    let load = |table: &str| {
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, format!("[[webhooks]]\n{table}")).unwrap();
        Config::load_from(Some(&path), Vec::<(String, String)>::new()).map_err(|e| format!("{e:#}"))
    };
    let good = format!(
        "name = \"siem\"\nurl = \"https://siem.example.com/hook\"\nsecrets = [\"{SECRET}\", \"{NEXT_SECRET}\"]\nevents = [\"new_device_sign_in\", \"password_changed\"]\n"
    );
    let config = load(&good).expect("a good endpoint");
    assert_eq!(config.webhooks[0].keys().len(), 2);
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(&SECRET[6..]),
        "secrets are not shown: {debug}"
    );

    for (wrong, said) in [
        (
            good.replace("password_changed", "pasword_changed"),
            "unknown event type",
        ),
        (good.replace(SECRET, "not-a-secret"), "whsec_"),
        (good.replace(SECRET, "whsec_c2hvcnQ="), "24 to 64 bytes"),
        (
            good.replace("https://siem.example.com/hook", "ftp://siem.example.com/"),
            "http",
        ),
        (
            good.replace(
                "https://siem.example.com/hook",
                "https://u:p@siem.example.com/",
            ),
            "credentials",
        ),
        (good.replace("\"siem\"", "\"email\""), "email channel"),
        (good.replace("secrets = [", "secret = ["), "unknown field"),
        (format!("{good}\n[[webhooks]]\n{good}"), "unique"),
    ] {
        let err = load(&wrong).expect_err(&wrong);
        assert!(err.contains(said), "{wrong}: {err}");
    }

    // A password is not sent over SMTP without TLS.
    let smtp = |url: &str| {
        Config::load_from(None, vec![("TESSERA_SMTP_URL".to_owned(), url.to_owned())])
            .map_err(|e| format!("{e:#}"))
    };
    let err = smtp("smtp://user:pass@mail.example.com:587").expect_err("plain with a password");
    assert!(err.contains("must use TLS"), "{err}");
    assert!(
        !err.contains("pass@"),
        "the password is not repeated: {err}"
    );
    smtp("smtp://user:pass@mail.example.com:587?tls=required").expect("STARTTLS");
    smtp("smtps://user:pass@mail.example.com").expect("TLS");
    smtp("smtp://127.0.0.1:25").expect("a local relay without credentials");
    assert!(smtp("http://mail.example.com").is_err());
}

/// A backup code used and a second-factor lock are emailed too; the owner learns how
/// many backup codes remain.
#[tokio::test]
async fn backup_codes_and_lockouts_are_emailed() {
    use crate::helpers::{verify_code, wrong_code};
    let sink = SmtpSink::start().await;
    let app = app_emailing_to(&sink).await;
    let enrolled = app.enrolled_user().await;
    let token = app.two_factor_token(&enrolled.user.email, PASSWORD).await;
    let used = verify_code(&app, &token, &enrolled.backup_codes[0]).await;
    assert_eq!(used.status, 200, "{}", used.text);
    let mails = sink.wait_for(&app, 1).await;
    assert!(
        mails[0]
            .data
            .contains("Subject: Tessera: a backup code was used"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains("9 remain"), "{}", mails[0].data);
    assert!(!mails[0].data.contains(&enrolled.backup_codes[0]));

    let token = app.two_factor_token(&enrolled.user.email, PASSWORD).await;
    let wrong = wrong_code(&enrolled.secret, app.now());
    for _ in 0..5 {
        assert_eq!(verify_code(&app, &token, &wrong).await.status, 401);
    }
    let mails = sink.wait_for(&app, 2).await;
    assert_eq!(
        mails.len(),
        2,
        "one email for the lock, none per wrong code"
    );
    assert!(
        mails[1]
            .data
            .contains("Subject: Tessera: sign-in locked after failed codes"),
        "{}",
        mails[1].data
    );
}

/// A change that wrote a message wakes the worker when it commits: the message leaves at
/// once, not at the next poll (an hour away here), and nobody else wakes the worker.
#[tokio::test]
async fn a_committed_change_wakes_the_worker() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| {
        with_webhook(c, &url, &["password_changed"]);
        c.outbox_poll_interval_ms = 3_600_000;
    })
    .await;
    let user = app.signed_in_user().await;
    change_password(&app, &user.access_token).await;
    let got = receiver.wait_for_accepted(None, 1).await;
    assert_eq!(got[0].body["type"], "password_changed");
}

/// The admin API shows the channels and their messages, replays a failed message (which
/// then arrives once) and sends a signed test message; only an `admin` key may, and each
/// change is in the audit log.
#[tokio::test]
async fn the_admin_api_shows_replays_and_tests_notifications() {
    let receiver = Receiver::start(false).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| with_webhook(c, &url, &["password_changed"])).await;
    let writer = app.admin_key("writer", &["users:write"]).await;
    let root = app.admin_key("root", &["admin"]).await;
    let user = app.signed_in_user().await;
    change_password(&app, &user.access_token).await;
    receiver.wait_for_requests(Some(&app), 1).await;
    // The worker records the failure after the answer came.
    let mut failed = Vec::new();
    for _ in 0..100 {
        failed = outbox::deliveries(&app.state, None, 10).await.unwrap();
        if failed.iter().any(|d| d.last_error.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = failed[0].id;

    app.get("/admin/v1/notifications/channels", Some(&writer))
        .await
        .assert_problem(403, "insufficient_scope");
    let channels = app
        .get("/admin/v1/notifications/channels", Some(&root))
        .await;
    assert_eq!(channels.status, 200, "{}", channels.text);
    assert_eq!(channels.body[0]["name"], "hooks");
    assert_eq!(channels.body[0]["kind"], "webhook");
    assert_eq!(
        channels.body[0]["messages"]["pending"], 1,
        "{}",
        channels.text
    );
    let listed = app
        .get(
            "/admin/v1/notifications/deliveries?channel=hooks",
            Some(&root),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body[0]["id"], id.to_string());
    assert_eq!(listed.body[0]["eventType"], "password_changed");
    assert_eq!(listed.body[0]["lastError"], "HTTP 503");
    app.get("/admin/v1/notifications/deliveries?limit=0", Some(&root))
        .await
        .assert_problem(400, "validation_failed");

    // Up again: the replay is due at once, long before its retry.
    receiver.answer(204);
    let replay = format!("/admin/v1/notifications/deliveries/{id}/replay");
    app.post(&replay, json!({}), Some(&writer))
        .await
        .assert_problem(403, "insufficient_scope");
    let replayed = app.post(&replay, json!({}), Some(&root)).await;
    assert_eq!(replayed.status, 200, "{}", replayed.text);
    assert_eq!(replayed.body["replayed"], true);
    let got = receiver.wait_for_accepted(Some(&app), 1).await;
    assert_eq!(got[0].id, receiver.all()[0].id, "the same message");
    app.post(
        &format!(
            "/admin/v1/notifications/deliveries/{}/replay",
            uuid::Uuid::new_v4()
        ),
        json!({}),
        Some(&root),
    )
    .await
    .assert_problem(404, "not_found");

    let tested = app
        .post(
            "/admin/v1/notifications/channels/hooks/test",
            json!({}),
            Some(&root),
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert_eq!(tested.body["delivered"], true, "{}", tested.text);
    assert_eq!(tested.body["status"], 204);
    let test_message = receiver.all().into_iter().last().unwrap();
    assert_eq!(test_message.body["type"], "test");
    assert_signed(&test_message, &[SECRET]);
    app.post(
        "/admin/v1/notifications/channels/nope/test",
        json!({}),
        Some(&root),
    )
    .await
    .assert_problem(404, "not_found");

    let audit = app.get("/admin/v1/audit", Some(&root)).await;
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"notification_replayed") && actions.contains(&"webhook_tested"),
        "{}",
        audit.text
    );
}

/// Deleting an account deletes the notifications about it, sent or not: a message still
/// waiting for its receiver is never sent, and none is left to replay.
#[tokio::test]
async fn a_deleted_accounts_notifications_go_with_it() {
    let receiver = Receiver::start(false).await;
    let url = receiver.url.clone();
    let app = TestApp::spawn_with(|c| with_webhook(c, &url, &["password_changed"])).await;
    let root = app.admin_key("root", &["admin"]).await;
    let gone = app.signed_in_user().await;
    let kept = app.signed_in_user().await;
    change_password(&app, &gone.access_token).await;
    change_password(&app, &kept.access_token).await;
    receiver.wait_for_requests(Some(&app), 2).await;
    let before = outbox::deliveries(&app.state, None, 10).await.unwrap();
    assert_eq!(before.len(), 2, "{before:?}");

    let deleted = app
        .send(
            app.client
                .delete(app.url(&format!("/admin/v1/users/{}", gone.id)))
                .bearer_auth(&root),
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let after = outbox::deliveries(&app.state, None, 10).await.unwrap();
    assert_eq!(
        after.len(),
        1,
        "only the other account's message: {after:?}"
    );
    let gone_message = before.iter().find(|d| after.iter().all(|a| a.id != d.id));
    let replay = format!(
        "/admin/v1/notifications/deliveries/{}/replay",
        gone_message.unwrap().id
    );
    app.post(&replay, json!({}), Some(&root))
        .await
        .assert_problem(404, "not_found");

    // Up again: the other account's message arrives, and nothing about the deleted one.
    receiver.answer(200);
    app.clock.advance(RETRY_DELAYS[0] + 1);
    let accepted = receiver.wait_for_accepted(Some(&app), 1).await;
    assert_eq!(accepted.len(), 1);
    assert!(!accepted[0].raw.contains(&gone.id), "{}", accepted[0].raw);
    assert!(accepted[0].raw.contains(&kept.id), "{}", accepted[0].raw);
}

/// Changes the password of the account behind `access_token` (an event every channel in
/// these tests takes).
async fn change_password(app: &TestApp, access_token: &str) {
    let changed = app
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "another long passphrase"}),
            Some(access_token),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
}

/// A server that emails through `sink`, polling its outbox often.
async fn app_emailing_to(sink: &SmtpSink) -> TestApp {
    let smtp = sink.url.clone();
    TestApp::spawn_with(|c| {
        c.smtp_url = Some(secrecy::SecretString::from(smtp));
        c.outbox_poll_interval_ms = 100;
    })
    .await
}
