//! The operator's TOTP use cases: importing authenticators from another system (users keep
//! the app they already have) and resynchronising one whose clock drifted far.
//!
//! An import is judged line by line, each line in a transaction of its own: a line is
//! stored whole (secret, parameters, last used step, 2FA switched on, events) or not at
//! all, and one bad line does not hold back the good ones. The report says, per line, what
//! was imported or refused and why; a refusal never quotes a secret.

use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::events;
use super::operator::{self, UserRef};
use super::second_factor::{self, totp_aad};
use crate::crypto;
use crate::db::{self, Conn, users::UserRow};
use crate::domain::totp::{self, Algorithm, Params, Totp};
use crate::domain::validate;
use crate::error::AppError;
use crate::state::AppState;

/// The authenticator of one line: an `otpauth://totp/...` URI, or a base32 secret with
/// its parameters (each defaulting to SHA1, 6 digits, 30 seconds).
pub enum Authenticator {
    OtpAuth(Zeroizing<String>),
    Secret {
        base32: Zeroizing<String>,
        algorithm: Option<String>,
        digits: Option<i64>,
        period: Option<i64>,
    },
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authenticator::OtpAuth(_) => f.write_str("OtpAuth([redacted])"),
            Authenticator::Secret { .. } => f.write_str("Secret([redacted])"),
        }
    }
}

/// One parsed line of an import.
#[derive(Debug)]
pub struct ImportLine {
    /// Where it came from (a line number), for the report.
    pub line: u64,
    pub user: UserRef,
    pub authenticator: Authenticator,
    /// The last time step (in the authenticator's own period) already used elsewhere:
    /// codes of that step and earlier are refused here too.
    pub last_step: Option<i64>,
}

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub line: u64,
    /// The account as the line named it.
    pub user: String,
    pub result: ImportResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportResult {
    Imported {
        user_id: Uuid,
        params: Params,
        /// 2FA was off and the import switched it on.
        enabled_two_factor: bool,
    },
    Refused(String),
}

/// The formats of an import: JSON lines, or CSV with a header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Jsonl,
    Csv,
}

/// One line of an import file, in either format. JSON lines use the camelCase names
/// (`userName`, `lastStep`), CSV headers the snake_case ones (`user_name`, `last_step`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRecord {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, alias = "userName")]
    user_name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    otpauth: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    digits: Option<i64>,
    #[serde(default)]
    period: Option<i64>,
    #[serde(default, alias = "lastStep")]
    last_step: Option<i64>,
}

impl Drop for ImportRecord {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(s) = self.otpauth.as_mut() {
            s.zeroize();
        }
        if let Some(s) = self.secret.as_mut() {
            s.zeroize();
        }
    }
}

