//! The security event log: one row per thing an account owner should be able to review.
//! `details` is a small JSON object and never holds a secret, code or token.

use uuid::Uuid;

use super::RequestContext;
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
/// An operator read the account, its events or its devices through the admin API
/// (`details.viewed`).
pub const ACCOUNT_VIEWED: &str = "account_viewed";
/// An operator disabled the account: it cannot sign in or refresh.
pub const ACCOUNT_DISABLED: &str = "account_disabled";
/// An operator enabled the account again.
pub const ACCOUNT_ENABLED: &str = "account_enabled";
/// An operator required (or stopped requiring) a second factor of the account.
pub const SECOND_FACTOR_REQUIREMENT_CHANGED: &str = "second_factor_requirement_changed";
/// The password of an account created without one was set with its set-password link.
pub const PASSWORD_SET: &str = "password_set";
/// The authenticator's learned clock drift (in steps) changed: by a sign-in whose code was
/// off the centre of the window, or by an operator's resync (`details.reason`).
pub const TOTP_DRIFT_CHANGED: &str = "totp_drift_changed";
/// An operator imported an authenticator (`tessera admin import-totp`).
pub const TOTP_IMPORTED: &str = "totp_imported";
/// A sign-in from a device the account has not used recently (see
/// [`crate::domain::device`]).
pub const NEW_DEVICE_SIGN_IN: &str = "new_device_sign_in";

/// Every event type, for the webhook subscriptions in the configuration.
pub const ALL: &[&str] = &[
    LOGIN_SUCCEEDED,
    LOGIN_FAILED,
    PASSWORD_CONFIRMATION_FAILED,
    SECOND_FACTOR_FAILED,
    SECOND_FACTOR_LOCKED,
    SECOND_FACTOR_ABANDONED,
    TOTP_SUSPENDED,
    TWO_FACTOR_ENABLED,
    TWO_FACTOR_DISABLED,
    TWO_FACTOR_RESET,
    BACKUP_CODE_USED,
    BACKUP_CODES_REGENERATED,
    DEVICE_TRUSTED,
    DEVICE_REMOVED,
    DEVICES_REMOVED,
    PASSWORD_CHANGED,
    SESSIONS_REVOKED,
    REFRESH_TOKEN_REUSED,
    LOGGED_OUT,
    ACCOUNT_UNLOCKED,
    ACCOUNT_CREATED,
    ACCOUNT_VIEWED,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    SECOND_FACTOR_REQUIREMENT_CHANGED,
    PASSWORD_SET,
    TOTP_DRIFT_CHANGED,
    TOTP_IMPORTED,
    PASSKEY_REGISTERED,
    PASSKEY_REMOVED,
    PASSKEY_DISABLED,
    NEW_DEVICE_SIGN_IN,
];

/// The event types the account's owner is emailed about (when `smtp_url` is set).
pub const EMAILED: &[&str] = &[
    NEW_DEVICE_SIGN_IN,
    TWO_FACTOR_DISABLED,
    TWO_FACTOR_RESET,
    BACKUP_CODE_USED,
    PASSWORD_CHANGED,
    SECOND_FACTOR_LOCKED,
];
/// A passkey was registered (`details`: its id and name).
pub const PASSKEY_REGISTERED: &str = "passkey_registered";
/// A passkey was removed by its owner.
pub const PASSKEY_REMOVED: &str = "passkey_removed";
/// A passkey was disabled because its signature counter went backwards: two
/// authenticators may hold the same key (a clone).
pub const PASSKEY_DISABLED: &str = "passkey_disabled";

/// Event types that anyone can cause over and over for one account: guessing its password
/// or codes from outside, or repeating a request of the owner's own. Past
/// [`CAPPED_EVENTS_PER_HOUR`] of one type in an hour, each further one is only counted into
/// the last row of its type (`details.suppressed`), so a flood adds a bounded number of
/// rows. Every other type is always recorded: locks, suspensions, password and
/// second-factor changes, backup codes used, devices trusted, sessions revoked, successful
/// logins (which cost a right password each) are what an owner must be able to see.
pub const CAPPED: &[&str] = &[
    LOGIN_FAILED,
    SECOND_FACTOR_FAILED,
    PASSWORD_CONFIRMATION_FAILED,
    DEVICES_REMOVED,
];

