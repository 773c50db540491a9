//! Passkeys (WebAuthn): registering them, listing, renaming and removing them, using one as
//! the second step of a password login, and signing in with one alone.
//!
//! Every ceremony is a row of `webauthn_ceremonies` that expires after
//! [`CEREMONY_TTL_SECS`] and is taken out by one conditional `DELETE ... RETURNING`, so any
//! instance can finish a ceremony another began, and a replayed response finds nothing.

use secrecy::SecretString;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, Credential, DiscoverableAuthentication,
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::accounts::{self, Account};
use super::sessions::IssuedTokens;
use super::{Principal, RequestContext, events, second_factor, two_factor};
use crate::db::{self, Conn, passkeys::PasskeyRow};
use crate::domain::second_factor::SecondFactorCode;
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::amr;
use crate::webauthn::CEREMONY_TTL_SECS;

/// What a ceremony row was started for.
mod kind {
    pub const REGISTRATION: &str = "registration";
    pub const SECOND_FACTOR: &str = "second_factor";
    pub const PASSWORDLESS: &str = "passwordless";
}

/// The binding of every passwordless ceremony: anyone may finish one, with an assertion.
const PASSWORDLESS_BINDING: &[u8] = b"passwordless";

/// The name a passkey gets when none is given.
pub const DEFAULT_NAME: &str = "Passkey";
/// The longest passkey name, in characters.
pub const MAX_NAME: usize = 100;

/// A started ceremony: the options for the browser's `navigator.credentials` call, and the
/// id to finish it with.
#[derive(Debug)]
pub struct Started<O> {
    pub ceremony_id: Uuid,
    pub options: O,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The authenticator may sync this passkey to other devices (it is backup eligible).
    pub backup_eligible: bool,
    /// The passkey is backed up or synced now.
    pub backed_up: bool,
    /// The authenticator model, where the authenticator said.
    pub aaguid: Option<Uuid>,
    /// Refused for good: its signature counter went backwards (a possible clone).
    pub disabled: bool,
}

impl From<PasskeyRow> for PasskeyInfo {
    fn from(row: PasskeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            backup_eligible: row.backup_eligible,
            backed_up: row.backed_up,
            aaguid: row.aaguid.filter(|a| !a.is_nil()),
            disabled: row.disabled_at.is_some(),
        }
    }
}

/// A browser's answer to a started authentication ceremony.
#[derive(Debug)]
pub struct Assertion {
    pub ceremony_id: Uuid,
    pub credential: PublicKeyCredential,
}

/// A passkey that was accepted: whether it is synced decides its `amr` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    pub synced: bool,
}

impl Used {
    /// RFC 8176: `swk` for a key that may leave the device (a synced passkey), `hwk` for
    /// one bound to its authenticator.
    pub fn key_amr(self) -> &'static str {
        if self.synced {
            amr::SOFTWARE_KEY
        } else {
            amr::HARDWARE_KEY
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(AppError::internal)
}

fn stored<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, AppError> {
    serde_json::from_str(json).map_err(AppError::internal)
}

/// Stores the relying party's state of a ceremony of `kind` (bound to `binding`) as a row
/// that lives [`CEREMONY_TTL_SECS`], and hands the browser's `options` back with the id to
/// finish it with.
async fn start_ceremony<O>(
    tx: &mut Conn,
    kind: &str,
    binding: &[u8],
    user_id: Option<Uuid>,
    ceremony: &impl serde::Serialize,
    options: O,
    now: i64,
) -> Result<Started<O>, AppError> {
    let id = Uuid::new_v4();
    let expires_at = now + CEREMONY_TTL_SECS;
    let state = to_json(ceremony)?;
    db::ceremonies::insert(
        tx,
        &db::ceremonies::NewCeremony {
            id,
            kind,
            binding,
            user_id,
            state: &state,
            now,
            expires_at,
        },
    )
    .await?;
    Ok(Started {
        ceremony_id: id,
        options,
        expires_at,
    })
}

/// Starts registering a passkey. A change to how the account signs in, so it needs what
/// enrolling TOTP needs: with two-factor authentication on, a fresh second factor (from the
/// sign-in, or `code` now); otherwise a recent sign-in or the `password`. Credentials the
/// account already has are excluded, so one authenticator is not registered twice. The
/// ceremony is bound to the caller's session.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn start_registration(
    state: &AppState,
    principal: Principal,
    password: Option<SecretString>,
    code: Option<SecondFactorCode>,
    ctx: RequestContext,
) -> Result<Started<CreationChallengeResponse>, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let user = accounts::reload_row(state, principal.user_id).await?;
        let mut tx = if user.two_factor_enabled {
            let tx = state.db.begin().await?;
            second_factor::require_fresh(state, tx, &principal, code.as_ref(), &ctx).await?
        } else {
            two_factor::require_recent_authentication(
                state,
                &principal,
                &user,
                password.as_ref(),
                &ctx,
            )
            .await?;
            state.db.begin().await?
        };
        let started =
            begin_registration(state, &mut tx, &user, principal.session_id.as_bytes()).await?;
        tx.commit().await?;
        Ok(started)
    })
    .await
}