/// A field CSV left empty is absent.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ImportRecord {
    fn into_line(self, line: u64) -> Result<ImportLine, (String, String)> {
        let named: Vec<UserRef> = [
            present(&self.user).map(|v| UserRef::Any(v.to_owned())),
            present(&self.email).map(|v| UserRef::Email(v.to_owned())),
            present(&self.user_name).map(|v| UserRef::UserName(v.to_owned())),
            present(&self.id).map(|v| match Uuid::parse_str(v) {
                Ok(id) => UserRef::Id(id),
                Err(_) => UserRef::Any(v.to_owned()),
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        let who = named
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".into());
        let refuse = |reason: &str| Err((who.clone(), reason.to_owned()));
        let user = match named.as_slice() {
            [one] => one.clone(),
            [] => return refuse("no account: give one of user, email, user_name or id"),
            _ => return refuse("more than one of user, email, user_name and id"),
        };
        if let Some(UserRef::Any(text)) = present(&self.id).map(|_| &user)
            && Uuid::parse_str(text).is_err()
        {
            return refuse("id is not a UUID");
        }
        let authenticator = match (present(&self.otpauth), present(&self.secret)) {
            (Some(uri), None) => {
                if self.algorithm.is_some() || self.digits.is_some() || self.period.is_some() {
                    return refuse(
                        "algorithm, digits and period go inside the otpauth URI, not beside it",
                    );
                }
                Authenticator::OtpAuth(Zeroizing::new(uri.to_owned()))
            }
            (None, Some(secret)) => Authenticator::Secret {
                base32: Zeroizing::new(secret.to_owned()),
                algorithm: present(&self.algorithm).map(str::to_owned),
                digits: self.digits,
                period: self.period,
            },
            (None, None) => return refuse("no authenticator: give otpauth or secret"),
            (Some(_), Some(_)) => return refuse("both otpauth and secret: give one"),
        };
        Ok(ImportLine {
            line,
            user,
            authenticator,
            last_step: self.last_step,
        })
    }
}

/// Reads an import (a file's text, or a request's body) into lines for [`import`], and
/// the lines already refused while reading, numbered as in the text.
pub fn read_import(text: &str, format: ImportFormat) -> (Vec<ImportLine>, Vec<ImportOutcome>) {
    let mut lines = Vec::new();
    let mut refused = Vec::new();
    let mut take = |line: u64, record: Result<ImportRecord, String>| {
        let parsed = record
            .map_err(|reason| ("-".to_owned(), reason))
            .and_then(|r| r.into_line(line));
        match parsed {
            Ok(parsed) => lines.push(parsed),
            Err((user, reason)) => refused.push(ImportOutcome {
                line,
                user,
                result: ImportResult::Refused(reason),
            }),
        }
    };
    match format {
        ImportFormat::Jsonl => {
            for (index, raw) in text.lines().enumerate() {
                if raw.trim().is_empty() {
                    continue;
                }
                // serde_json's message names the position, never the offending value.
                let record = serde_json::from_str::<ImportRecord>(raw)
                    .map_err(|e| format!("not a valid JSON line: {e}"));
                take(index as u64 + 1, record);
            }
        }
        ImportFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            let headers: csv::StringRecord = match reader.headers() {
                Ok(headers) => headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
                Err(_) => {
                    take(1, Err("the header row is not valid CSV".into()));
                    return (lines, refused);
                }
            };
            let mut row = csv::StringRecord::new();
            loop {
                let line = reader.position().line();
                match reader.read_record(&mut row) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(err) => {
                        let line = err.position().map_or(line, |p| p.line());
                        take(line, Err("not a valid CSV row".into()));
                        // A broken row (bad quoting, a wrong field count) may not end where
                        // it seems to: stop rather than guess.
                        if !matches!(err.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                            break;
                        }
                        continue;
                    }
                }
                let line = row.position().map_or(line, |p| p.line());
                let record = row
                    .deserialize::<ImportRecord>(Some(&headers))
                    .map_err(|e| match e.kind() {
                        csv::ErrorKind::Deserialize { err, .. } => {
                            format!("not a valid CSV row: {}", err.kind())
                        }
                        _ => "not a valid CSV row".to_owned(),
                    });
                take(line, record);
                row.clear();
            }
        }
    }
    (lines, refused)
}

/// Imports `lines` (see the module's description). With `dry_run`, every line is judged
/// and carried out in its transaction exactly as for real, and every transaction rolled
/// back. `actor` (the operator or admin API key, and where it called from) is in each account's
/// `totp_imported` event.
///
/// An imported authenticator switches 2FA on (the account had it in the system it comes
/// from) and issues no backup codes: they would be shown to the operator, not the user,
/// who makes their own once signed in (`POST /v1/auth/2fa/regenerate-backup-codes`).
#[tracing::instrument(skip_all, fields(lines = lines.len(), dry_run))]
pub async fn import(
    state: &AppState,
    lines: Vec<ImportLine>,
    dry_run: bool,
    actor: operator::Actor,
) -> Result<Vec<ImportOutcome>, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let mut outcomes = Vec::with_capacity(lines.len());
        for line in lines {
            let result = match import_line(state, &line, dry_run, &actor).await {
                Ok(result) => result,
                Err(LineError::Refused(reason)) => ImportResult::Refused(reason),
                Err(LineError::App(err)) => {
                    tracing::warn!(line = line.line, error = %err, "importing a TOTP line failed");
                    ImportResult::Refused(format!(
                        "{} (nothing was stored for this line)",
                        match err {
                            AppError::Unavailable => "the database is unavailable",
                            _ => "internal error, see the server log",
                        }
                    ))
                }
            };
            outcomes.push(ImportOutcome {
                line: line.line,
                user: line.user.to_string(),
                result,
            });
        }
        Ok(outcomes)
    })
    .await
}

