//! Use cases. Each public function is one thing a user or operator does; it owns its
//! database work and enforces the security rules, so both API surfaces get the same
//! behaviour by calling the same function.

pub mod accounts;
pub mod devices;
pub mod events;
pub mod maintenance;
pub mod second_factor;
pub mod sessions;
pub mod two_factor;

use std::future::Future;

use tracing::Instrument;
use uuid::Uuid;

use crate::error::AppError;

/// Who is asking, for throttles and the security event log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: String,
    pub user_agent: Option<String>,
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
pub(crate) async fn detached<T, F>(use_case: F) -> Result<T, AppError>
where
    F: Future<Output = Result<T, AppError>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(use_case.instrument(tracing::Span::current())).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels the task.
        Err(_) => Err(AppError::Unavailable),
    }
}