/// `start_registration` for a login that must enrol a second factor first
/// (`requiresEnrollment`): its enrolment token stands for the recent authentication, and
/// the ceremony is bound to it.
#[tracing::instrument(skip_all)]
pub async fn start_registration_by_enrolment(
    state: &AppState,
    token: String,
) -> Result<Started<CreationChallengeResponse>, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let user = two_factor::enrolment_user(state, &token).await?;
        let mut tx = state.db.begin().await?;
        let binding = crate::crypto::token_hash(&token);
        let started = begin_registration(state, &mut tx, &user, &binding).await?;
        tx.commit().await?;
        Ok(started)
    })
    .await
}

/// The ceremony of a registration for `user`, bound to `binding` (what alone may finish
/// it), excluding the account's passkeys; in the caller's transaction.
async fn begin_registration(
    state: &AppState,
    tx: &mut Conn,
    user: &db::users::UserRow,
    binding: &[u8],
) -> Result<Started<CreationChallengeResponse>, AppError> {
    let now = state.now();
    let exclude = db::passkeys::for_user(tx, user.id)
        .await?
        .into_iter()
        .map(|p| p.credential_id)
        .collect();
    let handle = db::passkeys::user_handle(tx, user.id, Uuid::new_v4())
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (mut options, registration) = state
        .relying_party
        .webauthn
        .start_passkey_registration(handle, &user.email, &user.user_name, Some(exclude))
        .map_err(AppError::internal)?;
    // Ask for a discoverable credential (usable without a user name) where the
    // authenticator can make one; it is not required, so security keys without room for
    // one still work as a second factor.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Preferred);
    }
    start_ceremony(
        tx,
        kind::REGISTRATION,
        binding,
        Some(user.id),
        &registration,
        options,
        now,
    )
    .await
}

/// A registered passkey; the backup codes when it was the account's first second factor
/// (shown this once).
#[derive(Debug)]
pub struct Registered {
    pub passkey: PasskeyInfo,
    pub backup_codes: Option<Vec<String>>,
}

/// Finishes a registration begun by the same session: checks the authenticator's answer,
/// stores the passkey and, when it is the account's first second factor, turns two-factor
/// authentication on and issues backup codes. A refused answer uses the ceremony up.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn finish_registration(
    state: &AppState,
    principal: Principal,
    ceremony_id: Uuid,
    credential: RegisterPublicKeyCredential,
    name: Option<String>,
    ctx: RequestContext,
) -> Result<Registered, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let mut tx = state.db.begin().await?;
        let binding = principal.session_id.as_bytes();
        let registered = match store_registration(
            state,
            &mut tx,
            ceremony_id,
            binding,
            &credential,
            name,
            &ctx,
        )
        .await?
        {
            Ok(registered) => registered,
            Err(refusal) => return super::commit_refusal(tx, refusal).await,
        };
        tx.commit().await?;
        Ok(registered)
    })
    .await
}

