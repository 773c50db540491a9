//! `tessera admin`: operator commands on the same configuration and database as the
//! server. Each returns the text to print, or an error; `main` turns errors into a
//! non-zero exit code.

use secrecy::SecretString;
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::db::{self, users::UserRow};
use crate::domain::validate;
use crate::error::AppError;
use crate::service::accounts::{self, Registration};
use crate::service::{RequestContext, events, sessions, two_factor};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user matches {0:?}")]
    NoSuchUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
}

fn context() -> RequestContext {
    RequestContext {
        ip: "admin".into(),
        user_agent: Some("tessera admin".into()),
    }
}

/// Finds a user by id, email or user name.
pub async fn find_user(state: &AppState, who: &str) -> Result<UserRow, AdminError> {
    let mut conn = state.db.read().await?;
    let found = if let Ok(id) = Uuid::parse_str(who) {
        db::users::find_by_id(&mut conn, id)
            .await
            .map_err(AppError::from)?
    } else if who.contains('@') {
        match db::users::find_by_email(&mut conn, &who.trim().to_lowercase())
            .await
            .map_err(AppError::from)?
        {
            Some(u) => Some(u),
            None => db::users::find_by_user_name(&mut conn, &validate::user_name_key(who))
                .await
                .map_err(AppError::from)?,
        }
    } else {
        db::users::find_by_user_name(&mut conn, &validate::user_name_key(who))
            .await
            .map_err(AppError::from)?
    };
    found.ok_or_else(|| AdminError::NoSuchUser(who.to_owned()))
}

pub async fn list_users(
    state: &AppState,
    search: Option<&str>,
    limit: i64,
) -> Result<String, AdminError> {
    let mut conn = state.db.read().await?;
    let users = db::users::list(&mut conn, search, limit.clamp(1, 10_000))
        .await
        .map_err(AppError::from)?;
    let mut out = format!(
        "{:<36}  {:<32}  {:<20}  {:<5}  {}\n",
        "ID", "EMAIL", "USER NAME", "2FA", "CREATED"
    );
    for u in &users {
        out.push_str(&format!(
            "{:<36}  {:<32}  {:<20}  {:<5}  {}\n",
            u.id,
            u.email,
            u.user_name,
            if u.two_factor_enabled { "on" } else { "off" },
            rfc3339(u.created_at)
        ));
    }
    out.push_str(&format!("{} user(s)\n", users.len()));
    Ok(out)
}

pub async fn show_user(state: &AppState, who: &str) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    let status = two_factor::status_for_admin(state, user.id).await?;
    let now = state.now();
    let lock = if user.sf_locked_until > now {
        format!("locked until {}", rfc3339(user.sf_locked_until))
    } else {
        "not locked".into()
    };
    Ok(format!(
        "id:                  {}\nemail:               {}\nuser name:           {}\nphone:               {}\ncreated:             {}\nlast login:          {}\n2FA:                 {}\n2FA enabled at:      {}\nsetup pending:       {}\nbackup codes left:   {}\ntrusted devices:     {}\nsecond factor:       {} ({} consecutive failures{})\npassword failures:   {} this hour\n",
        user.id,
        user.email,
        user.user_name,
        user.phone_number.as_deref().unwrap_or("-"),
        rfc3339(user.created_at),
        user.last_login_at
            .map(rfc3339)
            .unwrap_or_else(|| "never".into()),
        if status.enabled { "on (totp)" } else { "off" },
        status.enabled_at.unwrap_or_else(|| "-".into()),
        status.setup_pending,
        status.backup_codes_remaining,
        status.trusted_devices,
        lock,
        user.sf_failures,
        if user.totp_suspended {
            ", TOTP suspended"
        } else {
            ""
        },
        user.pw_failures,
    ))
}

pub async fn reset_two_factor(state: &AppState, who: &str) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    two_factor::admin_reset(state, user.id).await?;
    Ok(format!(
        "Two-factor authentication reset for {}: secret, backup codes and trusted devices deleted, every session revoked.\n",
        user.email
    ))
}

pub async fn unlock(state: &AppState, who: &str) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db::users::unlock(&mut tx, user.id)
        .await
        .map_err(AppError::from)?;
    events::record(
        &mut tx,
        now,
        user.id,
        events::ACCOUNT_UNLOCKED,
        Some(&context()),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(format!(
        "Unlocked {}: password and second-factor counters cleared.\n",
        user.email
    ))
}

pub async fn revoke_sessions(state: &AppState, who: &str) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    // Everything granted under the account's credentials goes: sessions, trusted devices
    // and pending second steps.
    let revoked =
        sessions::revoke_granted(&mut tx, now, user.id, None, "admin", Some(&context())).await?;
    tx.commit().await?;
    Ok(format!(
        "Revoked {revoked} session(s) of {}, with its trusted devices and pending sign-ins.\n",
        user.email
    ))
}

pub async fn create_user(
    state: &AppState,
    email: &str,
    user_name: Option<&str>,
    phone_number: Option<&str>,
    password: SecretString,
) -> Result<String, AdminError> {
    let email = validate::email(email).map_err(|m| AdminError::Invalid(format!("email {m}")))?;
    validate::new_password(secrecy::ExposeSecret::expose_secret(&password))
        .map_err(|m| AdminError::Invalid(format!("password {m}")))?;
    let user_name = user_name
        .map(validate::user_name)
        .transpose()
        .map_err(|m| AdminError::Invalid(format!("user name {m}")))?;
    let phone_number = phone_number
        .map(validate::phone_number)
        .transpose()
        .map_err(|m| AdminError::Invalid(format!("phone number {m}")))?;
    let user = accounts::create_user(
        state,
        Registration {
            email,
            password,
            user_name,
            phone_number,
        },
    )
    .await
    .map_err(|e| match e {
        AppError::AlreadyExists(field) => {
            AdminError::Invalid(format!("an account with this {field} already exists"))
        }
        other => AdminError::App(other),
    })?;
    Ok(format!("Created {} ({}).\n", user.email, user.id))
}
