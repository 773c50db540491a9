//! Use cases. Each public function is one thing a user or operator does; it owns its
//! database work and enforces the security rules, so both API surfaces get the same
//! behaviour by calling the same function.

pub mod accounts;
pub mod admin_api;
pub mod admin_keys;
pub mod authenticators;
pub mod devices;
pub mod events;
pub mod maintenance;
pub mod operator;
pub mod outbox;
pub mod passkeys;
pub mod second_factor;
pub mod sessions;
pub mod signing_keys;
pub mod two_factor;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use tracing::Instrument;
use uuid::Uuid;

use crate::error::AppError;
use crate::state::AppState;

/// Who is asking, for throttles and the security event log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// The caller as the per-IP password throttle counts it: by network, IPv6 by its /64
    /// (see [`crate::domain::network`]).
    pub fn throttle_client(&self) -> ThrottleClient {
        ThrottleClient {
            ip: crate::domain::network::throttle_key(&self.ip),
        }
    }
}

/// What the per-IP password throttle knows of a caller: the key of its network. A type of
/// its own rather than a `RequestContext`, so a grouped address cannot end up recorded as
/// the caller's address in the event log or anywhere else.
#[derive(Debug, Clone)]
pub struct ThrottleClient {
    pub ip: String,
}

/// A verified access token's facts.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub amr: Vec<String>,
    pub auth_time: i64,
}

/// Runs a use case on a task of its own and waits for it. The request's future may be
/// dropped at any `.await` (the client hangs up, the request timeout fires); the use case
/// still runs to its end, so a transaction that decides a security outcome is never cut
/// short between its statements, and nothing is left for a finished request to clean up.
///
/// `use_case` is given its own handle on the state (the task may outlive the request's
/// borrow of it).
pub(crate) async fn detached<T, F>(
    state: &AppState,
    use_case: impl FnOnce(AppState) -> F,
) -> Result<T, AppError>
where
    F: Future<Output = Result<T, AppError>> + Send + 'static,
    T: Send + 'static,
{
    let running = state.use_cases.start();
    let use_case = use_case(state.clone());
    let wake = state.outbox.clone();
    let task = async move {
        let _running = running;
        // A use case that wrote to the outbox wakes the delivery worker when it is done
        // (after its commit), so a notification leaves at once rather than at the next poll.
        let (result, wrote) = outbox::track(use_case).await;
        if wrote {
            wake.wake();
        }
        result
    };
    match tokio::spawn(task.instrument(tracing::Span::current())).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels the task.
        Err(_) => Err(AppError::Unavailable),
    }
}

/// Commits `tx`, then refuses with `refusal`: for a refusal that used something up (a
/// ceremony taken, a token's attempt counted, a replayed token's session revoked), which
/// must stay used up so the same answer cannot be tried again.
pub(crate) async fn commit_refusal<T>(
    tx: crate::db::Conn,
    refusal: AppError,
) -> Result<T, AppError> {
    tx.commit().await?;
    Err(refusal)
}

/// Counts the use cases running on their own tasks, so shutdown can let them finish
/// before it closes the database, and a test can wait until a request it hung up on has
/// been carried out.
#[derive(Debug, Default)]
pub struct UseCases {
    running: AtomicUsize,
    idle: Notify,
}

/// One running use case; dropping it (when the task ends, even by panic) counts it out.
pub(crate) struct Running(Arc<UseCases>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl UseCases {
    fn start(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::AcqRel);
        Running(self.clone())
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Resolves once no use case is running.
    pub async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.running() == 0 {
                return;
            }
            idle.await;
        }
    }
}