/// A login that had to enrol, completed with a passkey: the passkey, the backup codes
/// (always: it is the account's first second factor) and the session.
pub struct EnrolledWithPasskey {
    pub registered: Registered,
    pub tokens: IssuedTokens,
    pub user: Account,
}

/// `finish_registration` for a login that must enrol first: stores the passkey, turns
/// two-factor authentication on, spends the enrolment token and signs in (`amr`: the
/// password, the key, `mfa`), all in one transaction that runs to its end.
#[tracing::instrument(skip_all)]
pub async fn finish_registration_by_enrolment(
    state: &AppState,
    token: String,
    ceremony_id: Uuid,
    credential: RegisterPublicKeyCredential,
    name: Option<String>,
    ctx: RequestContext,
) -> Result<EnrolledWithPasskey, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let binding = crate::crypto::token_hash(&token);
        let mut tx = state.db.begin().await?;
        let registered = match store_registration(
            state,
            &mut tx,
            ceremony_id,
            &binding,
            &credential,
            name,
            &ctx,
        )
        .await?
        {
            Ok(registered) => registered,
            Err(refusal) => return super::commit_refusal(tx, refusal).await,
        };
        let Some(user_id) = db::challenges::spend(
            &mut tx,
            &binding,
            db::challenges::ENROLMENT,
            now,
            state.config.two_factor_token_max_failures,
        )
        .await?
        else {
            // The token was spent or expired since the ceremony began: nothing is kept.
            return Err(AppError::Unauthenticated);
        };
        // The same rule as every later use of the passkey: backup eligible means synced.
        let key = Used {
            synced: registered.passkey.backup_eligible,
        }
        .key_amr();
        let (tokens, user) =
            two_factor::sign_in_enrolled(state, tx, user_id, key, "passkey", &ctx).await?;
        Ok(EnrolledWithPasskey {
            registered,
            tokens,
            user,
        })
    })
    .await
}

/// The common part of finishing a registration, in the caller's transaction: takes the
/// ceremony (bound to `binding`), checks the answer and stores the passkey, turning 2FA on
/// with backup codes when it is the account's first second factor. `Ok(Err(_))` is a
/// refusal after the ceremony was taken: the caller commits, so it cannot be tried again.
async fn store_registration(
    state: &AppState,
    tx: &mut Conn,
    ceremony_id: Uuid,
    binding: &[u8],
    credential: &RegisterPublicKeyCredential,
    name: Option<String>,
    ctx: &RequestContext,
) -> Result<Result<Registered, AppError>, AppError> {
    let now = state.now();
    let name = name.unwrap_or_else(|| DEFAULT_NAME.to_owned());
    let (codes, hashes) = two_factor::new_backup_codes(state);
    let ceremony = db::ceremonies::consume(tx, ceremony_id, kind::REGISTRATION, binding, now)
        .await?
        .ok_or(AppError::InvalidCeremony)?;
    let user_id = ceremony.user_id.ok_or(AppError::InvalidCeremony)?;
    let registration: PasskeyRegistration = stored(&ceremony.state)?;
    let rp = &state.relying_party;
    let passkey = match rp
        .webauthn
        .finish_passkey_registration(credential, &registration)
    {
        Ok(passkey) => passkey,
        Err(err) => {
            tracing::info!(error = %err, "passkey registration refused");
            return Ok(Err(AppError::InvalidPasskey));
        }
    };
    let aaguid = crate::domain::webauthn::aaguid(&credential.response.attestation_object);
    if !rp.allowed_aaguids.is_empty() && !aaguid.is_some_and(|a| rp.allowed_aaguids.contains(&a)) {
        return Ok(Err(AppError::AuthenticatorNotAllowed));
    }
    let stored_credential: Credential = passkey.clone().into();
    let id = Uuid::new_v4();
    let inserted = db::passkeys::insert(
        tx,
        &db::passkeys::NewPasskey {
            id,
            user_id,
            credential_id: &stored_credential.cred_id,
            name: &name,
            credential: &to_json(&passkey)?,
            sign_count: i64::from(stored_credential.counter),
            backup_eligible: stored_credential.backup_eligible,
            backed_up: stored_credential.backup_state,
            aaguid,
            now,
        },
    )
    .await?;
    if !inserted {
        return Ok(Err(AppError::AlreadyExists("passkey")));
    }
    let on = events::Occasion::new(user_id, now, Some(ctx));
    let first_factor = db::users::enable_two_factor(tx, user_id, now).await?;
    if first_factor {
        db::backup_codes::replace_all(tx, user_id, &hashes, now).await?;
        two_factor::record_enabled(state, tx, on, "passkey").await?;
    }
    let registered = serde_json::json!({"passkeyId": id, "name": name});
    on.record(state, tx, events::PASSKEY_REGISTERED, registered)
        .await?;
    let row = db::passkeys::by_credential(tx, user_id, &stored_credential.cred_id)
        .await?
        .ok_or_else(|| AppError::internal("the passkey just stored is missing"))?;
    Ok(Ok(Registered {
        passkey: row.into(),
        backup_codes: first_factor.then_some(codes),
    }))
}

