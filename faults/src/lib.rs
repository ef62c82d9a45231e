//! The fault suite's harness: the whole Docket stack as real processes on
//! loopback, a steady write load, the `test-support` webhook receiver, and the
//! end-of-scenario ledger that checks the database, the `TODOS` stream and
//! the receiver agree.
//!
//! It is a crate of its own because a fault scenario spans the app and the
//! broadcaster and belongs to neither; the scenarios are the `faults` test
//! binary (`tests/faults/`), which `cargo xtask test --faults` runs.

pub mod ledger;
pub mod load;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod stack;

use std::time::Duration;

pub use test_support::eventually;

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
