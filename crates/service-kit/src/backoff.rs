//! Retries with exponential backoff, through `backon`.
//!
//! One helper for every loop that tries something again after a pause, so
//! each logs its retries the same way (the error with its causes, and the
//! wait) and jitters them, so replicas that failed together do not come
//! back together.

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Exponential waits from `first` doubling up to `longest`, jittered, at
/// most `retries` times after the first attempt (`None`: until it works).
pub fn exponential(
    first: Duration,
    longest: Duration,
    retries: Option<usize>,
) -> ExponentialBuilder {
    let policy = ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(longest)
        .with_jitter();
    match retries {
        Some(times) => policy.with_max_times(times),
        None => policy.without_max_times(),
    }
}

/// Runs `attempt` until it succeeds, fails in a way `retryable` refuses,
/// or `policy` runs out; each retry is logged with `what` failed.
pub async fn retry<T, E, F, Fut>(
    what: &str,
    policy: ExponentialBuilder,
    retryable: impl FnMut(&E) -> bool,
    attempt: F,
) -> Result<T, E>
where
    E: Error,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    attempt
        .retry(policy)
        .when(retryable)
        .notify(|error, delay| {
            tracing::warn!(
                error = %chain(error),
                retry_in_ms = delay.as_millis() as u64,
                "{what} failed; retrying"
            );
        })
        .await
}

/// The error and its causes on one line.
pub fn chain(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("attempt failed")]
    struct Failed {
        #[source]
        cause: std::io::Error,
    }

    fn failed() -> Failed {
        Failed {
            cause: std::io::Error::other("refused"),
        }
    }

    fn quick(retries: Option<usize>) -> ExponentialBuilder {
        exponential(Duration::from_millis(1), Duration::from_millis(2), retries)
    }

    #[tokio::test]
    async fn without_a_limit_it_tries_until_it_works() {
        let calls = AtomicU32::new(0);
        let result = retry(
            "test",
            quick(None),
            |_| true,
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0..=9 => Err(failed()),
                    _ => Ok("done"),
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn retries_run_out_and_refused_errors_stop_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(
            "test",
            quick(Some(2)),
            |_| true,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(failed())
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(
            "test",
            quick(None),
            |_| false,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(failed())
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_chain_joins_the_causes() {
        assert_eq!(chain(&failed()), "attempt failed: refused");
    }
}
