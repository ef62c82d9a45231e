//! Prometheus metrics of `listen`, served on `/metrics`.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `cronjobs_wikipedia_todo_runs_total` | counter | `outcome` = `created`, `failed` |
//! | `cronjobs_wikipedia_todo_duration_seconds` | histogram | one request, retries included |
//!
//! A registry per [`Metrics`] rather than the process-global default, so
//! tests can build several.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    runs: IntCounterVec,
    pub duration: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let runs = IntCounterVec::new(
            Opts::new(
                "cronjobs_wikipedia_todo_runs_total",
                "wikipedia-todo requests handled by `listen`, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "cronjobs_wikipedia_todo_duration_seconds",
                "Time to handle one wikipedia-todo request, retries included",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(runs.clone()))
            .expect("metric names are unique");
        registry
            .register(Box::new(duration.clone()))
            .expect("metric names are unique");
        // Both outcomes show from the start, so rate() works before the first failure.
        for outcome in ["created", "failed"] {
            runs.with_label_values(&[outcome]);
        }
        Self {
            registry,
            runs,
            duration,
        }
    }

    pub fn record(&self, created: bool) {
        let outcome = if created { "created" } else { "failed" };
        self.runs.with_label_values(&[outcome]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
/// `/metrics`: every metric in the Prometheus text format.
impl service_kit::ops::Metrics for Metrics {
    async fn render(&self) -> String {
        service_kit::ops::text(&self.registry)
    }
}
