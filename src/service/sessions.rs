//! Sessions: issuing access and refresh tokens, rotating refresh tokens with theft
//! detection, logout, and turning a bearer token back into a [`Principal`].

use uuid::Uuid;

use super::accounts::Account;
use super::{Principal, RequestContext, events};
use crate::crypto;
use crate::db::{self, Conn};
use crate::error::AppError;
use crate::state::AppState;

/// What a successful sign-in or refresh hands the client.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_token_expires_at: i64,
    pub session_id: Uuid,
}

/// A session written in a transaction, whose access token is signed after the commit.
pub struct Started {
    session_id: Uuid,
    refresh_token: String,
    expires_at: i64,
    amr: Vec<String>,
    auth_time: i64,
}

impl Started {
    pub fn issue(self, state: &AppState, user_id: Uuid) -> Result<IssuedTokens, AppError> {
        let access_token = state.signer.sign(
            user_id,
            self.session_id,
            self.amr,
            self.auth_time,
            self.auth_time,
        )?;
        Ok(IssuedTokens {
            access_token,
            expires_in: state.signer.ttl_secs(),
            refresh_token: self.refresh_token,
            refresh_token_expires_at: self.expires_at,
            session_id: self.session_id,
        })
    }
}

/// Starts a new session for `user` in the caller's transaction, with its first refresh
/// token.
pub async fn start(
    state: &AppState,
    tx: &mut Conn,
    user_id: Uuid,
    amr: Vec<String>,
    ctx: &RequestContext,
) -> Result<Started, AppError> {
    let now = state.now();
    let session_id = Uuid::new_v4();
    let expires_at = now + state.config.refresh_token_ttl_secs;
    let amr_text = amr.join(" ");
    let family = crypto::refresh_family();
    db::sessions::insert(
        tx,
        &db::sessions::NewSession {
            id: session_id,
            user_id,
            now,
            auth_time: now,
            amr: &amr_text,
            expires_at,
            ip_address: &ctx.ip,
            user_agent: ctx.user_agent.as_deref(),
            refresh_family: &family,
        },
    )
    .await?;
    let refresh_token = crypto::refresh_token(&family);
    db::sessions::insert_refresh_token(tx, &crypto::token_hash(&refresh_token), session_id, now)
        .await?;
    Ok(Started {
        session_id,
        refresh_token,
        expires_at,
        amr,
        auth_time: now,
    })
}

/// Exchanges a refresh token for a new pair, in one transaction that runs to its end
/// even if the request is dropped. The old token is retired in the same statement that
/// checks it, so of many concurrent uses exactly one wins. Presenting a retired token
/// revokes its whole session (someone is replaying a stolen token), except for one more
/// exchange within `refresh_reuse_grace_secs` of its retirement (a client that raced its
/// own refresh).
#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: &AppState,
    refresh_token: String,
    ctx: RequestContext,
) -> Result<(IssuedTokens, Account), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        refresh_unit(state, &refresh_token, &ctx).await
    })
    .await
}

async fn refresh_unit(
    state: &AppState,
    refresh_token: &str,
    ctx: &RequestContext,
) -> Result<(IssuedTokens, Account), AppError> {
    let now = state.now();
    let hash = crypto::token_hash(refresh_token);
    let grace = state.config.refresh_reuse_grace_secs;
    let mut tx = state.db.begin().await?;
    let mut outcome = "success";
    let session_id = match db::sessions::consume_refresh_token(&mut tx, &hash, now).await? {
        Some(session_id) => session_id,
        None => {
            let graced = if grace > 0 {
                db::sessions::consume_within_grace(&mut tx, &hash, now, grace).await?
            } else {
                None
            };
            match graced {
                Some(session_id) => {
                    outcome = "grace";
                    session_id
                }
                None => {
                    revoke_on_reuse(state, &mut tx, refresh_token, now, ctx).await?;
                    return super::commit_refusal(tx, AppError::InvalidRefreshToken).await;
                }
            }
        }
    };
    let Some(found) = db::sessions::find_active_with_user(&mut tx, session_id, now).await? else {
        return Err(AppError::InvalidRefreshToken);
    };
    let family = match found.session_refresh_family {
        Some(family) => family,
        None => {
            let new = crypto::refresh_family();
            db::sessions::give_refresh_family(&mut tx, session_id, &new).await?
        }
    };
    let family = <[u8; 16]>::try_from(family.as_slice()).map_err(AppError::internal)?;
    let new_token = crypto::refresh_token(&family);
    db::sessions::insert_refresh_token(&mut tx, &crypto::token_hash(&new_token), session_id, now)
        .await?;
    db::sessions::forget_retired_refresh_tokens(&mut tx, session_id, now, grace).await?;
    tx.commit().await?;
    state
        .metrics
        .increment("tessera_refreshes_total", &[("outcome", outcome)]);
    let amr: Vec<String> = found
        .session_amr
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let user = found.user;
    let access_token = state
        .signer
        .sign(user.id, session_id, amr, found.session_auth_time, now)?;
    Ok((
        IssuedTokens {
            access_token,
            expires_in: state.signer.ttl_secs(),
            refresh_token: new_token,
            refresh_token_expires_at: found.session_expires_at,
            session_id,
        },
        Account::from(user),
    ))
}