enum LineError {
    Refused(String),
    App(AppError),
}

impl From<AppError> for LineError {
    fn from(err: AppError) -> Self {
        LineError::App(err)
    }
}

impl From<sqlx::Error> for LineError {
    fn from(err: sqlx::Error) -> Self {
        LineError::App(err.into())
    }
}

fn refuse(reason: impl Into<String>) -> LineError {
    LineError::Refused(reason.into())
}

/// The secret and parameters of a line, checked.
fn read_authenticator(
    authenticator: &Authenticator,
) -> Result<(Zeroizing<Vec<u8>>, Params), LineError> {
    match authenticator {
        Authenticator::OtpAuth(uri) => {
            let parsed = totp::parse_otpauth(uri).map_err(refuse)?;
            Ok((parsed.secret, parsed.params))
        }
        Authenticator::Secret {
            base32,
            algorithm,
            digits,
            period,
        } => {
            let secret = totp::parse_secret(base32).map_err(refuse)?;
            let algorithm = match algorithm {
                Some(name) => Algorithm::from_name(name)
                    .ok_or_else(|| refuse(totp::ParamError::Algorithm.to_string()))?,
                None => Algorithm::Sha1,
            };
            let params = Params::new(
                algorithm,
                digits.unwrap_or(i64::from(totp::DIGITS)),
                period.unwrap_or(totp::PERIOD),
            )
            .map_err(|e| refuse(e.to_string()))?;
            Ok((secret, params))
        }
    }
}

async fn import_line(
    state: &AppState,
    line: &ImportLine,
    dry_run: bool,
    actor: &operator::Actor,
) -> Result<ImportResult, LineError> {
    let now = state.now();
    let (secret, params) = read_authenticator(&line.authenticator)?;
    let current = Totp::with_params(&secret, params).step_at(now);
    let last_step = match line.last_step {
        None => -1,
        Some(step) if step < 0 => return Err(refuse("the last used step must not be negative")),
        Some(step) if step > current + state.config.totp_max_drift_steps => {
            return Err(refuse(format!(
                "the last used step {step} is in the future (the current step is {current} for a period of {} s)",
                params.period
            )));
        }
        Some(step) => step,
    };
    let mut tx = state.db.begin().await?;
    let user = resolve(&mut tx, &line.user).await?;
    let sealed = crypto::seal(&state.keys.master, &totp_aad(user.id), &secret)?;
    if !db::totp::import(&mut tx, user.id, &sealed, params, last_step, now).await? {
        return Err(refuse(
            "the account already has an authenticator (reset its 2FA first to replace it)",
        ));
    }
    let enabled_two_factor = db::users::set_two_factor_enabled(&mut tx, user.id, true, now).await?;
    let imported = json!({
        "algorithm": params.algorithm.name(),
        "digits": params.digits,
        "period": params.period,
    });
    let on = actor.on(user.id, now);
    on.record(state, &mut tx, events::TOTP_IMPORTED, imported)
        .await?;
    if enabled_two_factor {
        let enabled = json!({"method": "totp", "imported": true});
        on.record(state, &mut tx, events::TWO_FACTOR_ENABLED, enabled)
            .await?;
    }
    if !dry_run {
        tx.commit().await?;
    }
    Ok(ImportResult::Imported {
        user_id: user.id,
        params,
        enabled_two_factor,
    })
}

