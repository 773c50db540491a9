//! The operator's use cases (`tessera admin`): finding and listing accounts, reading their
//! throttle state, unlocking them and signing them out everywhere. The CLI formats what
//! these return; it never touches the database itself.

use uuid::Uuid;

use super::accounts::Account;
use super::{RequestContext, devices, events};
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

/// An account with the throttle state an operator needs to see (and never a user: the
/// counters would tell a guesser how close they are to a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDetails {
    pub account: Account,
    /// Wrong passwords in the current hour's window.
    pub password_failures: i64,
    /// Consecutive wrong second-factor codes.
    pub second_factor_failures: i64,
    /// Unix seconds; in the past when not locked.
    pub second_factor_locked_until: i64,
    pub totp_suspended: bool,
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

/// Accounts whose email or user name contains `search`, at most `limit` (1 to 10 000).
#[tracing::instrument(skip_all)]
pub async fn list_accounts(
    state: &AppState,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, AppError> {
    let mut conn = state.db.read().await?;
    let rows = db::users::list(&mut conn, search, limit.clamp(1, 10_000)).await?;
    Ok(rows.into_iter().map(Account::from).collect())
}

#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn details(state: &AppState, user_id: Uuid) -> Result<AccountDetails, AppError> {
    let mut conn = state.db.read().await?;
    let row = db::users::find_by_id(&mut conn, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let authenticator = match db::totp::find(&mut conn, user_id).await? {
        Some(credential) if credential.secret_enc.is_some() => Some(AuthenticatorInfo {
            params: super::second_factor::stored_params(&credential)?,
            drift: credential.drift,
        }),
        _ => None,
    };
    Ok(AccountDetails {
        authenticator,
        password_failures: row.pw_failures,
        second_factor_failures: row.sf_failures,
        second_factor_locked_until: row.sf_locked_until,
        totp_suspended: row.totp_suspended,
        account: row.into(),
    })
}

/// Clears the password and second-factor counters, recorded with `details` (the operator).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn unlock(
    state: &AppState,
    user_id: Uuid,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db::users::unlock(&mut tx, user_id).await?;
    events::record(
        &mut tx,
        now,
        user_id,
        events::ACCOUNT_UNLOCKED,
        Some(&context()),
        details,
    )
    .await?;
    tx.commit().await
}

/// Revokes every session and records it, with `details` (the operator), even when there
/// was none: the event is the record that an operator signed the user out. Returns how
/// many sessions were live.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn revoke_sessions(
    state: &AppState,
    user_id: Uuid,
    mut details: serde_json::Value,
) -> Result<u64, AppError> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    // Everything granted under the account's credentials goes: sessions, trusted devices
    // and pending second steps.
    db::challenges::delete_for_user(&mut tx, user_id).await?;
    devices::revoke_all(&mut tx, now, user_id, "admin", Some(&context())).await?;
    let revoked = db::sessions::revoke_all_for_user(&mut tx, user_id, None, now).await?;
    details["count"] = revoked.into();
    details["reason"] = "admin".into();
    events::record(
        &mut tx,
        now,
        user_id,
        events::SESSIONS_REVOKED,
        Some(&context()),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}
