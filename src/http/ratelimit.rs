//! Per-client-address rate limiting of the routes anyone may call without a token (login,
//! register, refresh, the second-factor step and the `/authentication` routes), and
//! per-account limiting of the writes a signed-in caller makes ([`AccountLimiter`]).
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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

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
use crate::state::AppState;

/// Addresses tracked at most; past this, idle buckets are dropped, and if every bucket is
/// busy the table starts over (failing open rather than growing without bound).
pub const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: i64,
}

/// Token buckets keyed by client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter of `per_minute` sustained and `burst` at once per address; `per_minute`
    /// 0 lets everything through.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.per_second > 0.0
    }

    /// Takes one request from `ip`'s bucket at `now` (unix seconds), or says how many
    /// seconds until one is available.
    pub fn check(&self, ip: IpAddr, now: i64) -> Result<(), u64> {
        if !self.is_enabled() {
            return Ok(());
        }
        let key = client_network(ip);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
            self.evict_idle(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / self.per_second).ceil();
            Err((wait as u64).max(1))
        }
    }

    /// How many addresses (or IPv6 /64s) are tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    fn refill(&self, bucket: &mut Bucket, now: i64) {
        if now > bucket.updated {
            let elapsed = (now - bucket.updated) as f64;
            bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
            bucket.updated = now;
        }
    }

    fn evict_idle(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: i64) {
        buckets.retain(|_, bucket| {
            let mut b = *bucket;
            self.refill(&mut b, now);
            b.tokens < self.burst
        });
        if buckets.len() >= MAX_TRACKED {
            tracing::warn!(
                tracked = buckets.len(),
                "rate limiter table full of busy addresses; starting over"
            );
            buckets.clear();
        }
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
        match limiter.check(ip, state.now()) {
            Ok(()) => Ok(RateLimit),
            Err(retry_after_secs) => {
                tracing::info!(client = %ip, path = %parts.uri.path(), "rate limited");
                Err(AppError::RateLimited { retry_after_secs })
            }
        }
    }
}

/// Accounts tracked at most before entries indistinguishable from a fresh one are dropped.
pub const MAX_TRACKED_ACCOUNTS: usize = 65_536;

/// The server's clock as governor's time source, so the per-account limit runs on the same
/// (injected, in tests movable) time as every other rule, in whole seconds.
#[derive(Clone)]
struct ServerClock(SharedClock);

impl governor::clock::Clock for ServerClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let seconds = u64::try_from(self.0.now()).unwrap_or(0);
        Nanos::from(seconds.saturating_mul(1_000_000_000))
    }
}

/// governor's keyed limiter (`DefaultKeyedRateLimiter`'s state store: a sharded map of
/// token buckets) keyed by user id, on the server's clock instead of the default one.
type KeyedLimiter =
    Governor<Uuid, DefaultKeyedStateStore<Uuid>, ServerClock, NoOpMiddleware<Nanos>>;

/// Limits the writes each signed-in account makes: every POST and DELETE that carries an
/// access token, whatever the route. Reads pass. Each account has a bucket of
/// `account_write_burst` writes that refills at `account_write_rate_per_minute`; past it,
/// 429 `rate_limited` with `Retry-After`. A stolen or scripted access token can then cause
/// only so many database writes and security events a minute. In-process and per
/// instance, like the address limit: defence in depth, bounded memory.
pub struct AccountLimiter {
    limiter: Option<KeyedLimiter>,
}

impl AccountLimiter {
    /// `per_minute` 0 lets everything through.
    pub fn new(per_minute: u32, burst: u32, clock: SharedClock) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            Governor::new(
                Quota::per_minute(rate).allow_burst(burst),
                DefaultKeyedStateStore::default(),
                ServerClock(clock),
            )
        });
        Self { limiter }
    }

    /// Takes one write from `user_id`'s bucket, or says how many seconds until one is
    /// available.
    pub fn check(&self, user_id: Uuid) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() >= MAX_TRACKED_ACCOUNTS {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&user_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            wait.as_secs()
                .saturating_add(u64::from(wait.subsec_nanos() > 0))
                .max(1)
        })
    }

    /// How many accounts are tracked now.
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

/// Applies the per-account write limit (when the router installed one) to a request made
/// with `user_id`'s access token: reads pass, a write over the limit is 429.
pub fn limit_account_write(
    method: &Method,
    extensions: &Extensions,
    user_id: Uuid,
) -> Result<(), AppError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(limiter) = extensions.get::<Arc<AccountLimiter>>() else {
        return Ok(());
    };
    limiter.check(user_id).map_err(|retry_after_secs| {
        tracing::info!(user_id = %user_id, "account write rate limited");
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

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::new(60, 3);
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("192.0.2.1"), 1000), Ok(()));
        }
        assert_eq!(limiter.check(ip("192.0.2.1"), 1000), Err(1));
        // Another address has its own bucket.
        assert_eq!(limiter.check(ip("192.0.2.2"), 1000), Ok(()));
        // One token per second comes back, never more than the burst.
        assert_eq!(limiter.check(ip("192.0.2.1"), 1001), Ok(()));
        assert!(limiter.check(ip("192.0.2.1"), 1001).is_err());
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("192.0.2.1"), 5000), Ok(()));
        }
        assert!(limiter.check(ip("192.0.2.1"), 5000).is_err());
    }

    #[test]
    fn retry_after_says_when_a_request_is_allowed_again() {
        let limiter = RateLimiter::new(6, 1);
        assert_eq!(limiter.check(ip("192.0.2.1"), 0), Ok(()));
        assert_eq!(limiter.check(ip("192.0.2.1"), 0), Err(10));
        assert_eq!(limiter.check(ip("192.0.2.1"), 4), Err(6));
        assert_eq!(limiter.check(ip("192.0.2.1"), 10), Ok(()));
    }

    #[test]
    fn zero_per_minute_turns_limiting_off() {
        let limiter = RateLimiter::new(0, 1);
        for _ in 0..10 {
            assert_eq!(limiter.check(ip("192.0.2.1"), 0), Ok(()));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let limiter = RateLimiter::new(60, 1);
        assert_eq!(limiter.check(ip("2001:db8:1:2::1"), 0), Ok(()));
        assert!(limiter.check(ip("2001:db8:1:2:ffff::9"), 0).is_err());
        assert_eq!(limiter.check(ip("2001:db8:1:3::1"), 0), Ok(()));
        assert_eq!(limiter.check(ip("::ffff:192.0.2.7"), 0), Ok(()));
        assert!(limiter.check(ip("192.0.2.7"), 0).is_err());
    }

    #[test]
    fn each_account_has_its_own_bucket_on_the_server_clock() {
        let clock = ManualClock::starting_at(1_000_000);
        let limiter = AccountLimiter::new(60, 3, Arc::new(clock.clone()));
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
        let limiter = AccountLimiter::new(6, 1, Arc::new(clock.clone()));
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
        let limiter = AccountLimiter::new(0, 1, Arc::new(clock));
        let ann = Uuid::new_v4();
        for _ in 0..100 {
            assert_eq!(limiter.check(ann), Ok(()));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = RateLimiter::new(60, 2);
        for n in 0..(MAX_TRACKED as u32 + 10) {
            let _ = limiter.check(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)), 0);
        }
        assert!(limiter.tracked() <= MAX_TRACKED);
        // Idle buckets are dropped first: later, everyone's bucket is full again.
        let _ = limiter.check(ip("198.51.100.1"), 100);
        assert!(limiter.tracked() <= MAX_TRACKED);
    }
}
