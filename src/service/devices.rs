//! Trusted devices: a device that completed a second factor can be remembered, and a
//! later login presenting its `deviceToken` (with the same fingerprint) skips the second
//! factor. Devices die with the credentials they were granted under.

use uuid::Uuid;

use super::second_factor;
use super::{Principal, RequestContext, events};
use crate::crypto;
use crate::db::{self, Conn};
use crate::domain::second_factor::SecondFactorCode;
use crate::error::AppError;
use crate::state::AppState;

pub const FINGERPRINT_PURPOSE: &str = "device-fingerprint";

/// What a client says about the device it wants trusted. Names and descriptions only: the
/// address a device is recorded with is the one the request came from, never a claim.
#[derive(Debug, Clone)]
pub struct DeviceInput {
    pub device_name: String,
    pub device_type: String,
    pub device_fingerprint: String,
    pub browser_info: Option<String>,
    pub location: Option<String>,
}

/// A device whose logins skip the second factor until it expires or is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    pub id: Uuid,
    pub device_name: String,
    pub device_type: String,
    /// As the client described it: free text, not checked.
    pub browser_info: Option<String>,
    /// The address the request that trusted the device came from, as the server saw it;
    /// never a client's claim.
    pub ip_address: Option<String>,
    /// As the client described it: free text, not checked.
    pub location: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_used_at: Option<i64>,
    /// Unix seconds.
    pub expires_at: i64,
}

impl From<db::devices::DeviceRow> for TrustedDevice {
    fn from(row: db::devices::DeviceRow) -> Self {
        Self {
            id: row.id,
            device_name: row.device_name,
            device_type: row.device_type,
            browser_info: row.browser_info,
            ip_address: row.ip_address,
            location: row.location,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
        }
    }
}

/// Stores a trusted device and returns it with its `deviceToken`, which exists only in
/// this return value: the database keeps its hash.
pub async fn trust(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    input: &DeviceInput,
    ctx: &RequestContext,
) -> Result<(TrustedDevice, String), AppError> {
    let now = state.now();
    let token = crypto::random_token();
    let token_hash = crypto::token_hash(&token);
    let fingerprint_hash = crypto::keyed_hash(
        &state.keys.pepper,
        FINGERPRINT_PURPOSE,
        input.device_fingerprint.as_bytes(),
    );
    let id = Uuid::new_v4();
    let row = db::devices::DeviceRow {
        id,
        user_id,
        fingerprint_hash: fingerprint_hash.clone(),
        device_name: input.device_name.clone(),
        device_type: input.device_type.clone(),
        browser_info: input.browser_info.clone(),
        ip_address: Some(ctx.ip.clone()),
        location: input.location.clone(),
        created_at: now,
        last_used_at: None,
        expires_at: now + state.config.trusted_device_ttl_secs,
    };
    db::devices::insert(
        conn,
        &db::devices::NewDevice {
            id,
            user_id,
            token_hash: &token_hash,
            fingerprint_hash: &fingerprint_hash,
            device_name: &row.device_name,
            device_type: &row.device_type,
            browser_info: row.browser_info.as_deref(),
            ip_address: row.ip_address.as_deref(),
            location: row.location.as_deref(),
            created_at: now,
            expires_at: row.expires_at,
        },
    )
    .await?;
    let trusted = serde_json::json!({"deviceId": id, "deviceName": row.device_name});
    events::Occasion::new(user_id, now, Some(ctx))
        .record(state, conn, events::DEVICE_TRUSTED, trusted)
        .await?;
    Ok((row.into(), token))
}

/// `POST /trusted-devices`: a sensitive change, so it needs a fresh second factor; gate
/// and change are one transaction.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn add(
    state: &AppState,
    principal: Principal,
    input: DeviceInput,
    code: Option<SecondFactorCode>,
    ctx: RequestContext,
) -> Result<(TrustedDevice, String), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let tx = state.db.begin().await?;
        let mut tx =
            second_factor::require_enabled_and_fresh(state, tx, &principal, code.as_ref(), &ctx)
                .await?;
        let result = trust(state, &mut tx, principal.user_id, &input, &ctx).await?;
        tx.commit().await?;
        Ok(result)
    })
    .await
}

/// The device a login presents, if it is this user's, live, and has this fingerprint.
/// Every way of failing looks the same to the caller.
pub async fn recognise(
    state: &AppState,
    conn: &mut Conn,
    user_id: Uuid,
    token: &str,
    fingerprint: &str,
) -> Result<Option<Uuid>, AppError> {
    let now = state.now();
    let Some(device) =
        db::devices::find_live_by_token(conn, user_id, &crypto::token_hash(token), now).await?
    else {
        return Ok(None);
    };
    let presented = crypto::keyed_hash(
        &state.keys.pepper,
        FINGERPRINT_PURPOSE,
        fingerprint.as_bytes(),
    );
    if !crypto::constant_time_eq(&presented, &device.fingerprint_hash) {
        return Ok(None);
    }
    db::devices::touch(conn, device.id, now).await?;
    Ok(Some(device.id))
}

/// How many trusted devices are live across every account (a metrics gauge).
pub async fn count_live(state: &AppState) -> Result<i64, AppError> {
    let mut conn = state.db.read().await?;
    Ok(db::devices::count_all_live(&mut conn, state.now()).await?)
}

#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn list(state: &AppState, user_id: Uuid) -> Result<Vec<TrustedDevice>, AppError> {
    let mut conn = state.db.read().await?;
    let rows = db::devices::list_live(&mut conn, user_id, state.now()).await?;
    Ok(rows.into_iter().map(TrustedDevice::from).collect())
}

#[tracing::instrument(skip_all, fields(user_id = %user_id, device_id = %device_id))]
pub async fn remove_one(
    state: &AppState,
    user_id: Uuid,
    device_id: Uuid,
    ctx: RequestContext,
) -> Result<(), AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        if !db::devices::delete_one(&mut tx, user_id, device_id).await? {
            return Err(AppError::NotFound);
        }
        let removed = serde_json::json!({"deviceId": device_id});
        events::Occasion::new(user_id, now, Some(&ctx))
            .record(state, &mut tx, events::DEVICE_REMOVED, removed)
            .await?;
        tx.commit().await
    })
    .await
}

#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn remove_all(
    state: &AppState,
    user_id: Uuid,
    ctx: RequestContext,
) -> Result<u64, AppError> {
    super::detached(state, |task_state| async move {
        let state = &task_state;
        let now = state.now();
        let mut tx = state.db.begin().await?;
        let on = events::Occasion::new(user_id, now, Some(&ctx));
        let removed = revoke_all(state, &mut tx, on, "user_request").await?;
        tx.commit().await?;
        Ok(removed)
    })
    .await
}

/// Deletes every device of the user, recording why when there was one to remove: a
/// request that changes nothing leaves nothing in the event log, so repeating it cannot
/// grow the log.
pub async fn revoke_all(
    state: &AppState,
    conn: &mut Conn,
    on: events::Occasion<'_>,
    reason: &str,
) -> Result<u64, AppError> {
    let removed = db::devices::delete_all(conn, on.user_id, on.now).await?;
    if removed == 0 {
        return Ok(0);
    }
    on.record_ended(state, conn, events::DEVICES_REMOVED, removed, reason)
        .await?;
    Ok(removed)
}
