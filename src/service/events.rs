//! The security event log: one row per thing an account owner should be able to review.
//! `details` is a small JSON object and never holds a secret, code or token.

use serde::Serialize;
use uuid::Uuid;

use super::RequestContext;
use crate::clock::rfc3339;
use crate::db::{self, Conn};
use crate::error::AppError;
use crate::state::AppState;

pub const LOGIN_SUCCEEDED: &str = "login_succeeded";
pub const LOGIN_FAILED: &str = "login_failed";
pub const PASSWORD_CONFIRMATION_FAILED: &str = "password_confirmation_failed";
pub const SECOND_FACTOR_FAILED: &str = "second_factor_failed";
pub const SECOND_FACTOR_LOCKED: &str = "second_factor_locked";
pub const SECOND_FACTOR_ABANDONED: &str = "second_factor_abandoned";
pub const TOTP_SUSPENDED: &str = "totp_suspended";
pub const TWO_FACTOR_ENABLED: &str = "two_factor_enabled";
pub const TWO_FACTOR_DISABLED: &str = "two_factor_disabled";
pub const TWO_FACTOR_RESET: &str = "two_factor_reset";
pub const BACKUP_CODE_USED: &str = "backup_code_used";
pub const BACKUP_CODES_REGENERATED: &str = "backup_codes_regenerated";
pub const DEVICE_TRUSTED: &str = "device_trusted";
pub const DEVICE_REMOVED: &str = "device_removed";
pub const DEVICES_REMOVED: &str = "devices_removed";
pub const PASSWORD_CHANGED: &str = "password_changed";
pub const SESSIONS_REVOKED: &str = "sessions_revoked";
pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
pub const LOGGED_OUT: &str = "logged_out";
pub const ACCOUNT_UNLOCKED: &str = "account_unlocked";
/// An operator created the account (`tessera admin create-user`).
pub const ACCOUNT_CREATED: &str = "account_created";

pub async fn record(
    conn: &mut Conn,
    now: i64,
    user_id: Uuid,
    event_type: &str,
    ctx: Option<&RequestContext>,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let details = details.to_string();
    db::events::insert(
        conn,
        &db::events::NewEvent {
            user_id,
            event_type,
            occurred_at: now,
            ip_address: ctx.map(|c| c.ip.as_str()),
            user_agent: ctx.and_then(|c| c.user_agent.as_deref()),
            details: &details,
        },
    )
    .await?;
    tracing::info!(user_id = %user_id, event = event_type, "security event");
    Ok(())
}

/// Something that happened to the account's security.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    pub id: Uuid,
    /// A stable snake_case name: `login_succeeded`, `second_factor_failed`, `two_factor_enabled`, ...
    #[serde(rename = "type")]
    #[schema(example = "login_succeeded")]
    pub event_type: String,
    #[schema(format = DateTime)]
    pub occurred_at: String,
    #[schema(required = true, example = "203.0.113.7")]
    pub ip_address: Option<String>,
    #[schema(required = true)]
    pub user_agent: Option<String>,
    /// A small object; never a secret, code or token.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

pub const MAX_PAGE_SIZE: i64 = 100;

/// One page of the user's events, newest first.
pub async fn list(
    state: &AppState,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<SecurityEvent>, AppError> {
    let mut conn = state.db.read().await?;
    let rows = db::events::page(
        &mut conn,
        user_id,
        limit.clamp(1, MAX_PAGE_SIZE),
        offset.max(0),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| SecurityEvent {
            id: row.id,
            event_type: row.event_type,
            occurred_at: rfc3339(row.occurred_at),
            ip_address: row.ip_address,
            user_agent: row.user_agent,
            details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
        })
        .collect())
}
