//! `/admin/v1/notifications`: the security notifications' channels and messages, as
//! `tessera admin webhooks list | deliveries | replay | test` show them. The channels
//! themselves are configured (`[[webhooks]]`, `smtp_url`), so every instance agrees on them.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AdminKey;
use crate::clock::rfc3339;
use crate::error::AppError;
use crate::http::body::NoFields;
use crate::http::extract::{Body, OptionalBody, path_id};
use crate::http::problem::Problem;
use crate::http::responses::{AdminErrors, BodyErrors, Unavailable};
use crate::service::admin_api::{self, Replay};
use crate::service::outbox;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(channels))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
        .routes(routes!(test_webhook))
}

/// A channel messages go out on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Channel {
    /// The webhook endpoint's name, or `email`.
    name: String,
    /// `webhook` or `email`.
    kind: String,
    /// The webhook's URL (empty for email).
    url: String,
    /// The event types it takes (`*`: all).
    events: Vec<String>,
    /// Its messages by status (`pending`, `delivered`, `dead`).
    #[schema(example = json!({"delivered": 12, "pending": 1}))]
    messages: std::collections::BTreeMap<String, i64>,
}

impl From<outbox::ChannelSummary> for Channel {
    fn from(c: outbox::ChannelSummary) -> Self {
        Self {
            name: c.channel.name,
            kind: c.channel.kind.into(),
            url: c.channel.url,
            events: c.channel.events,
            messages: c.counts.into_iter().collect(),
        }
    }
}

/// The channels in force, with their messages counted by status.
#[utoipa::path(
    get,
    path = "/admin/v1/notifications/channels",
    operation_id = "admin_notification_channels",
    tag = "admin",
    security(("adminApiKey" = [])),
    responses(
        (status = 200, description = "The channels (scope `admin`).", body = Vec<Channel>),
        AdminErrors,
        Unavailable,
    )
)]
async fn channels(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
) -> Result<Json<Vec<Channel>>, AppError> {
    let channels = admin_api::notification_channels(&state, &caller).await?;
    Ok(Json(channels.into_iter().map(Into::into).collect()))
}

/// Which messages to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    /// Only this channel's.
    channel: Option<String>,
    /// How many, newest first.
    #[param(minimum = 1, maximum = 1000, default = 50)]
    limit: Option<i64>,
}

/// One message of the outbox.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    /// Also the `webhook-id` header of a webhook message.
    id: Uuid,
    channel: String,
    /// The security event's type.
    event_type: String,
    /// `pending`, `delivered` or `dead`.
    status: String,
    attempts: i64,
    #[schema(format = DateTime)]
    created_at: String,
    /// When it is tried next (while pending).
    #[schema(format = DateTime)]
    next_attempt_at: String,
    #[schema(required = true, format = DateTime)]
    finished_at: Option<String>,
    /// What went wrong the last time (an HTTP status, a timeout, a refused address).
    #[schema(required = true)]
    last_error: Option<String>,
}

impl From<outbox::Delivery> for Delivery {
    fn from(d: outbox::Delivery) -> Self {
        Self {
            id: d.id,
            channel: d.channel,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            created_at: rfc3339(d.created_at),
            next_attempt_at: rfc3339(d.next_attempt_at),
            finished_at: d.finished_at.map(rfc3339),
            last_error: d.last_error,
        }
    }
}

/// The most recent messages, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/notifications/deliveries",
    operation_id = "admin_notification_deliveries",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(DeliveryQuery),
    responses(
        (status = 200, description = "The messages (scope `admin`).", body = Vec<Delivery>),
        (status = 400, description = "`limit` out of range or not a whole number (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        AdminErrors,
        Unavailable,
    )
)]
async fn deliveries(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    query: Result<Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Delivery>>, AppError> {
    let Query(query) = query.map_err(|_| AppError::field("limit", "must be a whole number"))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::field("limit", "must be between 1 and 1000"));
    }
    let rows = admin_api::notification_deliveries(&state, &caller, query.channel.as_deref(), limit)
        .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// `{replayed: true}`.
#[derive(Serialize, ToSchema)]
struct Replayed {
    replayed: bool,
}

/// Makes a message (a dead one, say) due again with a fresh count of attempts; a running
/// server sends it shortly. Recorded in the audit log.
#[utoipa::path(
    post,
    path = "/admin/v1/notifications/deliveries/{messageId}/replay",
    operation_id = "admin_replay_notification",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(("messageId" = Uuid, Path, description = "The message's `id`.")),
    responses(
        (status = 200, description = "Due again (scope `admin`).", body = Replayed),
        BodyErrors,
        AdminErrors,
        (status = 409, description = "A worker is sending it right now (`notification_busy`); try again in a minute.", body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
async fn replay(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(id): Path<String>,
    Body(NoFields {}): OptionalBody<NoFields>,
) -> Result<Json<Replayed>, AppError> {
    let id = path_id(&id)?;
    match admin_api::replay_notification(&state, &caller, id).await? {
        Replay::Due => Ok(Json(Replayed { replayed: true })),
        Replay::Busy => Err(AppError::NotificationBusy),
    }
}

/// What a test message met.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Tested {
    /// The endpoint answered 2xx.
    delivered: bool,
    /// Its HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// What went wrong otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Sends a signed `test` message to a configured webhook endpoint now, outside the outbox,
/// and says what it answered. Recorded in the audit log.
#[utoipa::path(
    post,
    path = "/admin/v1/notifications/channels/{name}/test",
    operation_id = "admin_test_webhook",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(("name" = String, Path, description = "The webhook endpoint's `name`.")),
    responses(
        (status = 200, description = "Sent (scope `admin`); `delivered` says whether it was taken.", body = Tested),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn test_webhook(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Path(name): Path<String>,
    Body(NoFields {}): OptionalBody<NoFields>,
) -> Result<Json<Tested>, AppError> {
    let tested = match admin_api::test_webhook(&state, &caller, &name).await? {
        Ok(status) => Tested {
            delivered: true,
            status: Some(status),
            error: None,
        },
        Err(error) => Tested {
            delivered: false,
            status: None,
            error: Some(error),
        },
    };
    Ok(Json(tested))
}
