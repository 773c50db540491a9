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

use uuid::Uuid;

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
