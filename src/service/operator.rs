//! The operator's use cases, shared by the command line (`tessera admin`) and the admin
//! HTTP API (`/admin/v1`): finding and listing accounts, reading their throttle state,
//! unlocking, disabling, enabling and deleting them, requiring a second factor, and
//! signing them out everywhere. Callers format what these return; they never touch the
//! database themselves.

use serde_json::json;
use uuid::Uuid;

use super::accounts::Account;
use super::admin_keys::AdminCaller;
use super::{RequestContext, events, sessions};
use crate::db;
use crate::domain::validate;
use crate::error::AppError;
use crate::state::AppState;

/// Who the security events of an operator command name as the caller.
pub fn context() -> RequestContext {
    RequestContext {
        ip: "admin".into(),
        user_agent: Some("tessera admin".into()),
    }
}

/// How an operator names an account (a command's argument, a line of a TOTP import):
/// explicitly by one field, or by a bare argument that may be any of the three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(Uuid),
    Email(String),
    UserName(String),
    /// An id, email or user name. Refused when it names more than one account, as an
    /// account created before user names were kept apart from emails and ids may have a
    /// user name that is another account's email or id.
    Any(String),
}

impl std::fmt::Display for UserRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserRef::Id(id) => write!(f, "id {id}"),
            UserRef::Email(email) => write!(f, "email {email:?}"),
            UserRef::UserName(name) => write!(f, "user name {name:?}"),
            UserRef::Any(who) => write!(f, "{who:?}"),
        }
    }
}

/// Who acts on an account: where the request came from, and what the security events it
/// writes say about who it was (`{"operator": name}` from the command line,
/// `{"apiKeyId", "apiKeyName"}` from the admin API).
#[derive(Debug, Clone)]
pub struct Actor {
    pub ctx: RequestContext,
    pub details: serde_json::Value,
}

impl Actor {
    /// The event details: who acted, with `extra` fields.
    pub(super) fn details_with(&self, extra: serde_json::Value) -> serde_json::Value {
        let mut details = self.details.clone();
        if let (Some(into), Some(from)) = (details.as_object_mut(), extra.as_object()) {
            for (k, v) in from {
                into.insert(k.clone(), v.clone());
            }
        }
        details
    }

    /// This actor's change to the account `user_id`, decided at `now`.
    pub(super) fn on(&self, user_id: Uuid, now: i64) -> ActingOn<'_> {
        ActingOn {
            actor: self,
            occasion: events::Occasion::new(user_id, now, Some(&self.ctx)),
        }
    }
}

/// An actor's change to one account: its events come from the actor's request and say
/// who acted.
#[derive(Clone, Copy)]
pub(super) struct ActingOn<'a> {
    actor: &'a Actor,
    pub occasion: events::Occasion<'a>,
}

impl ActingOn<'_> {
    /// Records `kind` on the account in the change's transaction, as the actor's doing:
    /// who it was, with `extra` fields (see [`Actor::details_with`]).
    pub(super) async fn record(
        self,
        state: &AppState,
        tx: &mut db::Conn,
        kind: &str,
        extra: serde_json::Value,
    ) -> Result<(), AppError> {
        let details = self.actor.details_with(extra);
        self.occasion.record(state, tx, kind, details).await
    }
}

/// An account with the state an operator needs to see (and never a user: the counters
/// would tell a guesser how close they are to a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDetails {
    pub account: Account,
    /// Wrong passwords in the current hour's window.
    pub password_failures: i64,
    /// Unix seconds; in the past when the password step is not delayed.
    pub password_blocked_until: i64,
    /// Consecutive wrong second-factor codes.
    pub second_factor_failures: i64,
    /// Unix seconds; in the past when not locked.
    pub second_factor_locked_until: i64,
    pub totp_suspended: bool,
    /// Unix seconds; `None` while enabled.
    pub disabled_at: Option<i64>,
    /// An operator marked the account as needing a second factor.
    pub second_factor_required: bool,
    /// Live sessions.
    pub sessions: i64,
    /// The confirmed authenticator's parameters and learned drift, if there is one.
    pub authenticator: Option<AuthenticatorInfo>,
}