/// Rows of one capped type one account gets in an hour: enough to show a pattern (the
/// password step delays a guesser well before this many an hour).
pub const CAPPED_EVENTS_PER_HOUR: i64 = 20;

/// What every event of one change has in common: the account it is about, the instant the
/// change decided on, and the request that caused it (none for the server's own doing).
/// A use case makes one and records each of its events through it, so no event of the
/// change can name another time or request.
#[derive(Debug, Clone, Copy)]
pub struct Occasion<'a> {
    pub user_id: Uuid,
    pub now: i64,
    pub ctx: Option<&'a RequestContext>,
}

impl<'a> Occasion<'a> {
    pub fn new(user_id: Uuid, now: i64, ctx: Option<&'a RequestContext>) -> Self {
        Self { user_id, now, ctx }
    }

    /// Records an event, or, for a [`CAPPED`] type past its cap, counts it into the last
    /// one. A recorded event is also written to the outbox for each notification channel
    /// subscribed to its type, in the same transaction: the message exists exactly when
    /// the change does.
    pub async fn record(
        self,
        state: &AppState,
        conn: &mut Conn,
        event_type: &str,
        details: serde_json::Value,
    ) -> Result<(), AppError> {
        let details_text = details.to_string();
        let event = db::events::NewEvent {
            user_id: self.user_id,
            event_type,
            occurred_at: self.now,
            ip_address: self.ctx.map(|c| c.ip.as_str()),
            user_agent: self.ctx.and_then(|c| c.user_agent.as_deref()),
            details: &details_text,
        };
        let folded = if CAPPED.contains(&event_type) {
            db::events::insert_capped(conn, &event, CAPPED_EVENTS_PER_HOUR).await?
                == db::events::Capped::Folded
        } else {
            db::events::insert(conn, &event).await?;
            false
        };
        if !folded {
            super::outbox::enqueue(state, conn, self, event_type, &details).await?;
        }
        tracing::info!(user_id = %self.user_id, event = event_type, folded, "security event");
        Ok(())
    }

    /// Records that `count` grants (sessions, trusted devices) were ended at once, and why.
    pub async fn record_ended(
        self,
        state: &AppState,
        conn: &mut Conn,
        event_type: &str,
        count: u64,
        reason: &str,
    ) -> Result<(), AppError> {
        let details = serde_json::json!({"count": count, "reason": reason});
        self.record(state, conn, event_type, details).await
    }
}

/// Something that happened to the account's security.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub id: Uuid,
    /// A stable snake_case name: `login_succeeded`, `second_factor_failed`, ...
    pub event_type: String,
    /// Unix seconds.
    pub occurred_at: i64,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// A small object; never a secret, code or token. On a [`CAPPED`] type, the last row of
    /// an hour that went past the cap has `suppressed`: how many more were counted into it.
    pub details: serde_json::Value,
}

pub const MAX_PAGE_SIZE: i64 = 100;

/// One page of the user's events, newest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
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
        .map(|row| {
            let mut details = serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null);
            if row.suppressed > 0
                && let Some(object) = details.as_object_mut()
            {
                object.insert("suppressed".into(), row.suppressed.into());
            }
            SecurityEvent {
                id: row.id,
                event_type: row.event_type,
                occurred_at: row.occurred_at,
                ip_address: row.ip_address,
                user_agent: row.user_agent,
                details,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    /// Every event kind this module declares can be subscribed to by name: a kind added
    /// without its place in `ALL` would be refused in a webhook's `events`.
    #[test]
    fn every_declared_kind_is_in_all() {
        let source = include_str!("events.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub const "))
            .filter(|l| l.contains(": &str = \""))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert!(declared.len() > 20, "{declared:?}");
        for kind in declared {
            assert!(super::ALL.contains(&kind), "{kind} is not in ALL");
        }
    }
}
