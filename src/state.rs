//! Everything a request handler needs, built once at start-up and cheap to clone.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::PasswordHasher;
use crate::db::Db;
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::service::UseCases;
use crate::tokens::TokenSigner;
use crate::webauthn::RelyingParty;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: Arc<Keys>,
    pub clock: SharedClock,
    pub hasher: PasswordHasher,
    /// Behind an `Arc`: the keys inside allocate when cloned, and the state is cloned
    /// for every request.
    pub signer: Arc<TokenSigner>,
    pub metrics: Arc<Metrics>,
    /// Use cases running on their own tasks (see `service::detached`).
    pub use_cases: Arc<UseCases>,
    /// Wakes the notification delivery worker.
    pub outbox: Arc<crate::service::outbox::Wake>,
    /// The notification channels of the configuration and the event types each takes.
    pub subscriptions: Arc<crate::service::outbox::Subscriptions>,
    /// The WebAuthn relying party (passkeys).
    pub relying_party: Arc<RelyingParty>,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