/// How an account's authenticator makes its codes, and how far its clock is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatorInfo {
    pub params: crate::domain::totp::Params,
    /// In steps; positive when the authenticator's clock is ahead.
    pub drift: i64,
}

pub async fn find_by_id(state: &AppState, id: Uuid) -> Result<Option<Account>, AppError> {
    let mut conn = state.db.read().await?;
    Ok(db::users::find_by_id(&mut conn, id)
        .await?
        .map(Account::from))
}

/// By email, compared as registration stores it.
pub async fn find_by_email(state: &AppState, email: &str) -> Result<Option<Account>, AppError> {
    let mut conn = state.db.read().await?;
    Ok(
        db::users::find_by_email(&mut conn, &validate::email_key(email))
            .await?
            .map(Account::from),
    )
}

/// By user name, compared as registration stores it.
pub async fn find_by_user_name(state: &AppState, name: &str) -> Result<Option<Account>, AppError> {
    let mut conn = state.db.read().await?;
    Ok(
        db::users::find_by_user_name(&mut conn, &validate::user_name_key(name.trim()))
            .await?
            .map(Account::from),
    )
}

/// Accounts whose email or user name contains `search`, at most `limit` (1 to 10 000)
/// after skipping `offset`, oldest first.
#[tracing::instrument(skip_all)]
pub async fn list_accounts(
    state: &AppState,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AccountDetails>, AppError> {
    let now = state.now();
    let mut conn = state.db.read().await?;
    let rows = db::users::list(
        &mut conn,
        search,
        limit.clamp(1, 10_000),
        offset.max(0),
        now,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| details_of(r.user, r.live_sessions))
        .collect())
}

fn details_of(row: db::users::UserRow, sessions: i64) -> AccountDetails {
    AccountDetails {
        password_failures: row.pw_failures,
        password_blocked_until: row.pw_blocked_until,
        second_factor_failures: row.sf_failures,
        second_factor_locked_until: row.sf_locked_until,
        totp_suspended: row.totp_suspended,
        disabled_at: row.disabled_at,
        second_factor_required: row.second_factor_required,
        sessions,
        authenticator: None,
        account: row.into(),
    }
}

/// One account with its state; `NotFound` if there is none.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn details(state: &AppState, user_id: Uuid) -> Result<AccountDetails, AppError> {
    let now = state.now();
    let mut conn = state.db.read().await?;
    let row = db::users::find_by_id(&mut conn, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let sessions = db::sessions::count_live(&mut conn, user_id, now).await?;
    let authenticator = match db::totp::find(&mut conn, user_id).await? {
        Some(credential) if credential.secret_enc.is_some() => Some(AuthenticatorInfo {
            params: super::second_factor::stored_params(&credential)?,
            drift: credential.drift,
        }),
        _ => None,
    };
    Ok(AccountDetails {
        authenticator,
        ..details_of(row, sessions)
    })
}

/// Records that `actor` looked at `what` of the account (the admin API's reads), so the
/// owner and an auditor can see who read it. `NotFound` if there is no such account.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn record_viewed(
    state: &AppState,
    user_id: Uuid,
    what: &'static str,
    actor: Actor,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        require_account(&mut tx, user_id).await?;
        let viewed = json!({"viewed": what});
        actor
            .on(user_id, now)
            .record(state, &mut tx, events::ACCOUNT_VIEWED, viewed)
            .await?;
        tx.commit().await
    })
    .await
}

/// The account must exist, inside the change's transaction.
pub(super) async fn require_account(
    tx: &mut db::Conn,
    user_id: Uuid,
) -> Result<db::users::UserRow, AppError> {
    db::users::find_by_id(tx, user_id)
        .await?
        .ok_or(AppError::NotFound)
}

