//! `tessera admin`: operator commands on the same configuration and database as the
//! server. Each returns the text to print, or an error; `main` turns errors into a
//! non-zero exit code.

use secrecy::SecretString;
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::domain::validate;
use crate::error::AppError;
use crate::service::accounts::{self, Account, Registration};
use crate::service::admin_keys::{self, Scope};
use crate::service::{self, two_factor};
use crate::state::AppState;

pub use crate::service::operator::UserRef;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user matches {0}")]
    NoSuchUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
    /// The command did part of its work: the text reports what was done and what was not.
    #[error("{0}")]
    Partial(String),
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

    /// The operator as the service's actor: the command line's context, named.
    fn actor(&self) -> service::operator::Actor {
        service::operator::Actor {
            ctx: service::operator::context(),
            details: self.details(),
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
    let users: Vec<Account> = service::operator::list_accounts(state, search, limit, 0)
        .await?
        .into_iter()
        .map(|d| d.account)
        .collect();
    let rows = users.iter().map(|u| {
        [
            u.id.to_string(),
            u.email.clone(),
            u.user_name.clone(),
            (if u.two_factor_enabled { "on" } else { "off" }).to_owned(),
            rfc3339(u.created_at),
        ]
    });
    let header = ["ID", "EMAIL", "USER NAME", "2FA", "CREATED"].map(String::from);
    let mut out = table(&[36, 32, 20, 5], std::iter::once(header).chain(rows));
    out.push_str(&format!("{} user(s)\n", users.len()));
    Ok(out)
}

/// A listing's lines, the header first: each cell padded to its column's width in
/// `widths` and two spaces from the next, the last column as it is. One layout for the
/// header and the rows, so they cannot drift apart.
fn table<const N: usize>(widths: &[usize], rows: impl IntoIterator<Item = [String; N]>) -> String {
    let mut out = String::new();
    for row in rows {
        for (cell, width) in row.iter().zip(widths) {
            out.push_str(&format!("{cell:<width$}  "));
        }
        if let Some(last) = row.get(widths.len()) {
            out.push_str(last);
        }
        out.push('\n');
    }
    out
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
        "id:                  {}\nemail:               {}\nuser name:           {}\nphone:               {}\ncreated:             {}\nlast login:          {}\n2FA:                 {}\n2FA enabled at:      {}\nsetup pending:       {}\nbackup codes left:   {}\ntrusted devices:     {}\nsecond factor:       {} ({} consecutive failures{})\npassword failures:   {} this hour\nsessions:            {}\n2FA required:        {}\ndisabled:            {}\n",
        user.id,
        user.email,
        user.user_name,
        user.phone_number.as_deref().unwrap_or("-"),
        rfc3339(user.created_at),
        user.last_login_at
            .map(rfc3339)
            .unwrap_or_else(|| "never".into()),
        match (status.enabled, details.authenticator) {
            (true, authenticator) => {
                let methods: Vec<String> = status
                    .methods()
                    .iter()
                    .map(|&method| match (method, authenticator) {
                        ("totp", Some(a)) => format!(
                            "totp [{}, {} digits, {} s, clock drift {:+} step(s)]",
                            a.params.algorithm.name(),
                            a.params.digits,
                            a.params.period,
                            a.drift
                        ),
                        (other, _) => other.to_owned(),
                    })
                    .collect();
                format!("on ({})", methods.join(", "))
            }
            (false, _) => "off".to_owned(),
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
        details.sessions,
        details.second_factor_required,
        details
            .disabled_at
            .map(|at| format!("since {}", rfc3339(at)))
            .unwrap_or_else(|| "no".into()),
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
    two_factor::admin_reset(state, user.id, operator.actor()).await?;
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
    service::operator::unlock(state, user.id, operator.actor()).await?;
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
    let revoked = service::operator::revoke_sessions(state, user.id, operator.actor()).await?;
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
        Some(operator.actor()),
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

/// `tessera admin api-keys create`: makes an admin API key and shows it, once.
pub async fn create_api_key(
    state: &AppState,
    name: &str,
    scopes: &[String],
) -> Result<String, AdminError> {
    let parsed: Vec<Scope> = if scopes.is_empty() {
        vec![Scope::Admin]
    } else {
        scopes
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| {
                Scope::parse(s).ok_or_else(|| {
                    AdminError::Invalid(format!(
                        "unknown scope {s:?}; the scopes are {}",
                        Scope::ALL.map(Scope::name).join(", ")
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let (key, record) = admin_keys::create(state, name, &parsed)
        .await
        .map_err(|e| match e {
            AppError::Validation(fields) => AdminError::Invalid(
                fields
                    .iter()
                    .flat_map(|(f, m)| m.iter().map(move |m| format!("{f} {m}")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => AdminError::App(other),
        })?;
    Ok(format!(
        "Created admin API key {} ({}) with scopes {}.\nKey (shown only now; store it safely):\n{key}\n",
        record.name,
        record.id,
        record
            .scopes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

/// `tessera admin api-keys list`: every key, live or revoked (never the keys themselves).
pub async fn list_api_keys(state: &AppState) -> Result<String, AdminError> {
    let keys = admin_keys::list(state).await?;
    let rows = keys.iter().map(|k| {
        [
            k.id.to_string(),
            k.name.clone(),
            k.scopes
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" "),
            rfc3339(k.created_at),
            k.revoked_at.map(rfc3339).unwrap_or_else(|| "-".into()),
        ]
    });
    let header = ["ID", "NAME", "SCOPES", "CREATED", "REVOKED"].map(String::from);
    let mut out = table(&[36, 24, 28, 20], std::iter::once(header).chain(rows));
    out.push_str(&format!("{} key(s)\n", keys.len()));
    Ok(out)
}

/// `tessera admin api-keys revoke ID|NAME`: revokes the key with that id, or every live
/// key with that name.
pub async fn revoke_api_key(state: &AppState, which: &str) -> Result<String, AdminError> {
    match admin_keys::revoke(state, which).await? {
        0 => Err(AdminError::Invalid(format!(
            "no live admin API key is named or has the id {which:?}"
        ))),
        n => Ok(format!("Revoked {n} admin API key(s).\n")),
    }
}

/// The file formats `import-totp` reads (the command line's names for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated, with a header row naming the columns.
    Csv,
}

impl From<ImportFormat> for service::authenticators::ImportFormat {
    fn from(format: ImportFormat) -> Self {
        match format {
            ImportFormat::Jsonl => Self::Jsonl,
            ImportFormat::Csv => Self::Csv,
        }
    }
}

use crate::service::authenticators as two_factor_import;

/// `import-totp`: reads `path` (JSON lines or CSV), imports each line in a transaction of
/// its own and reports every line. Returns the report; when any line was refused, the
/// report comes back as [`AdminError::Partial`] (the command exits non-zero).
pub async fn import_totp(
    state: &AppState,
    path: &std::path::Path,
    format: Option<ImportFormat>,
    dry_run: bool,
    operator: &Operator,
) -> Result<String, AdminError> {
    use two_factor_import::ImportResult;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| AdminError::Invalid(format!("reading {}: {e}", path.display())))?,
    );
    let format = format.unwrap_or_else(|| {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            ImportFormat::Csv
        } else {
            ImportFormat::Jsonl
        }
    });
    let (lines, mut outcomes) = two_factor_import::read_import(&text, format.into());
    outcomes.extend(two_factor_import::import(state, lines, dry_run, operator.actor()).await?);
    outcomes.sort_by_key(|o| o.line);
    let mut out = String::new();
    let mut imported = 0;
    for outcome in &outcomes {
        let what = match &outcome.result {
            ImportResult::Imported {
                user_id,
                params,
                enabled_two_factor,
            } => {
                imported += 1;
                format!(
                    "{} ({user_id}; {}, {} digits, {} s{})",
                    if dry_run { "would import" } else { "imported" },
                    params.algorithm.name(),
                    params.digits,
                    params.period,
                    if *enabled_two_factor {
                        "; 2FA switched on"
                    } else {
                        ""
                    }
                )
            }
            ImportResult::Refused(reason) => format!("refused: {reason}"),
        };
        out.push_str(&format!(
            "line {}: {}: {what}\n",
            outcome.line, outcome.user
        ));
    }
    let refused = outcomes.len() - imported;
    out.push_str(&format!(
        "{} line(s): {imported} {}, {refused} refused{}\n",
        outcomes.len(),
        if dry_run {
            "would be imported"
        } else {
            "imported"
        },
        if dry_run {
            " (dry run: nothing stored)"
        } else {
            ""
        }
    ));
    if refused > 0 {
        return Err(AdminError::Partial(out));
    }
    Ok(out)
}

/// `resync-totp`: re-learns the drift of the user's authenticator from two consecutive
/// codes.
pub async fn resync_totp(
    state: &AppState,
    who: &UserRef,
    first: &str,
    second: &str,
    operator: &Operator,
) -> Result<String, AdminError> {
    let user = find_user(state, who).await?;
    let resynced = two_factor_import::resync(
        state,
        user.id,
        first.to_owned(),
        second.to_owned(),
        operator.actor(),
    )
    .await
    .map_err(|e| match e {
        AppError::InvalidCode => AdminError::Invalid(
            "the two codes are not consecutive codes of this authenticator within the resync window, or were used already".into(),
        ),
        AppError::NoAuthenticator => {
            AdminError::Invalid(format!("{} has no confirmed authenticator", user.email))
        }
        AppError::Validation(fields) => AdminError::Invalid(
            fields
                .into_values()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => AdminError::App(other),
    })?;
    Ok(format!(
        "Resynchronised the authenticator of {}: drift {} step(s), was {}.\n",
        user.email, resynced.drift, resynced.previous
    ))
}

/// `keys rotate`: a new current signing key for every instance sharing the database (the
/// prepared one, if any); with `prepare`, only a key published ahead of use.
pub async fn rotate_keys(state: &AppState, prepare: bool) -> Result<String, AdminError> {
    use crate::service::signing_keys;
    if prepare {
        let (kid, new) = signing_keys::prepare(state, None).await?;
        return Ok(if new {
            format!(
                "Prepared signing key {kid}: published in the JWKS now, signing from the next `tessera admin keys rotate`.\n"
            )
        } else {
            format!(
                "Signing key {kid} is prepared already; `tessera admin keys rotate` makes it current.\n"
            )
        });
    }
    let rotation = signing_keys::rotate(state, None).await?;
    let grace = signing_keys::retired_grace_secs(&state.config);
    Ok(format!(
        "Signing key {} is current{}. Retired: {}; still published and accepted for {grace} s (until the last token they signed has expired). Other instances pick the new key up within {} s.\n",
        rotation.kid,
        if rotation.was_prepared {
            " (it was prepared ahead)"
        } else {
            ""
        },
        if rotation.retired.is_empty() {
            "none".to_owned()
        } else {
            rotation.retired.join(", ")
        },
        state.config.signing_key_refresh_secs,
    ))
}

/// `keys list`: every signing key with its state.
pub async fn list_keys(state: &AppState) -> Result<String, AdminError> {
    use crate::service::signing_keys::{self, KeyState};
    let keys = signing_keys::list(state).await?;
    let rows = keys.iter().map(|key| {
        let what = match key.state {
            KeyState::Current => "current".to_owned(),
            KeyState::Prepared => "prepared (published, not signing yet)".to_owned(),
            KeyState::Retired { published_until } => {
                format!("retired, published until {}", rfc3339(published_until))
            }
            KeyState::Expired => "retired, no longer published".to_owned(),
        };
        [
            key.kid.clone(),
            rfc3339(key.created_at),
            key.activated_at.map(rfc3339).unwrap_or_else(|| "-".into()),
            what,
        ]
    });
    let header = ["KID", "CREATED", "ACTIVATED", "STATE"].map(String::from);
    Ok(table(&[16, 20, 20], std::iter::once(header).chain(rows)))
}

/// `tessera admin webhooks list`.
pub async fn webhooks_list(state: &AppState) -> Result<String, AdminError> {
    let channels = service::outbox::channels(state).await?;
    let rows = channels.iter().map(|summary| {
        let c = &summary.channel;
        let counts: Vec<String> = summary
            .counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        [
            c.name.clone(),
            c.kind.to_owned(),
            if c.url.is_empty() {
                "-".to_owned()
            } else {
                c.url.clone()
            },
            c.events.join(","),
            if counts.is_empty() {
                "-".to_owned()
            } else {
                counts.join(", ")
            },
        ]
    });
    let header = ["NAME", "KIND", "URL", "EVENTS", "MESSAGES"].map(String::from);
    let mut out = table(&[20, 8, 40, 30], std::iter::once(header).chain(rows));
    out.push_str(&format!("{} channel(s)\n", channels.len()));
    Ok(out)
}

pub async fn webhooks_deliveries(
    state: &AppState,
    endpoint: Option<&str>,
    limit: i64,
) -> Result<String, AdminError> {
    let messages = service::outbox::deliveries(state, endpoint, limit).await?;
    let rows = messages.iter().map(|d| {
        let when = match d.finished_at {
            Some(t) => rfc3339(t),
            None => format!("next {}", rfc3339(d.next_attempt_at)),
        };
        let error = d.last_error.as_deref().map(|e| format!("; {e}"));
        [
            d.id.to_string(),
            d.channel.clone(),
            d.event_type.clone(),
            d.status.clone(),
            d.attempts.to_string(),
            rfc3339(d.created_at),
            when + &error.unwrap_or_default(),
        ]
    });
    let header = [
        "ID",
        "CHANNEL",
        "EVENT",
        "STATUS",
        "ATTEMPTS",
        "CREATED",
        "NEXT / FINISHED; LAST ERROR",
    ]
    .map(String::from);
    let mut out = table(&[36, 16, 26, 9, 8, 20], std::iter::once(header).chain(rows));
    out.push_str(&format!("{} message(s)\n", messages.len()));
    Ok(out)
}

pub async fn webhooks_replay(state: &AppState, id: Uuid) -> Result<String, AdminError> {
    match service::outbox::replay(state, id).await? {
        None => Err(AdminError::Invalid(format!("no message {id}"))),
        Some(false) => Err(AdminError::Invalid(format!(
            "message {id} is being sent right now; try again in a minute"
        ))),
        Some(true) => Ok(format!(
            "Message {id} is due again; a running server sends it shortly.\n"
        )),
    }
}

pub async fn webhooks_test(state: &AppState, endpoint: &str) -> Result<String, AdminError> {
    match service::outbox::send_test(state, endpoint).await {
        Err(AppError::NotFound) => Err(AdminError::Invalid(format!(
            "no webhook endpoint named {endpoint:?} in the configuration"
        ))),
        Err(err) => Err(err.into()),
        Ok(Ok(status)) => Ok(format!(
            "Test message delivered to {endpoint}: HTTP {status}.\n"
        )),
        Ok(Err(error)) => Err(AdminError::Invalid(format!(
            "test message to {endpoint} not delivered: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::table;

    /// Every line, the header's included, has its cells padded to the column widths and
    /// two spaces apart, the last cell unpadded: the layout the listings always had.
    #[test]
    fn a_table_pads_every_column_but_the_last() {
        let header = ["ID", "NAME", "SCOPES"].map(String::from);
        let row = ["1", "reporting", "users:read"].map(String::from);
        let out = table(&[4, 10], [header, row]);
        assert_eq!(
            out,
            "ID    NAME        SCOPES\n1     reporting   users:read\n"
        );
        assert_eq!(
            out.lines().nth(1),
            Some(format!("{:<4}  {:<10}  {}", "1", "reporting", "users:read").as_str())
        );
    }
}