/// The account's passkeys, oldest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn list(state: &AppState, user_id: Uuid) -> Result<Vec<PasskeyInfo>, AppError> {
    let mut conn = state.db.read().await?;
    let rows = db::passkeys::for_user(&mut conn, user_id).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Renames one of the account's passkeys.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn rename(
    state: &AppState,
    principal: Principal,
    id: Uuid,
    name: String,
) -> Result<PasskeyInfo, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let mut tx = state.db.begin().await?;
        if !db::passkeys::rename(&mut tx, principal.user_id, id, &name).await? {
            return Err(AppError::NotFound);
        }
        let row = db::passkeys::for_user(&mut tx, principal.user_id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(AppError::NotFound)?;
        tx.commit().await?;
        Ok(row.into())
    })
    .await
}

/// Removes one of the account's passkeys: a sensitive change (a fresh second factor, from
/// the sign-in or `code` now). Removing the account's last second factor (no other usable
/// passkey, no TOTP authenticator) turns two-factor authentication off as
/// `POST /2fa/disable` does: backup codes and trusted devices go, other sessions end.
/// Returns whether two-factor authentication is still on.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn remove(
    state: &AppState,
    principal: Principal,
    id: Uuid,
    code: Option<SecondFactorCode>,
    ctx: RequestContext,
) -> Result<bool, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let user_id = principal.user_id;
        let tx = state.db.begin().await?;
        let mut tx =
            second_factor::require_fresh(state, tx, &principal, code.as_ref(), &ctx).await?;
        // Whether this was the last second factor is read below: on PostgreSQL two
        // removals of an account's last two passkeys must take turns, or each could see
        // the other's passkey still there and leave 2FA on with none.
        db::users::lock_row(&mut tx, user_id).await?;
        if !db::passkeys::delete(&mut tx, user_id, id).await? {
            return Err(AppError::NotFound);
        }
        let on = events::Occasion::new(user_id, now, Some(&ctx));
        let removed = serde_json::json!({"passkeyId": id});
        on.record(state, &mut tx, events::PASSKEY_REMOVED, removed)
            .await?;
        let passkeys_left = db::passkeys::count_enabled(&mut tx, user_id).await?;
        let totp = db::totp::find(&mut tx, user_id)
            .await?
            .is_some_and(|t| t.secret_enc.is_some());
        let enabled = db::users::two_factor_enabled(&mut tx, user_id)
            .await?
            .unwrap_or(false);
        let still_on = if enabled && passkeys_left == 0 && !totp {
            two_factor::delete_second_factors(&mut tx, user_id).await?;
            let why = serde_json::json!({"reason": "last_passkey_removed"});
            two_factor::turned_off(state, &mut tx, on, principal.session_id, why).await?;
            false
        } else {
            enabled
        };
        tx.commit().await?;
        Ok(still_on)
    })
    .await
}

