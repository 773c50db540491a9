//! Housekeeping that runs in the background: reporting second steps that were never
//! completed, and deleting expired rows in small batches so no statement holds a lock
//! for long.

use super::{RequestContext, events};
use crate::db;
use crate::error::AppError;
use crate::state::AppState;

const BATCH: i64 = 500;
/// Abandoned second steps reported per transaction: two statements each, so a batch holds
/// the writer for a few milliseconds at most.
const ABANDONED_BATCH: i64 = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    pub abandoned_second_factors: u64,
    pub pending_setups: u64,
    pub challenges: u64,
    pub sessions: u64,
    pub trusted_devices: u64,
    pub security_events: u64,
    pub ip_throttles: u64,
    pub event_quotas: u64,
    pub outbox_messages: u64,
    pub known_devices: u64,
    pub passkey_ceremonies: u64,
    pub admin_audit: u64,
}

/// One full pass. Safe to run on several instances at once: every step is a conditional
/// statement, so a row is reported or deleted once.
#[tracing::instrument(skip_all)]
pub async fn run_once(state: &AppState) -> Result<PruneReport, AppError> {
    let now = state.now();
    let mut report = PruneReport::default();
    loop {
        // One batch per write transaction; the transaction reads through itself and no
        // other connection is held meanwhile (see `db`'s two rules).
        let mut tx = state.db.begin().await?;
        let abandoned = db::challenges::abandoned(&mut tx, now, ABANDONED_BATCH).await?;
        if abandoned.is_empty() {
            break;
        }
        for row in abandoned {
            if db::challenges::mark_reported(&mut tx, &row.token_hash).await? {
                let ctx = RequestContext {
                    ip: row.ip_address.clone().unwrap_or_default(),
                    user_agent: row.user_agent.clone(),
                };
                let when = crate::clock::rfc3339(row.created_at);
                events::Occasion::new(row.user_id, now, Some(&ctx))
                    .record(
                        state,
                        &mut tx,
                        events::SECOND_FACTOR_ABANDONED,
                        serde_json::json!({"passwordVerifiedAt": when}),
                    )
                    .await?;
                report.abandoned_second_factors += 1;
            }
        }
        tx.commit().await?;
    }

    let mut tx = state.db.begin().await?;
    report.pending_setups = db::totp::prune_expired_pending(&mut tx, now).await?;
    report.ip_throttles = db::throttles::prune(&mut tx, now).await?;
    report.event_quotas = db::events::prune_quotas(&mut tx, now).await?;
    tx.commit().await?;
    report.challenges = drain(state, Table::Challenges, now).await?;
    report.passkey_ceremonies = drain(state, Table::Ceremonies, now).await?;
    report.sessions = drain(state, Table::Sessions, now).await?;
    report.trusted_devices = drain(state, Table::TrustedDevices, now).await?;
    let retention = state.config.security_event_retention_days * 86_400;
    report.security_events = drain(state, Table::SecurityEvents, now - retention).await?;
    report.admin_audit = drain(state, Table::AdminAudit, now - retention).await?;
    report.outbox_messages = super::outbox::prune(state).await?;
    let window = state.config.new_device_window_days * 86_400;
    report.known_devices = drain(state, Table::KnownDevices, now - window).await?;
    Ok(report)
}

#[derive(Clone, Copy)]
enum Table {
    Challenges,
    Ceremonies,
    Sessions,
    TrustedDevices,
    SecurityEvents,
    AdminAudit,
    KnownDevices,
}

/// Deletes expired rows of `table` batch by batch until a batch comes back short.
async fn drain(state: &AppState, table: Table, cutoff: i64) -> Result<u64, AppError> {
    let mut total = 0;
    loop {
        // A short transaction per batch, so requests' writers queue behind one batch at most.
        let mut tx = state.db.begin().await?;
        let deleted = match table {
            Table::Challenges => db::challenges::prune(&mut tx, cutoff, BATCH).await?,
            Table::Ceremonies => db::ceremonies::prune(&mut tx, cutoff, BATCH).await?,
            Table::Sessions => db::sessions::prune(&mut tx, cutoff, BATCH).await?,
            Table::TrustedDevices => db::devices::prune(&mut tx, cutoff, BATCH).await?,
            Table::SecurityEvents => db::events::prune(&mut tx, cutoff, BATCH).await?,
            Table::AdminAudit => db::admin_audit::prune(&mut tx, cutoff, BATCH).await?,
            Table::KnownDevices => db::known_devices::prune(&mut tx, cutoff, BATCH).await?,
        };
        tx.commit().await?;
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}
