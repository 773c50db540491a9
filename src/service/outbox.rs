//! Security notifications through a transactional outbox. An event that a channel
//! (a webhook endpoint, or the email channel) subscribes to is written to the outbox in
//! the event's own transaction ([`enqueue`], called by [`super::events::Occasion::record`]), so a
//! rolled-back change sends nothing and a committed one is never forgotten. Which channels
//! take which events is configuration, held in memory ([`Subscriptions`]). The delivery
//! worker ([`run`]) claims due messages, sends them, and records each outcome: delivered,
//! retried later on the Standard Webhooks schedule, or dead after about a day.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::events::Occasion;
use crate::clock::rfc3339;
use crate::config::{Config, WebhookEndpoint};
use crate::db::{self, Conn};
use crate::domain::notice::{self, Facts};
use crate::domain::webhook::retry_delay;
use crate::error::AppError;
use crate::outbound::mail::Mailer;
use crate::outbound::webhook::{Signed, WebhookClient};
use crate::state::AppState;

/// Messages claimed at once by one worker.
const BATCH: i64 = 20;
/// Finished messages deleted per pruning transaction.
const PRUNE_BATCH: i64 = 500;

/// Wakes the delivery worker (a test that moved the clock, a command that replayed a
/// message) instead of waiting for its next poll.
#[derive(Debug, Default)]
pub struct Wake(Notify);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The webhook payload of an event: `{type, timestamp, data}`, with the account, the
/// event's details, and the request's address and user agent. Never a secret: details
/// never hold one (see [`super::events`]).
fn payload(on: Occasion<'_>, event_type: &str, details: &serde_json::Value) -> String {
    serde_json::json!({
        "type": event_type,
        "timestamp": rfc3339(on.now),
        "data": {
            "accountId": on.user_id,
            "ipAddress": on.ctx.map(|c| c.ip.as_str()),
            "userAgent": on.ctx.and_then(|c| c.user_agent.as_deref()),
            "details": details,
        },
    })
    .to_string()
}

tokio::task_local! {
    /// Set when the running use case wrote a message (see [`track`]).
    static WROTE: std::cell::Cell<bool>;
}

/// Runs `future`, telling whether it wrote to the outbox.
pub(super) async fn track<T>(future: impl std::future::Future<Output = T>) -> (T, bool) {
    WROTE
        .scope(std::cell::Cell::new(false), async move {
            let result = future.await;
            (result, WROTE.with(std::cell::Cell::get))
        })
        .await
}

/// One channel of this instance's configuration: a webhook endpoint, or the email channel
/// (when `smtp_url` is set).
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    /// `webhook` or `email`.
    pub kind: &'static str,
    /// The webhook's URL (empty for email).
    pub url: String,
    /// The event types it takes, as configured (`*`: all).
    pub events: Vec<String>,
}

/// The notification channels of the configuration, and which of them each event type is
/// sent on. Built once at start-up (into [`AppState`]): subscriptions are configuration,
/// so an event's transaction looks them up in memory, and an event no channel takes (every
/// event, by default) costs no statement at all.
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// Webhooks in the configuration's order, then email.
    channels: Vec<Channel>,
    /// Event type to the names of the channels that take it, sorted; types no channel
    /// takes are absent.
    by_event: HashMap<String, Vec<String>>,
}

impl Subscriptions {
    pub fn from_config(config: &Config) -> Self {
        let mut channels: Vec<Channel> = config
            .webhooks
            .iter()
            .map(|hook| Channel {
                name: hook.name.clone(),
                kind: "webhook",
                url: hook.url.clone(),
                events: hook.events.clone(),
            })
            .collect();
        if config.smtp_url.is_some() {
            channels.push(Channel {
                name: Config::EMAIL_CHANNEL.into(),
                kind: "email",
                url: String::new(),
                events: super::events::EMAILED
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            });
        }
        let mut by_event: HashMap<String, Vec<String>> = HashMap::new();
        for channel in &channels {
            for event_type in super::events::ALL {
                if channel.events.iter().any(|e| e == "*" || e == event_type) {
                    by_event
                        .entry((*event_type).to_owned())
                        .or_default()
                        .push(channel.name.clone());
                }
            }
        }
        for names in by_event.values_mut() {
            names.sort();
            names.dedup();
        }
        Self { channels, by_event }
    }