/// Starts the passkey second step of a login: a challenge for the account's usable
/// passkeys, bound to the `twoFactorToken` (which is not spent: the finish spends it).
#[tracing::instrument(skip_all)]
pub async fn start_second_step(
    state: &AppState,
    challenge_token: String,
) -> Result<Started<RequestChallengeResponse>, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let hash = crate::crypto::token_hash(&challenge_token);
        let max_failures = state.config.two_factor_token_max_failures;
        let mut tx = state.db.begin().await?;
        let purpose = db::challenges::SECOND_FACTOR;
        let user_id = db::challenges::find_live(&mut tx, &hash, purpose, now, max_failures)
            .await?
            .ok_or(AppError::InvalidTwoFactorToken)?
            .user_id;
        let passkeys = usable_passkeys(&mut tx, user_id).await?;
        if passkeys.is_empty() {
            return Err(AppError::NoPasskey);
        }
        let (options, authentication) = state
            .relying_party
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(AppError::internal)?;
        let started = start_ceremony(
            &mut tx,
            kind::SECOND_FACTOR,
            &hash,
            Some(user_id),
            &authentication,
            options,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(started)
    })
    .await
}

async fn usable_passkeys(tx: &mut Conn, user_id: Uuid) -> Result<Vec<Passkey>, AppError> {
    db::passkeys::for_user(tx, user_id)
        .await?
        .into_iter()
        .filter(|p| p.disabled_at.is_none())
        .map(|p| stored::<Passkey>(&p.credential))
        .collect()
}

/// The passkey check of a second step, inside the login's transaction (see
/// [`second_factor`]): takes the ceremony bound to the `twoFactorToken` (`binding`) out,
/// and judges the assertion. `Ok(None)` is a wrong answer, to be counted like a wrong code;
/// an unknown, expired or used ceremony is an error that judges nothing.
pub(super) async fn check_second_step(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    binding: &[u8],
    assertion: &Assertion,
    ctx: &RequestContext,
) -> Result<Option<Used>, AppError> {
    let now = state.now();
    let ceremony =
        db::ceremonies::consume(tx, assertion.ceremony_id, kind::SECOND_FACTOR, binding, now)
            .await?
            .ok_or(AppError::InvalidCeremony)?;
    if ceremony.user_id != Some(user_id) {
        return Err(AppError::InvalidCeremony);
    }
    let authentication: PasskeyAuthentication = stored(&ceremony.state)?;
    let Some(row) = db::passkeys::by_credential(tx, user_id, &assertion.credential.raw_id).await?
    else {
        return Ok(None);
    };
    if row.disabled_at.is_some() {
        return Ok(None);
    }
    let result = state
        .relying_party
        .webauthn
        .finish_passkey_authentication(&assertion.credential, &authentication);
    record_use(state, tx, &row, result, ctx).await
}

/// Applies the relying party's verdict on an assertion by the stored passkey `row`: a
/// success moves the counter forward and updates the flags (one conditional statement); a
/// counter that went backwards disables the passkey and records a security event.
async fn record_use(
    state: &AppState,
    tx: &mut Conn,
    row: &PasskeyRow,
    result: Result<AuthenticationResult, WebauthnError>,
    ctx: &RequestContext,
) -> Result<Option<Used>, AppError> {
    let now = state.now();
    let result = match result {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            disable_cloned(state, tx, row, ctx).await?;
            return Ok(None);
        }
        Err(err) => {
            tracing::info!(error = %err, "passkey assertion refused");
            return Ok(None);
        }
    };
    let mut passkey: Passkey = stored(&row.credential)?;
    passkey.update_credential(&result);
    let moved_on = db::passkeys::record_use(
        tx,
        row.id,
        i64::from(result.counter()),
        result.backup_eligible(),
        result.backup_state(),
        &to_json(&passkey)?,
        now,
    )
    .await?;
    if !moved_on {
        // Another use with this counter or a later one was recorded meanwhile: two
        // authenticators are answering with the same key.
        disable_cloned(state, tx, row, ctx).await?;
        return Ok(None);
    }
    Ok(Some(Used {
        synced: result.backup_eligible(),
    }))
}

