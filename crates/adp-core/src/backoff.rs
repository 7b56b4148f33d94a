//! The one back-off policy of every retry loop (provider calls, the proxy's config-feed
//! reconnect, storing a refreshed token): exponential, capped, with "equal jitter", so
//! many replicas retrying at once do not hammer a recovering peer in lockstep.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The cap of the first delay; doubles after each further failure.
    pub base: Duration,
    /// The cap of any delay.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    /// The delay after the `failures`-th consecutive failure (1-based): half of the
    /// capped exponential delay plus a random share of the other half.
    pub fn delay(&self, failures: u32) -> Duration {
        let capped = self.cap(failures);
        let half = capped / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// The longest [`Backoff::delay`] can be after `failures` failures.
    pub fn cap(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(16);
        self.base.saturating_mul(1 << exponent).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_in_the_upper_half() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let caps: Vec<u128> = (1..=7).map(|n| backoff.cap(n).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff.cap(0), Duration::from_millis(100));
        assert_eq!(backoff.cap(u32::MAX), Duration::from_secs(2));
        for failures in 1..=7 {
            for _ in 0..50 {
                let delay = backoff.delay(failures);
                let cap = backoff.cap(failures);
                assert!(delay >= cap / 2 && delay <= cap, "{failures}: {delay:?}");
            }
        }
        // jitter: not every delay is the same
        let delays: std::collections::HashSet<Duration> =
            (0..50).map(|_| backoff.delay(5)).collect();
        assert!(delays.len() > 1);
    }
}
