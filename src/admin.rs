//! `tessera admin`: operator commands on the same configuration and database as the
//! server. Each returns the text to print, or an error; `main` turns errors into a
//! non-zero exit code.

use secrecy::SecretString;
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::domain::validate;
use crate::error::AppError;
use crate::service::accounts::{self, Account, CreatedBy, Registration};
use crate::service::{self, two_factor};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user matches {0}")]
    NoSuchUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
}

/// Who runs a command: recorded as `details.operator` in the security events it writes,
/// so an account owner (and an auditor) can see which operator acted.
#[derive(Debug, Clone)]
pub struct Operator(String);

impl Operator {
    /// The name given with `--operator`, else the OS user (`$USER`, else `$LOGNAME`, else
    /// `uid N` of the process, as in a service or container without those variables).
    pub fn from_flag_or_env(flag: Option<String>) -> Result<Self, AdminError> {
        use std::os::unix::fs::MetadataExt;
        let name = [
            flag,
            std::env::var("USER").ok(),
            std::env::var("LOGNAME").ok(),
        ]
        .into_iter()
        .flatten()
        .map(|n| n.trim().to_owned())
        .find(|n| !n.is_empty())
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|m| format!("uid {}", m.uid()))
        })
        .ok_or_else(|| AdminError::Invalid("no operator: pass --operator NAME".into()))?;
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AdminError::Invalid(
                "--operator must be at most 100 characters, without control characters".into(),
            ));
        }
        Ok(Self(name))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({"operator": self.0})
    }
}

/// How a command names its user: explicitly by one field, or by a bare argument that may
/// be any of the three.
#[derive(Debug, Clone)]
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

/// Finds the one user `who` names.
pub async fn find_user(state: &AppState, who: &UserRef) -> Result<Account, AdminError> {
    let found = match who {
        UserRef::Id(id) => service::operator::find_by_id(state, *id).await?,
        UserRef::Email(email) => service::operator::find_by_email(state, email).await?,
        UserRef::UserName(name) => service::operator::find_by_user_name(state, name).await?,
        UserRef::Any(text) => {
            let mut matches: Vec<(&str, Account)> = Vec::new();
            if let Ok(id) = Uuid::parse_str(text.trim())
                && let Some(user) = service::operator::find_by_id(state, id).await?
            {
                matches.push(("--id", user));
            }
            if let Some(user) = service::operator::find_by_email(state, text).await? {
                matches.push(("--email", user));
            }
            if let Some(user) = service::operator::find_by_user_name(state, text).await? {
                matches.push(("--user-name", user));
            }
            let first = matches.first().map(|(_, u)| u.id);
            if matches.iter().any(|(_, u)| Some(u.id) != first) {
                let listed: Vec<String> = matches
                    .iter()
                    .map(|(flag, u)| format!("{flag} matches {} ({})", u.id, u.email))
                    .collect();
                return Err(AdminError::Invalid(format!(
                    "{text:?} names more than one account ({}); say which with --id, --email or --user-name",
                    listed.join("; ")
                )));
            }
            matches.into_iter().next().map(|(_, u)| u)
        }
    };
    found.ok_or_else(|| AdminError::NoSuchUser(who.to_string()))
}

pub async fn list_users(
    state: &AppState,
    search: Option<&str>,
    limit: i64,
) -> Result<String, AdminError> {
    let users = service::operator::list_accounts(state, search, limit).await?;
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

pub async fn show_user(state: &AppState, who: &UserRef) -> Result<String, AdminError> {
    let found = find_user(state, who).await?;
    let details = service::operator::details(state, found.id).await?;
    let user = &details.account;
    let status = two_factor::status_for_admin(state, user.id).await?;
    let now = state.now();
    let lock = if details.second_factor_locked_until > now {
        format!(
            "locked until {}",
            rfc3339(details.second_factor_locked_until)
        )
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
        if status.enabled {
            format!("on ({})", status.methods().join(", "))
        } else {
            "off".into()
        },
        status.enabled_at.map(rfc3339).unwrap_or_else(|| "-".into()),
        status.setup_pending,
        status.backup_codes_remaining,
        status.trusted_devices,
        lock,
        details.second_factor_failures,
        if details.totp_suspended {
            ", TOTP suspended"
        } else {
            ""
        },
        details.password_failures,
    ) + &passkey_lines(state, user.id).await?)
}

/// The account's passkeys for `show-user`, one line each.
async fn passkey_lines(state: &AppState, user_id: uuid::Uuid) -> Result<String, AdminError> {
    let passkeys = service::passkeys::list(state, user_id).await?;
    let mut out = format!("passkeys:            {}\n", passkeys.len());
    for p in passkeys {
        out.push_str(&format!(
            "  {}  {:?}  created {}  last used {}  {}{}{}\n",
            p.id,
            p.name,
            rfc3339(p.created_at),
            p.last_used_at
                .map(rfc3339)
                .unwrap_or_else(|| "never".into()),
            if p.backed_up {
                "synced"
            } else {
                "device-bound"
            },
            p.aaguid.map(|a| format!("  model {a}")).unwrap_or_default(),
            if p.disabled {
                "  DISABLED (counter went backwards)"
            } else {
                ""
            },
        ));
    }
    Ok(out)
}

pub async fn reset_two_factor(
    state: &AppState,
    who: &UserRef,
    operator: &Operator,
) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    two_factor::admin_reset(state, user.id, operator.details()).await?;
    Ok(format!(
        "Two-factor authentication reset for {}: secret, passkeys, backup codes and trusted devices deleted, every session revoked.\n",
        user.email
    ))
}

pub async fn unlock(
    state: &AppState,
    who: &UserRef,
    operator: &Operator,
) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    service::operator::unlock(state, user.id, operator.details()).await?;
    Ok(format!(
        "Unlocked {}: password and second-factor counters cleared.\n",
        user.email
    ))
}

/// Revokes every session and records it, with the operator, even when there was none: the
/// event is the record that an operator signed the user out.
pub async fn revoke_sessions(
    state: &AppState,
    who: &UserRef,
    operator: &Operator,
) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    let revoked = service::operator::revoke_sessions(state, user.id, operator.details()).await?;
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
    operator: &Operator,
) -> Result<String, AdminError> {
    let email = validate::email(email).map_err(|m| AdminError::Invalid(format!("email {m}")))?;
    let user_name = user_name
        .map(validate::user_name)
        .transpose()
        .map_err(|m| AdminError::Invalid(format!("user name {m}")))?;
    let words = validate::password_context(&email, user_name.as_deref(), &state.config.issuer);
    validate::new_password(secrecy::ExposeSecret::expose_secret(&password), &words)
        .map_err(|m| AdminError::Invalid(format!("password {m}")))?;
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
        Some(CreatedBy {
            ctx: service::operator::context(),
            details: operator.details(),
        }),
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
