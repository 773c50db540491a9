//! How long the second factor stays locked after a run of failures, and how a password
//! attempt stands against the password throttles.

/// The lock earned by the `lockouts_before`-th lock in a row (0 for the first): `base`
/// doubled for each earlier lock, never more than `max`.
pub fn lock_duration(lockouts_before: i64, base_secs: i64, max_secs: i64) -> i64 {
    let doublings = lockouts_before.clamp(0, 32) as u32;
    base_secs.saturating_mul(1i64 << doublings).min(max_secs)
}

/// The delay after a failed password: none after the first `free_failures - 1`; from the
/// `free_failures`-th on, 2 seconds more per failure, capped at 5 minutes.
pub fn password_delay(failures: i64, free_failures: i64) -> i64 {
    if failures < free_failures {
        0
    } else {
        ((failures - free_failures + 1) * 2).min(300)
    }
}

/// A password throttle (per account, or per client network): at most `max_per_hour`
/// failures in an hour window, and [`password_delay`] after `delay_after` of them.
#[derive(Debug, Clone, Copy)]
pub struct PasswordThrottle {
    pub max_per_hour: i64,
    pub delay_after: i64,
}

/// How one password attempt stands, judged when it is counted: before its hash is checked,
/// so that attempts running at the same time each see the ones counted before them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The attempt may not be judged (a delay is running, or the hour's failures are used
    /// up): the password is treated as wrong whatever it is.
    pub throttled: bool,
    /// The delay this attempt earns if it fails: until when the next attempt must wait
    /// (`None`: no delay yet).
    pub delay_until: Option<i64>,
}

impl PasswordThrottle {
    /// `failures`: the window's count with this attempt in it; `blocked_until`: the delay
    /// as it stood before this attempt.
    pub fn judge(&self, failures: i64, blocked_until: i64, now: i64) -> Standing {
        let delay = password_delay(failures, self.delay_after);
        Standing {
            throttled: blocked_until > now || failures > self.max_per_hour,
            delay_until: (delay > 0).then_some(now + delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THROTTLE: PasswordThrottle = PasswordThrottle {
        max_per_hour: 100,
        delay_after: 5,
    };

    #[test]
    fn an_attempt_within_the_free_failures_is_judged_and_earns_no_delay() {
        let standing = THROTTLE.judge(4, 0, 1_000);
        assert_eq!(
            standing,
            Standing {
                throttled: false,
                delay_until: None
            }
        );
    }

    #[test]
    fn the_attempt_that_reaches_the_free_failures_is_judged_and_earns_the_first_delay_if_it_fails()
    {
        let standing = THROTTLE.judge(5, 0, 1_000);
        assert_eq!(
            standing,
            Standing {
                throttled: false,
                delay_until: Some(1_002)
            }
        );
    }

    #[test]
    fn an_attempt_during_a_delay_is_throttled() {
        assert!(THROTTLE.judge(6, 1_002, 1_000).throttled);
        assert!(THROTTLE.judge(6, 1_001, 1_000).throttled);
        assert!(
            !THROTTLE.judge(6, 1_000, 1_000).throttled,
            "the delay is over"
        );
    }

    #[test]
    fn the_attempt_past_the_hourly_cap_is_throttled() {
        assert!(!THROTTLE.judge(100, 0, 1_000).throttled);
        assert!(THROTTLE.judge(101, 0, 1_000).throttled);
    }

    #[test]
    fn lock_doubles_from_fifteen_minutes_to_a_day() {
        let got: Vec<i64> = (0..9).map(|n| lock_duration(n, 900, 86_400)).collect();
        assert_eq!(
            got,
            [
                900, 1800, 3600, 7200, 14_400, 28_800, 57_600, 86_400, 86_400
            ]
        );
        assert_eq!(lock_duration(1_000, 900, 86_400), 86_400);
    }

    #[test]
    fn password_delay_starts_after_the_free_failures() {
        assert_eq!(password_delay(4, 5), 0);
        assert_eq!(password_delay(5, 5), 2);
        assert_eq!(password_delay(6, 5), 4);
        assert_eq!(password_delay(10_000, 5), 300);
    }
}
