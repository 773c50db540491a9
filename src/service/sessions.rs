//! Sessions: issuing access and refresh tokens, rotating refresh tokens with theft
//! detection, logout, and turning a bearer token back into a [`Principal`].

use uuid::Uuid;

use super::{Principal, RequestContext, events};
use crate::crypto;
use crate::db::{self, Conn, users::UserRow};
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

/// Starts a new session for `user` and issues its first token pair.
pub async fn start(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    amr: Vec<String>,
    ctx: &RequestContext,
) -> Result<IssuedTokens, AppError> {
    let now = state.now();
    let session_id = Uuid::new_v4();
    let expires_at = now + state.config.refresh_token_ttl_secs;
    let amr_text = amr.join(" ");
    db::sessions::insert(
        conn,
        &db::sessions::NewSession {
            id: session_id,
            user_id,
            now,
            auth_time: now,
            amr: &amr_text,
            expires_at,
            ip_address: &ctx.ip,
            user_agent: ctx.user_agent.as_deref(),
        },
    )
    .await?;
    let refresh_token = crypto::random_token();
    db::sessions::insert_refresh_token(conn, &crypto::token_hash(&refresh_token), session_id, now)
        .await?;
    let access_token = state.signer.sign(user_id, session_id, amr, now, now)?;
    Ok(IssuedTokens {
        access_token,
        expires_in: state.signer.ttl_secs(),
        refresh_token,
        refresh_token_expires_at: expires_at,
        session_id,
    })
}

/// Exchanges a refresh token for a new pair. The old token is retired in the same
/// statement that checks it, so of many concurrent uses exactly one wins. Presenting a
/// retired token revokes its whole session: someone is replaying a stolen token.
pub async fn refresh(
    state: &AppState,
    refresh_token: &str,
    ctx: &RequestContext,
) -> Result<(IssuedTokens, UserRow), AppError> {
    let now = state.now();
    let hash = crypto::token_hash(refresh_token);
    let mut tx = state.db.begin().await?;
    let Some(session_id) = db::sessions::consume_refresh_token(&mut tx, &hash, now).await? else {
        if let Some(session_id) = db::sessions::session_of_refresh_token(&mut tx, &hash).await?
            && let Some(session) = db::sessions::find_active(&mut tx, session_id, now).await?
        {
            db::sessions::revoke(&mut tx, session_id, now).await?;
            events::record(
                &mut tx,
                now,
                session.user_id,
                events::REFRESH_TOKEN_REUSED,
                Some(ctx),
                serde_json::json!({"sessionRevoked": true}),
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(session_id = %session_id, "retired refresh token presented; session revoked");
            state
                .metrics
                .increment("tessera_refreshes_total", &[("outcome", "reuse_detected")]);
        }
        return Err(AppError::InvalidRefreshToken);
    };
    let Some(session) = db::sessions::find_active(&mut tx, session_id, now).await? else {
        return Err(AppError::InvalidRefreshToken);
    };
    let Some(user) = db::users::find_by_id(&mut tx, session.user_id).await? else {
        return Err(AppError::InvalidRefreshToken);
    };
    let new_token = crypto::random_token();
    db::sessions::insert_refresh_token(&mut tx, &crypto::token_hash(&new_token), session_id, now)
        .await?;
    tx.commit().await?;
    state
        .metrics
        .increment("tessera_refreshes_total", &[("outcome", "success")]);
    let amr: Vec<String> = session
        .amr
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let access_token = state
        .signer
        .sign(user.id, session_id, amr, session.auth_time, now)?;
    Ok((
        IssuedTokens {
            access_token,
            expires_in: state.signer.ttl_secs(),
            refresh_token: new_token,
            refresh_token_expires_at: session.expires_at,
            session_id,
        },
        user,
    ))
}

/// Ends the caller's session (and, if given, the session of `refresh_token` when it is
/// the same user's).
pub async fn logout(
    state: &AppState,
    principal: &Principal,
    refresh_token: Option<&str>,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db::sessions::revoke(&mut tx, principal.session_id, now).await?;
    if let Some(token) = refresh_token {
        let hash = crypto::token_hash(token);
        if let Some(session_id) = db::sessions::session_of_refresh_token(&mut tx, &hash).await?
            && let Some(session) = db::sessions::find_active(&mut tx, session_id, now).await?
            && session.user_id == principal.user_id
        {
            db::sessions::revoke(&mut tx, session_id, now).await?;
        }
    }
    events::record(
        &mut tx,
        now,
        principal.user_id,
        events::LOGGED_OUT,
        Some(ctx),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await
}

/// Verifies a bearer access token and that its session is still live, so logout,
/// password changes and revocations take effect immediately, not at token expiry.
pub async fn authenticate(state: &AppState, bearer: &str) -> Result<Principal, AppError> {
    let now = state.now();
    let claims = state.signer.verify(bearer, now)?;
    let mut conn = state.db.conn().await?;
    let session = db::sessions::find_active(&mut conn, claims.sid, now)
        .await?
        .filter(|s| s.user_id == claims.sub)
        .ok_or(AppError::Unauthenticated)?;
    Ok(Principal {
        user_id: session.user_id,
        session_id: session.id,
        amr: claims.amr,
        auth_time: claims.auth_time,
    })
}

/// Revokes every session of the user but `keep`, recording why.
pub async fn revoke_others(
    conn: &mut Conn,
    now: i64,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    ctx: Option<&RequestContext>,
) -> Result<u64, AppError> {
    let revoked = db::sessions::revoke_all_for_user(conn, user_id, keep, now).await?;
    if revoked > 0 {
        events::record(
            conn,
            now,
            user_id,
            events::SESSIONS_REVOKED,
            ctx,
            serde_json::json!({"count": revoked, "reason": reason}),
        )
        .await?;
    }
    Ok(revoked)
}