    /// The channels `event_type` is sent on (none, unless configured).
    pub fn channels_for(&self, event_type: &str) -> &[String] {
        self.by_event.get(event_type).map_or(&[], Vec::as_slice)
    }

    /// Every channel in force.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// The names of the channels in force: the messages this instance's worker delivers.
    fn names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name.clone()).collect()
    }
}

/// Writes one message per channel subscribed to `event_type`, in the caller's transaction;
/// nothing (and no statement) when no channel is.
pub(super) async fn enqueue(
    state: &AppState,
    conn: &mut Conn,
    on: Occasion<'_>,
    event_type: &str,
    details: &serde_json::Value,
) -> Result<(), AppError> {
    let channels = state.subscriptions.channels_for(event_type);
    if channels.is_empty() {
        return Ok(());
    }
    let _ = WROTE.try_with(|wrote| wrote.set(true));
    let body = payload(on, event_type, details);
    for channel in channels {
        db::outbox::insert(
            conn,
            &db::outbox::NewMessage {
                id: Uuid::new_v4(),
                channel,
                user_id: Some(on.user_id),
                event_type,
                payload: &body,
                created_at: on.now,
            },
        )
        .await?;
    }
    Ok(())
}

/// Each configured endpoint by name, with the keys of its secrets.
type Endpoints = HashMap<String, (WebhookEndpoint, Vec<Vec<u8>>)>;

/// What delivers messages: the HTTP client, the mailer, and the endpoints' secrets.
#[derive(Clone)]
pub struct Deliverer {
    state: AppState,
    http: WebhookClient,
    mailer: Option<Mailer>,
    endpoints: Arc<Endpoints>,
    /// The channels this instance can send on: it claims only their messages, and leaves
    /// another channel's to an instance configured with it.
    channels: Arc<[String]>,
}

/// The outcome of one attempt.
type Attempt = Result<(), Failure>;

/// Why an attempt failed. A permanent failure (the account is gone, the mail server
/// refused the address for good) is dead at once: retrying it for a day would only delay
/// the dead letter an operator needs to see, and knock on the mail server again and again.
#[derive(Debug)]
struct Failure {
    reason: String,
    permanent: bool,
}

impl Failure {
    fn permanent(reason: &str) -> Self {
        Self {
            reason: reason.to_owned(),
            permanent: true,
        }
    }
}

/// Anything else may pass (the receiver down, a timeout, the database busy): retried.
impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Self {
            reason,
            permanent: false,
        }
    }
}

impl From<crate::outbound::mail::MailError> for Failure {
    fn from(error: crate::outbound::mail::MailError) -> Self {
        Self {
            reason: error.reason,
            permanent: error.permanent,
        }
    }
}

impl Deliverer {
    pub fn new(state: &AppState) -> anyhow::Result<Self> {
        let config = &state.config;
        let timeout = Duration::from_secs(config.notification_timeout_secs);
        let http = WebhookClient::new(timeout, config.webhook_allow_private_targets)?;
        let mailer = match &config.smtp_url {
            Some(url) => Some(Mailer::new(
                secrecy::ExposeSecret::expose_secret(url),
                &config.smtp_from,
                timeout,
            )?),
            None => None,
        };
        let endpoints = config
            .webhooks
            .iter()
            .map(|hook| (hook.name.clone(), (hook.clone(), hook.keys())))
            .collect();
        Ok(Self {
            state: state.clone(),
            http,
            mailer,
            endpoints: Arc::new(endpoints),
            channels: state.subscriptions.names().into(),
        })
    }

    /// Sends one message on its channel.
    async fn attempt(&self, message: &db::outbox::MessageRow) -> Attempt {
        if message.channel == Config::EMAIL_CHANNEL {
            return self.email(message).await;
        }
        let Some((endpoint, keys)) = self.endpoints.get(&message.channel) else {
            return Err(
                String::from("no such webhook endpoint in this instance's configuration").into(),
            );
        };
        self.http
            .send(&Signed {
                url: &endpoint.url,
                keys,
                id: &format!("msg_{}", message.id.simple()),
                timestamp: self.state.now(),
                body: &message.payload,
            })
            .await
            .map(|_| ())
            .map_err(Failure::from)
    }

