//! Retries with exponential backoff for the transient failures
//! [`Error::is_transient`] names; anything else fails at once.

use std::future::Future;
use std::time::Duration;

use backon::ExponentialBuilder;

use crate::error::{Error, Result};

/// Four attempts in all, about 0.25 s, 0.5 s, 1 s apart (with jitter, so
/// replicas that failed together do not retry together): long enough to
/// ride out a restarting pod, short enough for an hourly job's deadline.
fn policy() -> ExponentialBuilder {
    service_kit::backoff::exponential(Duration::from_millis(250), Duration::from_secs(4), Some(3))
}

/// Runs `attempt` until it succeeds, fails for good, or the retries run out.
pub async fn with_backoff<T, F, Fut>(what: &str, attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    service_kit::backoff::retry(what, policy(), Error::is_transient, attempt).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn unavailable() -> Error {
        Error::UpstreamStatus {
            url: "u".into(),
            status: 503,
        }
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let result = with_backoff("test", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(unavailable()),
                _ => Ok("done"),
            }
        })
        .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = with_backoff("test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::NoRedirect {
                url: "u".into(),
                status: 200,
            })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retries_run_out_after_four_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = with_backoff("test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(unavailable())
        })
        .await;
        assert!(result.unwrap_err().is_transient());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
