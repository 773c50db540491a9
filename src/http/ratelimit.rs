//! Per-client-address rate limiting of the routes anyone may call without a token (login,
//! register, refresh, the second-factor step and the `/authentication` routes), and
//! per-session limiting of the writes a signed-in caller makes ([`SessionWriteLimiter`]).
//!
//! This is defence in depth against floods, not a security rule: the counters that decide
//! lockouts and password throttling are in the database and hold across instances. This
//! limiter is in-process, per instance, and forgets everything on restart.
//!
//! Each client address has a token bucket of `rate_limit_burst` requests that refills at
//! `rate_limit_per_minute`; an empty bucket answers 429 `rate_limited` with `Retry-After`.
//! The address is the one [`client_ip`] finds, so `X-Forwarded-For` counts only behind a
//! configured trusted proxy. IPv6 addresses are grouped by their /64 (one host usually owns
//! a whole /64, and could otherwise rotate through it). Time comes from the server's clock.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, Method};
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use uuid::Uuid;

use super::extract::client_ip;
use crate::clock::SharedClock;
use crate::domain::network::client_network;
use crate::error::AppError;
use crate::service::Principal;
use crate::state::AppState;

/// Addresses tracked at most; past this, idle buckets are dropped, and if every bucket is
/// busy the table starts over (failing open rather than growing without bound).
pub const MAX_TRACKED: usize = 65_536;

/// Token buckets keyed by client network (an IPv4 address, or an IPv6 /64).
pub struct RateLimiter {
    buckets: Option<KeyedBuckets<IpAddr>>,
}

impl RateLimiter {
    /// A limiter of `per_minute` sustained and `burst` at once per address, on the
    /// server's clock; `per_minute` 0 lets everything through.
    pub fn new(per_minute: u32, burst: u32, clock: SharedClock) -> Self {
        Self {
            buckets: KeyedBuckets::new(per_minute, burst, clock),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.buckets.is_some()
    }

    /// Takes one request from `ip`'s bucket, or says how many seconds until one is
    /// available.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(buckets) = &self.buckets else {
            return Ok(());
        };
        if buckets.tracked() >= MAX_TRACKED {
            buckets.drop_idle();
            if buckets.tracked() >= MAX_TRACKED {
                tracing::warn!(
                    tracked = buckets.tracked(),
                    "rate limiter table full of busy addresses; starting over"
                );
                buckets.start_over();
            }
        }
        buckets.check(&client_network(ip))
    }

    /// How many addresses (or IPv6 /64s) are tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.as_ref().map_or(0, KeyedBuckets::tracked)
    }
}

/// Extractor for the rate-limited routes: passes, or rejects with 429 `rate_limited`.
/// Put it before the body extractor so a refused request's body is never read.
pub struct RateLimit;

impl FromRequestParts<AppState> for RateLimit {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(limiter) = parts.extensions.get::<Arc<RateLimiter>>() else {
            return Ok(RateLimit);
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip());
        let Some(ip) = client_ip(peer, &parts.headers, &state.config.trusted_proxies) else {
            return Ok(RateLimit);
        };
        match limiter.check(ip) {
            Ok(()) => Ok(RateLimit),
            Err(retry_after_secs) => {
                tracing::info!(client = %ip, path = %parts.uri.path(), "rate limited");
                Err(AppError::RateLimited { retry_after_secs })
            }
        }
    }
}

/// Sessions tracked at most before entries indistinguishable from a fresh one are dropped.
pub const MAX_TRACKED_SESSIONS: usize = 65_536;

/// The server's clock as governor's time source, so both limits run on the same
/// (injected, in tests movable) time as every other rule, in whole seconds.
#[derive(Clone)]
struct ServerClock(SharedClock);

/// The latest time given to governor (about the year 2262): half of what its `Nanos`
/// holds, so its own additions to a time cannot overflow however far the clock is set.
const LATEST_SECONDS: u64 = u64::MAX / 2 / 1_000_000_000;

impl governor::clock::Clock for ServerClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let seconds = u64::try_from(self.0.now()).unwrap_or(0).min(LATEST_SECONDS);
        Nanos::from(seconds * 1_000_000_000)
    }
}

/// governor's keyed limiter (`DefaultKeyedRateLimiter`'s state store: a sharded map of
/// token buckets) on the server's clock instead of the default one.
type KeyedLimiter<K> = Governor<K, DefaultKeyedStateStore<K>, ServerClock, NoOpMiddleware<Nanos>>;