    async fn email(&self, message: &db::outbox::MessageRow) -> Attempt {
        let Some(mailer) = &self.mailer else {
            return Err(String::from("smtp_url is not set on this instance").into());
        };
        let Some(user_id) = message.user_id else {
            return Err(Failure::permanent("the message names no account"));
        };
        let to = {
            let mut conn = self.state.db.read().await.map_err(|e| e.to_string())?;
            db::users::find_by_id(&mut conn, user_id)
                .await
                .map_err(|e| e.to_string())?
                .map(|u| u.email)
        };
        let Some(to) = to else {
            return Err(Failure::permanent("the account no longer exists"));
        };
        let body: serde_json::Value = serde_json::from_str(&message.payload)
            .map_err(|_| Failure::permanent("the message's payload is not JSON"))?;
        let data = &body["data"];
        let Some(notice) = notice::notice(&Facts {
            issuer: &self.state.config.issuer,
            event_type: &message.event_type,
            when: body["timestamp"].as_str().unwrap_or_default(),
            ip_address: data["ipAddress"].as_str(),
            user_agent: data["userAgent"].as_str(),
            details: &data["details"],
        }) else {
            return Err(Failure::permanent(
                "no email is written for this event type",
            ));
        };
        Ok(mailer.send(&to, &notice).await?)
    }

    /// Claims the due messages, sends them, and records the outcomes; returns how many
    /// were attempted.
    pub async fn deliver_due(&self) -> Result<usize, AppError> {
        let state = &self.state;
        let now = state.now();
        let claim_id = Uuid::new_v4();
        if self.channels.is_empty() {
            return Ok(0);
        }
        // Long enough for every attempt of the batch to end (they run at once), so a
        // lease runs out only when its worker died.
        let lease = now + 2 * state.config.notification_timeout_secs as i64 + 60;
        // Look before taking the writer: most polls find nothing.
        let due = {
            let mut conn = state.db.read().await?;
            db::outbox::any_due(&mut conn, now, &self.channels).await?
        };
        if !due {
            return Ok(0);
        }
        let mut tx = state.db.begin().await?;
        let claimed =
            db::outbox::claim(&mut tx, now, lease, claim_id, BATCH, &self.channels).await?;
        tx.commit().await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        // No connection is held while the messages travel.
        let outcomes = join_all(claimed.iter().map(|m| self.attempt(m))).await;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        for (message, outcome) in claimed.iter().zip(&outcomes) {
            let kind = if message.channel == Config::EMAIL_CHANNEL {
                "email"
            } else {
                "webhook"
            };
            let result = match outcome {
                Ok(()) => {
                    db::outbox::mark_delivered(&mut tx, message.id, claim_id, now).await?;
                    "delivered"
                }
                Err(failure) => {
                    let error = &failure.reason;
                    let retry_at = if failure.permanent {
                        None
                    } else {
                        retry_delay(message.attempts).map(|d| now + d)
                    };
                    db::outbox::mark_failed(&mut tx, message.id, claim_id, now, retry_at, error)
                        .await?;
                    tracing::warn!(
                        message_id = %message.id,
                        channel = %message.channel,
                        attempts = message.attempts,
                        error = %error,
                        "notification not delivered"
                    );
                    if retry_at.is_some() { "failed" } else { "dead" }
                }
            };
            state.metrics.increment(
                "tessera_notification_deliveries_total",
                &[("channel", kind), ("outcome", result)],
            );
        }
        tx.commit().await?;
        Ok(claimed.len())
    }
}

