//! Waiting for a condition instead of sleeping: poll until it holds or a
//! deadline passes.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// How often [`eventually`] checks again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls `check` until it yields `Some`, and returns that value; fails after
/// `within`, naming `what` was awaited.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {within:?} waiting for {what}");
        }
        sleep(POLL_EVERY).await;
    }
}