async fn disable_cloned(
    state: &AppState,
    tx: &mut Conn,
    row: &PasskeyRow,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let now = state.now();
    if db::passkeys::disable(tx, row.id, now).await? {
        tracing::warn!(user_id = %row.user_id, passkey_id = %row.id, "passkey counter went backwards; passkey disabled");
        let disabled = serde_json::json!({"passkeyId": row.id, "reason": "counter_regression"});
        events::Occasion::new(row.user_id, now, Some(ctx))
            .record(state, tx, events::PASSKEY_DISABLED, disabled)
            .await?;
    }
    Ok(())
}

/// Starts a passwordless sign-in: a challenge for any discoverable passkey of this site.
#[tracing::instrument(skip_all)]
pub async fn start_passwordless(
    state: &AppState,
) -> Result<Started<RequestChallengeResponse>, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let (options, authentication) = state
            .relying_party
            .webauthn
            .start_discoverable_authentication()
            .map_err(AppError::internal)?;
        let mut tx = state.db.begin().await?;
        let started = start_ceremony(
            &mut tx,
            kind::PASSWORDLESS,
            PASSWORDLESS_BINDING,
            None,
            &authentication,
            options,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(started)
    })
    .await
}

/// Finishes a passwordless sign-in: the passkey names its account (by the random user
/// handle), user verification is required, and the session's `amr` says so:
/// `hwk` or `swk`, `user` and `mfa` (see [`amr`]). Such a sign-in is a fresh second factor.
#[tracing::instrument(skip_all)]
pub async fn finish_passwordless(
    state: &AppState,
    assertion: Assertion,
    ctx: RequestContext,
) -> Result<(IssuedTokens, Account), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        let ceremony = db::ceremonies::consume(
            &mut tx,
            assertion.ceremony_id,
            kind::PASSWORDLESS,
            PASSWORDLESS_BINDING,
            now,
        )
        .await?
        .ok_or(AppError::InvalidCeremony)?;
        let authentication: DiscoverableAuthentication = stored(&ceremony.state)?;
        let used =
            match passwordless_check(state, &mut tx, &assertion, authentication, &ctx).await? {
                Some(found) => found,
                // The ceremony is used up, and a disabled clone stays disabled.
                None => return super::commit_refusal(tx, AppError::InvalidPasskey).await,
            };
        let (user_id, used) = used;
        let amr = vec![used.key_amr().into(), amr::USER.into(), amr::MFA.into()];
        let details = serde_json::json!({"method": "passkey"});
        let signed_in =
            accounts::sign_in_in(state, &mut tx, user_id, amr, details, None, None, &ctx).await?;
        tx.commit().await?;
        state
            .metrics
            .increment("tessera_logins_total", &[("outcome", "passkey")]);
        signed_in.issue(state)
    })
    .await
}

async fn passwordless_check(
    state: &AppState,
    tx: &mut Conn,
    assertion: &Assertion,
    authentication: DiscoverableAuthentication,
    ctx: &RequestContext,
) -> Result<Option<(Uuid, Used)>, AppError> {
    let webauthn = &state.relying_party.webauthn;
    let Ok((handle, credential_id)) =
        webauthn.identify_discoverable_authentication(&assertion.credential)
    else {
        return Ok(None);
    };
    let Some(user_id) = db::passkeys::user_by_handle(tx, handle).await? else {
        return Ok(None);
    };
    let Some(row) = db::passkeys::by_credential(tx, user_id, credential_id).await? else {
        return Ok(None);
    };
    if row.disabled_at.is_some() {
        return Ok(None);
    }
    let passkey: Passkey = stored(&row.credential)?;
    let result = webauthn.finish_discoverable_authentication_v2(
        &assertion.credential,
        authentication,
        &passkey,
    );
    Ok(record_use(state, tx, &row, result, ctx)
        .await?
        .map(|used| (user_id, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synced_passkey_is_a_software_key_and_a_device_bound_one_a_hardware_key() {
        assert_eq!(Used { synced: true }.key_amr(), "swk");
        assert_eq!(Used { synced: false }.key_amr(), "hwk");
    }
}