/// One token bucket per key, `burst` deep, refilling at `per_minute`. Behind a lock only
/// so that a table full of busy buckets can be swapped for an empty one; checks take the
/// shared side (governor's map is itself concurrent).
struct KeyedBuckets<K: Hash + Eq + Clone> {
    quota: Quota,
    clock: ServerClock,
    limiter: RwLock<KeyedLimiter<K>>,
}

impl<K: Hash + Eq + Clone> KeyedBuckets<K> {
    /// `None` when `per_minute` is 0 (no limit); a `burst` of 0 counts as 1.
    fn new(per_minute: u32, burst: u32, clock: SharedClock) -> Option<Self> {
        let rate = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(rate).allow_burst(burst);
        let clock = ServerClock(clock);
        let limiter = RwLock::new(Governor::new(
            quota,
            DefaultKeyedStateStore::default(),
            clock.clone(),
        ));
        Some(Self {
            quota,
            clock,
            limiter,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, KeyedLimiter<K>> {
        self.limiter.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token from `key`'s bucket, or says in whole seconds (at least 1) when
    /// one is there again: the `Retry-After` value.
    fn check(&self, key: &K) -> Result<(), u64> {
        self.read().check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs()
                .saturating_add(u64::from(wait.subsec_nanos() > 0))
                .max(1)
        })
    }

    fn tracked(&self) -> usize {
        self.read().len()
    }

    /// Forgets the buckets that are full again (indistinguishable from fresh ones).
    fn drop_idle(&self) {
        let limiter = self.read();
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }

    /// Replaces every bucket with none: everyone starts with a full burst again.
    fn start_over(&self) {
        let fresh = Governor::new(
            self.quota,
            DefaultKeyedStateStore::default(),
            self.clock.clone(),
        );
        *self.limiter.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }
}

/// Limits the writes each signed-in session makes: every POST and DELETE that carries an
/// access token, whatever the route. Reads pass. Each session has a bucket of
/// `account_write_burst` writes that refills at `account_write_rate_per_minute`; past it,
/// 429 `rate_limited` with `Retry-After`. A stolen or scripted access token can then cause
/// only so many database writes and security events a minute. Per session, not per
/// account: a thief spending a stolen token's budget must not leave the owner's own
/// sessions unable to sign out or change the password. In-process and per instance, like
/// the address limit: defence in depth, bounded memory.
pub struct SessionWriteLimiter {
    buckets: Option<KeyedBuckets<Uuid>>,
}

impl SessionWriteLimiter {
    /// `per_minute` 0 lets everything through.
    pub fn new(per_minute: u32, burst: u32, clock: SharedClock) -> Self {
        Self {
            buckets: KeyedBuckets::new(per_minute, burst, clock),
        }
    }

    /// Takes one write from `session_id`'s bucket, or says how many seconds until one is
    /// available.
    pub fn check(&self, session_id: Uuid) -> Result<(), u64> {
        let Some(buckets) = &self.buckets else {
            return Ok(());
        };
        if buckets.tracked() >= MAX_TRACKED_SESSIONS {
            buckets.drop_idle();
        }
        buckets.check(&session_id)
    }

    /// How many sessions are tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.as_ref().map_or(0, KeyedBuckets::tracked)
    }
}

/// Applies the write limit (when the router installed one) to a request made with an
/// access token of `principal`'s session: reads pass, a write over the limit is 429.
pub fn limit_session_write(
    method: &Method,
    extensions: &Extensions,
    principal: &Principal,
) -> Result<(), AppError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(limiter) = extensions.get::<Arc<SessionWriteLimiter>>() else {
        return Ok(());
    };
    limiter.check(principal.session_id).map_err(|retry_after_secs| {
        tracing::info!(user_id = %principal.user_id, session_id = %principal.session_id, "session write rate limited");
        AppError::RateLimited { retry_after_secs }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An address limiter on a clock the test moves, and that clock.
    fn address_limiter(per_minute: u32, burst: u32, now: i64) -> (RateLimiter, ManualClock) {
        let clock = ManualClock::starting_at(now);
        let limiter = RateLimiter::new(per_minute, burst, Arc::new(clock.clone()));
        (limiter, clock)
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let (limiter, clock) = address_limiter(60, 3, 1000);
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        }
        assert_eq!(limiter.check(ip("192.0.2.1")), Err(1));
        // Another address has its own bucket.
        assert_eq!(limiter.check(ip("192.0.2.2")), Ok(()));
        // One token per second comes back, never more than the burst.
        clock.set(1001);
        assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        assert!(limiter.check(ip("192.0.2.1")).is_err());
        clock.set(5000);
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        }
        assert!(limiter.check(ip("192.0.2.1")).is_err());
    }

