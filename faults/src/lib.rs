//! The fault suite's harness: the whole Docket stack as real processes on
//! loopback, a steady write load, a scriptable webhook receiver, and the
//! end-of-scenario ledger that checks the database, the `TODOS` stream and
//! the receiver agree.
//!
//! It is a crate of its own because a fault scenario spans the app and the
//! broadcaster and belongs to neither; the scenarios are the `faults` test
//! binary (`tests/faults/`), which `cargo xtask test --faults` runs.

pub mod ledger;
pub mod load;
pub mod receiver;
pub mod report;
pub mod stack;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `check` until it yields `Some`, or fails after `within`.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An HTTP client that never goes through a proxy and opens a connection per
/// request, so a refused connection (the server is gone) is told apart from
/// a request cut off in flight.
pub fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(timeout)
        .build()
        .expect("a plain client builds")
}
