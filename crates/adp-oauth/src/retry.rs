//! Back-off for transient failures: exponential, capped, with jitter so that many
//! replicas refreshing at once do not hammer a recovering provider in lockstep.

use std::time::Duration;

use crate::FlowError;
use crate::error::Failure;

/// How often and how patiently a retried call is attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubles after each further failure.
    pub base_delay: Duration,
    /// Upper bound on one delay. A `Retry-After` longer than this ends the retries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The delay after the `failures`-th consecutive failure (1-based): half of the capped
    /// exponential delay plus a random share of the other half ("equal jitter").
    pub fn backoff(&self, failures: u32) -> Duration {
        adp_core::backoff::Backoff::new(self.base_delay, self.max_delay).delay(failures)
    }

    /// Every attempt taking `per_attempt`, separated by the longest back-offs.
    pub fn worst_case(&self, per_attempt: Duration) -> Duration {
        let attempts = self.attempts.max(1);
        per_attempt.saturating_mul(attempts) + self.max_delay.saturating_mul(attempts - 1)
    }
}

/// The bookkeeping of one retried operation. A loop rather than a helper taking a
/// closure: closures returning borrowing futures would make the flows' futures `!Send`.
///
/// ```text
/// let mut attempts = Attempts::new(&policy, "refresh");
/// loop {
///     match once().await {
///         Ok(value) => return Ok(value),
///         Err(failure) => attempts.failed(failure).await?,
///     }
/// }
/// ```
#[derive(Debug)]
pub(crate) struct Attempts<'a> {
    policy: &'a RetryPolicy,
    operation: &'static str,
    failures: u32,
}

impl<'a> Attempts<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy, operation: &'static str) -> Self {
        Attempts {
            policy,
            operation,
            failures: 0,
        }
    }

    /// Sleeps before the next attempt, or returns the error when it is not transient,
    /// the attempts are spent, or the provider's `Retry-After` exceeds `max_delay`.
    pub(crate) async fn failed(&mut self, failure: Failure) -> Result<(), FlowError> {
        let Failure { error, retry_after } = failure;
        self.failures += 1;
        if !error.is_transient() || self.failures >= self.policy.attempts {
            return Err(error);
        }
        let mut delay = self.policy.backoff(self.failures);
        if let Some(wait) = retry_after {
            if wait > self.policy.max_delay {
                tracing::warn!(operation = self.operation, retry_after_s = wait.as_secs(), %error, "provider asked to retry later than the retry policy allows");
                return Err(error);
            }
            delay = delay.max(wait);
        }
        tracing::warn!(operation = self.operation, attempt = self.failures, delay_ms = delay.as_millis() as u64, %error, "oauth call failed, retrying");
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy::default();
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
            let second = policy.backoff(2);
            assert!(second >= Duration::from_millis(200) && second <= Duration::from_millis(400));
            let late = policy.backoff(40);
            assert!(late >= Duration::from_secs(1) && late <= Duration::from_secs(2));
        }
        assert_eq!(policy.attempts, 3);
    }

    #[test]
    fn the_worst_case_counts_every_attempt_and_every_backoff() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.worst_case(Duration::from_secs(10)),
            Duration::from_secs(3 * 10 + 2 * 2)
        );
        let once = RetryPolicy {
            attempts: 1,
            ..policy
        };
        assert_eq!(
            once.worst_case(Duration::from_secs(10)),
            Duration::from_secs(10)
        );
    }
}