/// The session a refresh token belongs to, live or retired: by its row while it has one,
/// else by the family it starts with.
async fn session_of(tx: &mut Conn, refresh_token: &str) -> Result<Option<Uuid>, AppError> {
    let hash = crypto::token_hash(refresh_token);
    if let Some(session_id) = db::sessions::session_of_refresh_token(tx, &hash).await? {
        return Ok(Some(session_id));
    }
    match crypto::refresh_token_family(refresh_token) {
        Some(family) => Ok(db::sessions::session_of_refresh_family(tx, &family).await?),
        None => Ok(None),
    }
}

/// A retired (or unknown) refresh token was presented: if it belongs to a live session,
/// that session is revoked and the owner told.
async fn revoke_on_reuse(
    state: &AppState,
    tx: &mut Conn,
    refresh_token: &str,
    now: i64,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let Some(session_id) = session_of(tx, refresh_token).await? else {
        return Ok(());
    };
    let Some(session) = db::sessions::find_active(tx, session_id, now).await? else {
        return Ok(());
    };
    db::sessions::revoke(tx, session_id, now).await?;
    let revoked = serde_json::json!({"sessionRevoked": true});
    events::Occasion::new(session.user_id, now, Some(ctx))
        .record(state, tx, events::REFRESH_TOKEN_REUSED, revoked)
        .await?;
    tracing::warn!(session_id = %session_id, "retired refresh token presented; session revoked");
    state
        .metrics
        .increment("tessera_refreshes_total", &[("outcome", "reuse_detected")]);
    Ok(())
}

/// Ends the caller's session (and, if given, the session of `refresh_token` when it is
/// the same user's), in one transaction that runs to its end.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn logout(
    state: &AppState,
    principal: Principal,
    refresh_token: Option<String>,
    ctx: RequestContext,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        db::sessions::revoke(&mut tx, principal.session_id, now).await?;
        if let Some(token) = refresh_token
            && let Some(session_id) = session_of(&mut tx, &token).await?
            && let Some(session) = db::sessions::find_active(&mut tx, session_id, now).await?
            && session.user_id == principal.user_id
        {
            db::sessions::revoke(&mut tx, session_id, now).await?;
        }
        events::Occasion::new(principal.user_id, now, Some(&ctx))
            .record(state, &mut tx, events::LOGGED_OUT, serde_json::json!({}))
            .await?;
        tx.commit().await
    })
    .await
}

/// Verifies a bearer access token and that its session is still live, so logout,
/// password changes and revocations take effect immediately, not at token expiry.
pub async fn authenticate(state: &AppState, bearer: &str) -> Result<Principal, AppError> {
    let now = state.now();
    let principal = verify_token(state, bearer).await?;
    let mut conn = state.db.read().await?;
    db::sessions::find_active(&mut conn, principal.session_id, now)
        .await?
        .filter(|s| s.user_id == principal.user_id)
        .ok_or(AppError::Unauthenticated)?;
    Ok(principal)
}

/// The principal a bearer access token names, from its signature alone: the session is
/// NOT checked, so the caller must check it in its own query (as `status` does, to answer
/// in one round trip). Anything else uses [`authenticate`]. A token signed with a key this
/// instance does not know yet (a rotation elsewhere) has the keys re-read once.
pub async fn verify_token(state: &AppState, bearer: &str) -> Result<Principal, AppError> {
    let claims = match state.signer.verify_cached(bearer, state.now()) {
        Ok(claims) => claims,
        Err(err) => {
            if !super::signing_keys::refresh_for(state, bearer).await? {
                return Err(err);
            }
            state.signer.verify_cached(bearer, state.now())?
        }
    };
    Ok(Principal {
        user_id: claims.sub,
        session_id: claims.sid,
        amr: claims.amr.clone(),
        auth_time: claims.auth_time,
    })
}

/// Ends everything granted under the account's current credentials, in the caller's
/// transaction: every pending second step (a `twoFactorToken` on either surface), every
/// session but `keep` and every trusted device, recording why when there was one to end.
/// What a password change, turning 2FA off, an admin reset and disabling an account share.
/// Returns how many sessions were live.
pub async fn revoke_granted(
    state: &AppState,
    tx: &mut Conn,
    on: events::Occasion<'_>,
    keep: Option<Uuid>,
    reason: &str,
) -> Result<u64, AppError> {
    db::challenges::delete_for_user(tx, on.user_id).await?;
    let revoked = db::sessions::revoke_all_for_user(tx, on.user_id, keep, on.now).await?;
    if revoked > 0 {
        on.record_ended(state, tx, events::SESSIONS_REVOKED, revoked, reason)
            .await?;
    }
    super::devices::revoke_all(state, tx, on, reason).await?;
    Ok(revoked)
}
