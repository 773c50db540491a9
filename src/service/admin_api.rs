//! The admin HTTP API's use cases (`/admin/v1`): each checks the calling key's scope, then
//! runs the operator use case the command line runs too ([`super::operator`],
//! [`super::two_factor::admin_reset`], [`super::accounts::create_user`]), recorded in the
//! account's security events with the key that acted. Reads of one account are recorded
//! too (`account_viewed`), so an owner can see that an operator looked.

use secrecy::SecretString;
use uuid::Uuid;

use super::accounts::{self, Account, Registration};
use super::admin_keys::{AdminCaller, Scope};
use super::devices::TrustedDevice;
use super::events::{self, SecurityEvent};
use super::operator::{self, AccountDetails, Actor};
use super::passkeys::PasskeyInfo;
use super::two_factor::{self, TwoFactorStatus};
use super::{authenticators, outbox, signing_keys};
use crate::db::{self, Conn};
use crate::error::AppError;
use crate::state::AppState;

/// A call of the admin API that belongs to no single account's event log (a listing, a
/// deletion, an import, a key rotation), as the audit log keeps it.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    /// Unix seconds.
    pub occurred_at: i64,
    pub api_key_id: Uuid,
    pub api_key_name: String,
    /// `users_listed`, `account_deleted`, `totp_imported`, `signing_key_rotated`,
    /// `signing_key_prepared`, `notification_replayed`, `webhook_tested`.
    pub action: String,
    pub target_user_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