    #[test]
    fn retry_after_says_when_a_request_is_allowed_again() {
        let (limiter, clock) = address_limiter(6, 1, 0);
        assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        assert_eq!(limiter.check(ip("192.0.2.1")), Err(10));
        clock.set(4);
        assert_eq!(limiter.check(ip("192.0.2.1")), Err(6));
        clock.set(10);
        assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
    }

    #[test]
    fn zero_per_minute_turns_limiting_off() {
        let (limiter, _) = address_limiter(0, 1, 0);
        for _ in 0..10 {
            assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let (limiter, _) = address_limiter(60, 1, 0);
        assert_eq!(limiter.check(ip("2001:db8:1:2::1")), Ok(()));
        assert!(limiter.check(ip("2001:db8:1:2:ffff::9")).is_err());
        assert_eq!(limiter.check(ip("2001:db8:1:3::1")), Ok(()));
        assert_eq!(limiter.check(ip("::ffff:192.0.2.7")), Ok(()));
        assert!(limiter.check(ip("192.0.2.7")).is_err());
    }

    #[test]
    fn each_account_has_its_own_bucket_on_the_server_clock() {
        let clock = ManualClock::starting_at(1_000_000);
        let limiter = SessionWriteLimiter::new(60, 3, Arc::new(clock.clone()));
        let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            assert_eq!(limiter.check(ann), Ok(()));
        }
        assert_eq!(limiter.check(ann), Err(1));
        assert_eq!(limiter.check(bob), Ok(()));
        clock.advance(1);
        assert_eq!(limiter.check(ann), Ok(()));
        assert!(limiter.check(ann).is_err());
        clock.advance(60);
        for _ in 0..3 {
            assert_eq!(limiter.check(ann), Ok(()));
        }
        assert!(limiter.check(ann).is_err());
    }

    #[test]
    fn account_retry_after_says_when_a_write_is_allowed_again() {
        let clock = ManualClock::starting_at(1_000_000);
        let limiter = SessionWriteLimiter::new(6, 1, Arc::new(clock.clone()));
        let ann = Uuid::new_v4();
        assert_eq!(limiter.check(ann), Ok(()));
        assert_eq!(limiter.check(ann), Err(10));
        clock.advance(4);
        assert_eq!(limiter.check(ann), Err(6));
        clock.advance(6);
        assert_eq!(limiter.check(ann), Ok(()));
    }

    #[test]
    fn zero_writes_per_minute_turns_the_account_limit_off() {
        let clock = ManualClock::starting_at(0);
        let limiter = SessionWriteLimiter::new(0, 1, Arc::new(clock));
        let ann = Uuid::new_v4();
        for _ in 0..100 {
            assert_eq!(limiter.check(ann), Ok(()));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn a_clock_set_far_ahead_neither_overflows_nor_lets_everything_through() {
        let (limiter, clock) = address_limiter(60, 1, 0);
        let accounts = SessionWriteLimiter::new(60, 1, Arc::new(clock.clone()));
        let ann = Uuid::new_v4();
        clock.set(i64::MAX / 2);
        assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        assert!(limiter.check(ip("192.0.2.1")).is_err());
        assert_eq!(accounts.check(ann), Ok(()));
        assert!(accounts.check(ann).is_err());
        // Later still is the same latest instant to governor: still limited, no overflow.
        clock.set(i64::MAX);
        assert!(limiter.check(ip("192.0.2.1")).is_err());
        assert!(accounts.check(ann).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let (limiter, clock) = address_limiter(60, 2, 0);
        for n in 0..(MAX_TRACKED as u32 + 10) {
            let _ = limiter.check(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)));
        }
        assert!(limiter.tracked() <= MAX_TRACKED);
        // Idle buckets are dropped first: later, everyone's bucket is full again.
        clock.set(100);
        let _ = limiter.check(ip("198.51.100.1"));
        assert!(limiter.tracked() <= MAX_TRACKED);
    }
}
