//! The controller's metrics, with label values from fixed sets only.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reconcile_failures: IntCounter,
    fetch_failures: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let reconcile_failures = IntCounter::new(
            "dummysite_reconcile_failures_total",
            "Reconciles that failed and were retried or wait for a new spec.",
        )
        .expect("a valid metric");
        let fetch_failures = IntCounterVec::new(
            Opts::new(
                "dummysite_fetch_failures_total",
                "Pages that could not be copied, by reason.",
            ),
            &["reason"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(reconcile_failures.clone()))
            .expect("registered once");
        registry
            .register(Box::new(fetch_failures.clone()))
            .expect("registered once");
        Metrics {
            registry,
            reconcile_failures,
            fetch_failures,
        }
    }

    pub fn reconcile_failed(&self) {
        self.reconcile_failures.inc();
    }

    /// `reason` is one of [`crate::fetch::FetchError::reason`]'s words.
    pub fn fetch_failed(&self, reason: &'static str) {
        self.fetch_failures.with_label_values(&[reason]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl service_kit::ops::Metrics for Metrics {
    async fn render(&self) -> String {
        service_kit::ops::text(&self.registry)
    }
}