/// The one account `key` names, read through the line's own transaction.
async fn resolve(tx: &mut Conn, key: &UserRef) -> Result<UserRow, LineError> {
    let by_id = |text: &str| Uuid::parse_str(text.trim()).ok();
    let found = match key {
        UserRef::Id(id) => db::users::find_by_id(tx, *id).await?,
        UserRef::Email(email) => db::users::find_by_email(tx, &validate::email_key(email)).await?,
        UserRef::UserName(name) => {
            db::users::find_by_user_name(tx, &validate::user_name_key(name.trim())).await?
        }
        UserRef::Any(text) => {
            let mut matches: Vec<UserRow> = Vec::new();
            if let Some(id) = by_id(text)
                && let Some(row) = db::users::find_by_id(tx, id).await?
            {
                matches.push(row);
            }
            if let Some(row) = db::users::find_by_email(tx, &validate::email_key(text)).await? {
                matches.push(row);
            }
            if let Some(row) =
                db::users::find_by_user_name(tx, &validate::user_name_key(text.trim())).await?
            {
                matches.push(row);
            }
            if matches.iter().any(|row| row.id != matches[0].id) {
                return Err(refuse(
                    "it names more than one account; name it by id, email or user name",
                ));
            }
            matches.into_iter().next()
        }
    };
    found.ok_or_else(|| refuse("no such account"))
}

/// What a resync learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resynced {
    /// The drift before, in steps.
    pub previous: i64,
    /// The drift now, in steps.
    pub drift: i64,
}

/// Re-learns the clock drift of an account's authenticator from two consecutive codes
/// (RFC 6238 section 6), searched within `totp_resync_window_secs` either side of now.
/// The second code's step is claimed as used, so neither code can sign in afterwards.
/// Refused (`InvalidCode`) when no pair of consecutive steps matches (or more than one
/// does) or the codes were used already; a drift beyond `totp_max_drift_steps` is refused
/// too, as the window could not follow it. `actor` (who, and from where) is in the
/// `totp_drift_changed` event.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn resync(
    state: &AppState,
    user_id: Uuid,
    first: String,
    second: String,
    actor: operator::Actor,
) -> Result<Resynced, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        let credential = db::totp::find(&mut tx, user_id)
            .await?
            .filter(|c| c.secret_enc.is_some())
            .ok_or(AppError::NoAuthenticator)?;
        let params = second_factor::stored_params(&credential)?;
        let sealed = credential.secret_enc.as_deref().unwrap_or_default();
        let secret = crypto::open(&state.keys.master, &totp_aad(user_id), sealed)?;
        let totp = Totp::with_params(&secret, params);
        let first = digits_only(&first);
        let second = digits_only(&second);
        let step = totp::resync_step(
            &totp,
            &first,
            &second,
            now,
            state.config.totp_resync_window_secs,
        )
        .ok_or(AppError::InvalidCode)?;
        let offset = step + 1 - totp.step_at(now);
        let max = state.config.totp_max_drift_steps;
        if offset.abs() > max {
            return Err(AppError::field(
                "codes",
                &format!(
                    "the authenticator is {offset} steps off, beyond totp_max_drift_steps ({max}): set its clock right"
                ),
            ));
        }
        if !db::totp::claim_step(&mut tx, user_id, step + 1, offset).await? {
            // These codes (or later ones) were used already.
            return Err(AppError::InvalidCode);
        }
        let drift = json!({"previousSteps": credential.drift, "driftSteps": offset, "reason": "resync"});
        let on = actor.on(user_id, now);
        on.record(state, &mut tx, events::TOTP_DRIFT_CHANGED, drift)
            .await?;
        tx.commit().await?;
        Ok(Resynced {
            previous: credential.drift,
            drift: offset,
        })
    })
    .await
}

/// A code as typed, spaces dropped.
fn digits_only(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}
