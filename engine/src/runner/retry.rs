//! Retries, pure: whether a finished run is tried again, and after how long.

use crate::model::{RunStatus, MAX_RETRY_BACKOFF_SECS};
use std::time::Duration;

/// Whether attempt `attempt` ending `status` is retried, given the job's `retries`. A run
/// ended by shutdown is not: the next boot decides (interrupted runs retry if allowed).
pub fn should_retry(status: RunStatus, attempt: u32, retries: u32, shutting_down: bool) -> bool {
    matches!(status, RunStatus::Failed | RunStatus::TimedOut)
        && attempt <= retries
        && !shutting_down
}

/// The wait before attempt `next_attempt` (2 or more): `base * 2^(next_attempt - 2)`,
/// doubling per attempt, never more than a day.
pub fn backoff(base_secs: u64, next_attempt: u32) -> Duration {
    let doublings = next_attempt.saturating_sub(2).min(16);
    Duration::from_secs(
        base_secs
            .saturating_mul(1u64 << doublings)
            .min(MAX_RETRY_BACKOFF_SECS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_per_attempt_and_stops_at_a_day() {
        assert_eq!(backoff(10, 2), Duration::from_secs(10));
        assert_eq!(backoff(10, 3), Duration::from_secs(20));
        assert_eq!(backoff(10, 5), Duration::from_secs(80));
        assert_eq!(backoff(0, 9), Duration::ZERO);
        assert_eq!(
            backoff(3600, 20),
            Duration::from_secs(MAX_RETRY_BACKOFF_SECS)
        );
        assert_eq!(
            backoff(u64::MAX, 2),
            Duration::from_secs(MAX_RETRY_BACKOFF_SECS)
        );
    }

    #[test]
    fn only_failures_within_the_allowed_attempts_are_retried() {
        assert!(should_retry(RunStatus::Failed, 1, 2, false));
        assert!(should_retry(RunStatus::TimedOut, 2, 2, false));
        assert!(
            !should_retry(RunStatus::Failed, 3, 2, false),
            "out of attempts"
        );
        assert!(!should_retry(RunStatus::Succeeded, 1, 2, false));
        assert!(
            !should_retry(RunStatus::Cancelled, 1, 2, false),
            "cancelled by someone"
        );
        assert!(!should_retry(RunStatus::Interrupted, 1, 2, false));
        assert!(
            !should_retry(RunStatus::Failed, 1, 2, true),
            "shutting down"
        );
    }
}