impl From<db::admin_audit::AuditRow> for AuditEntry {
    fn from(row: db::admin_audit::AuditRow) -> Self {
        Self {
            id: row.id,
            occurred_at: row.occurred_at,
            api_key_id: row.api_key_id,
            api_key_name: row.api_key_name,
            action: row.action,
            target_user_id: row.target_user_id,
            ip_address: row.ip_address,
            user_agent: row.user_agent,
            details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The audit row of a call by `caller`, in the caller's transaction.
pub(crate) async fn audit_in(
    tx: &mut Conn,
    now: i64,
    caller: &AdminCaller,
    action: &str,
    target: Option<Uuid>,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let row = db::admin_audit::AuditRow {
        id: Uuid::new_v4(),
        occurred_at: now,
        api_key_id: caller.key.id,
        api_key_name: caller.key.name.clone(),
        action: action.to_owned(),
        target_user_id: target,
        ip_address: Some(caller.ctx.ip.clone()),
        user_agent: caller.ctx.user_agent.clone(),
        details: details.to_string(),
    };
    db::admin_audit::insert(tx, &row).await?;
    Ok(())
}

/// Runs `work` (a read, or a change made in transactions of its own) and then writes its
/// audit row, described from its result by `describe`, all on one task of its own: a
/// client that hangs up cannot leave the change done and the audit row missing.
async fn audited<T, F>(
    state: &AppState,
    caller: &AdminCaller,
    action: &'static str,
    work: impl FnOnce(AppState) -> F + Send + 'static,
    describe: impl FnOnce(&T) -> serde_json::Value + Send + 'static,
) -> Result<T, AppError>
where
    F: std::future::Future<Output = Result<T, AppError>> + Send + 'static,
    T: Send + 'static,
{
    let caller = caller.clone();
    super::detached(state, |task_state| async move {
        let done = work(task_state.clone()).await?;
        let mut tx = task_state.db.begin().await?;
        audit_in(
            &mut tx,
            task_state.now(),
            &caller,
            action,
            None,
            describe(&done),
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    })
    .await
}

/// The audit log, newest first. Needs the `admin` scope: it names every key's calls.
#[tracing::instrument(skip_all)]
pub async fn audit_log(
    state: &AppState,
    caller: &AdminCaller,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditEntry>, AppError> {
    caller.require(Scope::Admin)?;
    let mut conn = state.db.read().await?;
    let rows = db::admin_audit::page(&mut conn, limit, offset).await?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}

fn actor(caller: &AdminCaller) -> Actor {
    Actor {
        ctx: caller.ctx.clone(),
        details: caller.details(),
    }
}

/// Accounts whose email or user name contains `search`, oldest first. No single account
/// to record it on: the call is logged with its key.
#[tracing::instrument(skip_all)]
pub async fn list_users(
    state: &AppState,
    caller: &AdminCaller,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AccountDetails>, AppError> {
    caller.require(Scope::UsersRead)?;
    let search = search.map(str::to_owned);
    let shown = search.clone();
    audited(
        state,
        caller,
        "users_listed",
        move |state| async move {
            operator::list_accounts(&state, search.as_deref(), limit.clamp(1, 100), offset).await
        },
        move |accounts: &Vec<AccountDetails>| {
            serde_json::json!({"search": shown, "offset": offset, "count": accounts.len()})
        },
    )
    .await
}

/// One account: its state and its second factor; recorded as viewed.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn get_user(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
) -> Result<(AccountDetails, TwoFactorStatus), AppError> {
    caller.require(Scope::UsersRead)?;
    operator::record_viewed(state, user_id, "account", actor(caller)).await?;
    let details = operator::details(state, user_id).await?;
    // `details` found the account; a failure here is the database's, not a 404.
    let status = two_factor::status_for_admin(state, user_id).await?;
    Ok((details, status))
}

/// One page of the account's security events, newest first; recorded as viewed first (so
/// the page shows that too).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn security_events(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<SecurityEvent>, AppError> {
    caller.require(Scope::UsersRead)?;
    operator::record_viewed(state, user_id, "security_events", actor(caller)).await?;
    events::list(state, user_id, limit, offset).await
}

/// The account's live trusted devices; recorded as viewed.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn trusted_devices(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
) -> Result<Vec<TrustedDevice>, AppError> {
    caller.require(Scope::UsersRead)?;
    operator::record_viewed(state, user_id, "trusted_devices", actor(caller)).await?;
    super::devices::list(state, user_id).await
}

/// A new account, checked by the caller as a registration is. Without a password, it has
/// a single-use set-password link token instead.
pub struct NewAccount {
    pub email: String,
    pub user_name: Option<String>,
    pub phone_number: Option<String>,
    pub password: Option<SecretString>,
}

/// The created account, and its set-password token (and expiry) when it has no password.
pub struct Created {
    pub account: Account,
    pub set_password: Option<(String, i64)>,
}

#[tracing::instrument(skip_all)]
pub async fn create_user(
    state: &AppState,
    caller: &AdminCaller,
    input: NewAccount,
) -> Result<Created, AppError> {
    caller.require(Scope::UsersWrite)?;
    match input.password {
        Some(password) => {
            let account = accounts::create_user(
                state,
                Registration {
                    email: input.email,
                    password,
                    user_name: input.user_name,
                    phone_number: input.phone_number,
                },
                Some(actor(caller)),
            )
            .await?;
            Ok(Created {
                account,
                set_password: None,
            })
        }
        None => {
            let created = accounts::create_user_without_password(
                state,
                input.email,
                input.user_name,
                input.phone_number,
                actor(caller),
            )
            .await?;
            Ok(Created {
                account: created.account,
                set_password: Some((created.set_password_token, created.expires_at)),
            })
        }
    }
}

/// Disables or enables the account (see [`operator::set_disabled`]).
pub async fn set_disabled(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
    disabled: bool,
) -> Result<bool, AppError> {
    caller.require(Scope::UsersWrite)?;
    operator::set_disabled(state, user_id, disabled, actor(caller)).await
}

/// Deletes the account and everything it owns.
pub async fn delete_user(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
) -> Result<(), AppError> {
    caller.require(Scope::UsersWrite)?;
    operator::delete_account(state, user_id, caller.clone()).await
}

/// Turns the second factor off: secret, backup codes, devices and sessions go.
pub async fn reset_two_factor(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
) -> Result<(), AppError> {
    caller.require(Scope::UsersWrite)?;
    two_factor::admin_reset(state, user_id, actor(caller)).await
}

/// Clears the password throttle, second-factor lock and TOTP suspension.
pub async fn unlock(state: &AppState, caller: &AdminCaller, user_id: Uuid) -> Result<(), AppError> {
    caller.require(Scope::UsersWrite)?;
    operator::unlock(state, user_id, actor(caller)).await
}

/// Revokes every session (with devices and pending steps); how many sessions were live.
pub async fn revoke_sessions(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
) -> Result<u64, AppError> {
    caller.require(Scope::UsersWrite)?;
    operator::revoke_sessions(state, user_id, actor(caller)).await
}

/// Requires (or stops requiring) a second factor of the account.
pub async fn set_second_factor_required(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
    required: bool,
) -> Result<bool, AppError> {
    caller.require(Scope::UsersWrite)?;
    operator::set_second_factor_required(state, user_id, required, actor(caller)).await
}

/// The account's passkeys; recorded as viewed.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn passkeys(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
) -> Result<Vec<PasskeyInfo>, AppError> {
    caller.require(Scope::UsersRead)?;
    operator::record_viewed(state, user_id, "passkeys", actor(caller)).await?;
    super::passkeys::list(state, user_id).await
}

/// Imports TOTP authenticators (see [`authenticators::import`]): each line in a
/// transaction of its own, each imported one recorded on its account with the key.
#[tracing::instrument(skip_all, fields(lines = lines.len(), dry_run))]
pub async fn import_totp(
    state: &AppState,
    caller: &AdminCaller,
    lines: Vec<authenticators::ImportLine>,
    dry_run: bool,
) -> Result<Vec<authenticators::ImportOutcome>, AppError> {
    caller.require(Scope::UsersWrite)?;
    let entries = lines.len();
    let actor = actor(caller);
    audited(
        state,
        caller,
        "totp_imported",
        move |state| async move { authenticators::import(&state, lines, dry_run, actor).await },
        move |outcomes: &Vec<authenticators::ImportOutcome>| {
            let imported = outcomes
                .iter()
                .filter(|o| matches!(o.result, authenticators::ImportResult::Imported { .. }))
                .count();
            serde_json::json!({"entries": entries, "imported": imported, "dryRun": dry_run})
        },
    )
    .await
}

/// Re-learns the clock drift of the account's authenticator from two consecutive codes
/// (see [`authenticators::resync`]).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn resync_totp(
    state: &AppState,
    caller: &AdminCaller,
    user_id: Uuid,
    first: String,
    second: String,
) -> Result<authenticators::Resynced, AppError> {
    caller.require(Scope::UsersWrite)?;
    authenticators::resync(state, user_id, first, second, actor(caller)).await
}

/// What a signing-key change did.
pub enum KeyChange {
    /// A new current key; the ones it replaced stay published until their tokens expire.
    Rotated(signing_keys::Rotation),
    /// A key prepared ahead of use (published now), and whether it is new.
    Prepared { kid: String, new: bool },
}

/// Rotates the access-token signing key for every instance sharing the database, or only
/// prepares the next one. Needs the `admin` scope: it concerns every account.
#[tracing::instrument(skip_all, fields(prepare))]
pub async fn change_signing_key(
    state: &AppState,
    caller: &AdminCaller,
    prepare: bool,
) -> Result<KeyChange, AppError> {
    caller.require(Scope::Admin)?;
    if prepare {
        let (kid, new) = signing_keys::prepare(state, Some(caller)).await?;
        Ok(KeyChange::Prepared { kid, new })
    } else {
        let rotation = signing_keys::rotate(state, Some(caller)).await?;
        Ok(KeyChange::Rotated(rotation))
    }
}

/// The notification channels in force (webhook endpoints, email), with their messages
/// counted by status. Needs the `admin` scope: the messages concern every account.
#[tracing::instrument(skip_all)]
pub async fn notification_channels(
    state: &AppState,
    caller: &AdminCaller,
) -> Result<Vec<outbox::ChannelSummary>, AppError> {
    caller.require(Scope::Admin)?;
    outbox::channels(state).await
}

/// The most recent notification messages, of one channel or all.
#[tracing::instrument(skip_all, fields(channel = channel))]
pub async fn notification_deliveries(
    state: &AppState,
    caller: &AdminCaller,
    channel: Option<&str>,
    limit: i64,
) -> Result<Vec<outbox::Delivery>, AppError> {
    caller.require(Scope::Admin)?;
    outbox::deliveries(state, channel, limit).await
}

/// What a replay did.
pub enum Replay {
    /// Due again now, with a fresh count of attempts.
    Due,
    /// A worker is sending it right now.
    Busy,
}

/// Makes a message (a dead one, say) due again; `NotFound` if there is none.
#[tracing::instrument(skip_all, fields(message_id = %id))]
pub async fn replay_notification(
    state: &AppState,
    caller: &AdminCaller,
    id: Uuid,
) -> Result<Replay, AppError> {
    caller.require(Scope::Admin)?;
    let replayed = {
        let caller = caller.clone();
        super::detached(state, |task_state| async move {
            // The replay and its audit row commit together: neither without the other.
            let now = task_state.now();
            let mut tx = task_state.db.begin().await?;
            let replayed = outbox::replay_in(&mut tx, id, now).await?;
            if replayed == Some(true) {
                let details = serde_json::json!({"messageId": id});
                audit_in(
                    &mut tx,
                    now,
                    &caller,
                    "notification_replayed",
                    None,
                    details,
                )
                .await?;
            }
            tx.commit().await?;
            task_state.outbox.wake();
            Ok(replayed)
        })
        .await?
    };
    match replayed {
        None => Err(AppError::NotFound),
        Some(true) => Ok(Replay::Due),
        Some(false) => Ok(Replay::Busy),
    }
}

/// Sends a signed `test` message to a configured webhook endpoint now; the endpoint's HTTP
/// status, or what went wrong. `NotFound` if no endpoint has that name.
#[tracing::instrument(skip_all, fields(endpoint = endpoint))]
pub async fn test_webhook(
    state: &AppState,
    caller: &AdminCaller,
    endpoint: &str,
) -> Result<Result<u16, String>, AppError> {
    caller.require(Scope::Admin)?;
    let endpoint = endpoint.to_owned();
    let named = endpoint.clone();
    audited(
        state,
        caller,
        "webhook_tested",
        move |state| async move { outbox::send_test(&state, &endpoint).await },
        move |outcome: &Result<u16, String>| {
            serde_json::json!({"endpoint": named, "delivered": outcome.is_ok()})
        },
    )
    .await
}