/// The delivery worker: delivers due messages until `stop` says so; woken by
/// [`Wake::wake`] or every `outbox_poll_interval_ms`. A stop lets the attempts in flight
/// finish (each is bounded by `notification_timeout_secs`).
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let deliverer = match Deliverer::new(&state) {
        Ok(deliverer) => deliverer,
        Err(err) => {
            tracing::error!(error = %err, "notification delivery cannot start");
            return;
        }
    };
    let poll = Duration::from_millis(state.config.outbox_poll_interval_ms);
    loop {
        if *stop.borrow() {
            return;
        }
        let more = match deliverer.deliver_due().await {
            Ok(n) => n as i64 == BATCH,
            Err(err) => {
                tracing::warn!(error = %err, "notification delivery failed; will retry");
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = state.outbox.0.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Deletes finished messages past `outbox_retention_days`.
pub async fn prune(state: &AppState) -> Result<u64, AppError> {
    let cutoff = state.now() - state.config.outbox_retention_days * 86_400;
    let mut total = 0;
    loop {
        let mut tx = state.db.begin().await?;
        let deleted = db::outbox::prune(&mut tx, cutoff, PRUNE_BATCH).await?;
        tx.commit().await?;
        total += deleted;
        if deleted < PRUNE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// One message, as the operator commands show it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub channel: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
}

impl From<db::outbox::MessageRow> for Delivery {
    fn from(row: db::outbox::MessageRow) -> Self {
        Self {
            id: row.id,
            channel: row.channel,
            event_type: row.event_type,
            status: row.status,
            attempts: row.attempts,
            created_at: row.created_at,
            next_attempt_at: row.next_attempt_at,
            finished_at: row.finished_at,
            last_error: row.last_error,
        }
    }
}

/// A channel in force, with its messages counted by status.
#[derive(Debug, Clone)]
pub struct ChannelSummary {
    pub channel: Channel,
    pub counts: Vec<(String, i64)>,
}

pub async fn channels(state: &AppState) -> Result<Vec<ChannelSummary>, AppError> {
    let mut conn = state.db.read().await?;
    let counts = db::outbox::counts(&mut conn).await?;
    Ok(state
        .subscriptions
        .channels()
        .iter()
        .map(|channel| ChannelSummary {
            channel: channel.clone(),
            counts: counts
                .iter()
                .filter(|(name, _, _)| *name == channel.name)
                .map(|(_, status, n)| (status.clone(), *n))
                .collect(),
        })
        .collect())
}

pub async fn deliveries(
    state: &AppState,
    channel: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, AppError> {
    let mut conn = state.db.read().await?;
    let rows = db::outbox::recent(&mut conn, channel, limit.clamp(1, 1000)).await?;
    Ok(rows.into_iter().map(Delivery::from).collect())
}

/// Makes a message due now with a fresh count of attempts. `None`: no such message;
/// `Some(false)`: a worker is sending it right now.
pub async fn replay(state: &AppState, id: Uuid) -> Result<Option<bool>, AppError> {
    let mut tx = state.db.begin().await?;
    let replayed = replay_in(&mut tx, id, state.now()).await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(replayed)
}

/// [`replay`] inside the caller's transaction (which records it in the same commit); the
/// caller wakes the worker after committing.
pub(super) async fn replay_in(tx: &mut Conn, id: Uuid, now: i64) -> Result<Option<bool>, AppError> {
    if db::outbox::find(tx, id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(db::outbox::replay(tx, id, now).await?))
}

/// Sends a signed `test` message to an endpoint now, outside the outbox; the answer's
/// status, or what went wrong.
pub async fn send_test(state: &AppState, endpoint: &str) -> Result<Result<u16, String>, AppError> {
    let deliverer = Deliverer::new(state).map_err(|e| AppError::Internal(e.to_string()))?;
    let Some((hook, keys)) = deliverer.endpoints.get(endpoint) else {
        return Err(AppError::NotFound);
    };
    let now = state.now();
    let body = serde_json::json!({
        "type": "test",
        "timestamp": rfc3339(now),
        "data": {"endpoint": endpoint},
    })
    .to_string();
    Ok(deliverer
        .http
        .send(&Signed {
            url: &hook.url,
            keys,
            id: &format!("msg_{}", Uuid::new_v4().simple()),
            timestamp: now,
            body: &body,
        })
        .await)
}

/// Pending messages and the age of the oldest, for the metrics.
pub async fn queue(state: &AppState) -> Result<(i64, i64), AppError> {
    let mut conn = state.db.read().await?;
    let (pending, oldest) = db::outbox::pending_stats(&mut conn).await?;
    Ok((
        pending,
        oldest.map(|t| (state.now() - t).max(0)).unwrap_or(0),
    ))
}
