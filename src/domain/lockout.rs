//! How long the second factor stays locked after a run of failures.

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

#[cfg(test)]
mod tests {
    use super::*;

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