/// Clears the password and second-factor counters, recorded with the actor.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn unlock(state: &AppState, user_id: Uuid, actor: Actor) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        require_account(&mut tx, user_id).await?;
        db::users::unlock(&mut tx, user_id).await?;
        actor
            .on(user_id, now)
            .record(state, &mut tx, events::ACCOUNT_UNLOCKED, json!({}))
            .await?;
        tx.commit().await
    })
    .await
}

/// Revokes every session and records it, with the actor, even when there was none: the
/// event is the record that an operator signed the user out. Returns how many sessions
/// were live.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn revoke_sessions(
    state: &AppState,
    user_id: Uuid,
    actor: Actor,
) -> Result<u64, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        require_account(&mut tx, user_id).await?;
        let on = actor.on(user_id, now);
        // Everything granted under the account's credentials goes: sessions, trusted devices
        // and pending second steps.
        db::challenges::delete_for_user(&mut tx, user_id).await?;
        super::devices::revoke_all(state, &mut tx, on.occasion, "admin").await?;
        let revoked = db::sessions::revoke_all_for_user(&mut tx, user_id, None, now).await?;
        let ended = json!({"count": revoked, "reason": "admin"});
        on.record(state, &mut tx, events::SESSIONS_REVOKED, ended)
            .await?;
        tx.commit().await?;
        Ok(revoked)
    })
    .await
}

/// Disables (`disabled`) or enables the account. A disabled account cannot sign in or
/// refresh: disabling revokes every session, trusted device and pending step in the same
/// transaction. Recorded only when it changed; true then.
#[tracing::instrument(skip_all, fields(user_id = %user_id, disabled = disabled))]
pub async fn set_disabled(
    state: &AppState,
    user_id: Uuid,
    disabled: bool,
    actor: Actor,
) -> Result<bool, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        require_account(&mut tx, user_id).await?;
        let changed = db::users::set_disabled(&mut tx, user_id, disabled.then_some(now)).await?;
        if !changed {
            return Ok(false);
        }
        let on = actor.on(user_id, now);
        let kind = if disabled {
            let reason = "account_disabled";
            sessions::revoke_granted(state, &mut tx, on.occasion, None, reason).await?;
            events::ACCOUNT_DISABLED
        } else {
            events::ACCOUNT_ENABLED
        };
        on.record(state, &mut tx, kind, json!({})).await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}

/// Marks the account as needing a second factor (or not). Recorded when it changed.
#[tracing::instrument(skip_all, fields(user_id = %user_id, required = required))]
pub async fn set_second_factor_required(
    state: &AppState,
    user_id: Uuid,
    required: bool,
    actor: Actor,
) -> Result<bool, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        require_account(&mut tx, user_id).await?;
        if !db::users::set_second_factor_required(&mut tx, user_id, required).await? {
            return Ok(false);
        }
        let details = json!({"required": required});
        actor
            .on(user_id, now)
            .record(
                state,
                &mut tx,
                events::SECOND_FACTOR_REQUIREMENT_CHANGED,
                details,
            )
            .await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}

/// Deletes the account and everything it owns (sessions, refresh tokens, secret, backup
/// codes, trusted devices, pending steps, security events) in one statement, the
/// notifications about it (sent or not: they copy its events), and records the deletion
/// in the admin audit log, all in one transaction.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn delete_account(
    state: &AppState,
    user_id: Uuid,
    caller: AdminCaller,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        if !db::users::delete(&mut tx, user_id).await? {
            return Err(AppError::NotFound);
        }
        db::outbox::delete_for_user(&mut tx, user_id).await?;
        // The account's own event log goes with it: the audit log keeps the deletion, by
        // the account's id only (nothing personal outlives the account).
        let details = json!({});
        super::admin_api::audit_in(&mut tx, now, &caller, "account_deleted", Some(user_id), details)
            .await?;
        tx.commit().await?;
        tracing::info!(user_id = %user_id, api_key_id = %caller.key.id, ip = %caller.ctx.ip, "account deleted");
        Ok(())
    })
    .await
}
