//! Prometheus metrics, served on `/metrics`.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `broadcaster_messages_processed_total` | counter | `outcome` = `delivered`, `logged`, `duplicate`, `dead_lettered` |
//! | `broadcaster_webhook_errors_total` | counter | `reason` = `timeout`, `connect`, `request`, `http_<status>` |
//! | `broadcaster_webhook_duration_seconds` | histogram | one webhook attempt, any outcome |
//! | `broadcaster_delivery_lag_seconds` | histogram | event `occurred_at` to the 2xx |
//! | `broadcaster_nats_connected` | gauge | 1 while the NATS connection is up |
//! | `broadcaster_nats_messages_total` | counter | `direction` = `sent`, `received`: messages exchanged with NATS (events, bucket reads and writes, acks, pull requests), read from the client at each scrape |
//! | `broadcaster_consumer_pending` | gauge | events not yet delivered to any replica (read at each scrape) |
//! | `broadcaster_consumer_ack_pending` | gauge | events delivered, not yet acknowledged |
//! | `broadcaster_oldest_unacked_age_seconds` | gauge | age of the oldest event not yet acknowledged; 0 when none waits |
//!
//! A registry per [`Metrics`] rather than the process-global default, so
//! unit tests can build several without clashing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use async_nats::Statistics;
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

use crate::lag::LagSource;

/// Outcomes counted in `broadcaster_messages_processed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Logged,
    Duplicate,
    DeadLettered,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Logged => "logged",
            Outcome::Duplicate => "duplicate",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

/// The broadcaster's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    processed: IntCounterVec,
    webhook_errors: IntCounterVec,
    pub webhook_duration: Histogram,
    pub delivery_lag: Histogram,
    pub nats_connected: IntGauge,
    nats_messages: IntCounterVec,
    /// The NATS client's own counts, once connected; read at each scrape.
    nats_statistics: Arc<OnceLock<Arc<Statistics>>>,
    /// Read at each scrape (see `lag`).
    pub lag: LagSource,
    consumer_pending: IntGauge,
    consumer_ack_pending: IntGauge,
    oldest_unacked_age: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let processed = IntCounterVec::new(
            Opts::new(
                "broadcaster_messages_processed_total",
                "Events finished, by outcome.",
            ),
            &["outcome"],
        )
        .unwrap();
        let webhook_errors = IntCounterVec::new(
            Opts::new(
                "broadcaster_webhook_errors_total",
                "Failed webhook attempts, by reason.",
            ),
            &["reason"],
        )
        .unwrap();
        let webhook_duration = Histogram::with_opts(
            HistogramOpts::new(
                "broadcaster_webhook_duration_seconds",
                "Duration of one webhook attempt.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .unwrap();
        let delivery_lag = Histogram::with_opts(
            HistogramOpts::new(
                "broadcaster_delivery_lag_seconds",
                "Time from the event happening to the webhook accepting it.",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 7200.0,
            ]),
        )
        .unwrap();
        let nats_connected =
            IntGauge::new("broadcaster_nats_connected", "1 while connected to NATS.").unwrap();
        let nats_messages = IntCounterVec::new(
            Opts::new(
                "broadcaster_nats_messages_total",
                "Messages exchanged with NATS, by direction.",
            ),
            &["direction"],
        )
        .unwrap();
        let consumer_pending = IntGauge::new(
            "broadcaster_consumer_pending",
            "Events on TODOS not yet delivered to any broadcaster replica.",
        )
        .unwrap();
        let consumer_ack_pending = IntGauge::new(
            "broadcaster_consumer_ack_pending",
            "Events delivered to a replica and not yet acknowledged.",
        )
        .unwrap();
        let oldest_unacked_age = Gauge::new(
            "broadcaster_oldest_unacked_age_seconds",
            "Age of the oldest event not yet acknowledged (0 when none waits); TODOS drops events older than 7 days.",
        )
        .unwrap();
        for collector in [
            Box::new(processed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(consumer_pending.clone()),
            Box::new(consumer_ack_pending.clone()),
            Box::new(oldest_unacked_age.clone()),
            Box::new(webhook_errors.clone()),
            Box::new(webhook_duration.clone()),
            Box::new(delivery_lag.clone()),
            Box::new(nats_connected.clone()),
            Box::new(nats_messages.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        // Every outcome shows from the start, so a rate() over it is never "no data".
        for outcome in [
            Outcome::Delivered,
            Outcome::Logged,
            Outcome::Duplicate,
            Outcome::DeadLettered,
        ] {
            processed.with_label_values(&[outcome.as_str()]);
        }
        for reason in ["timeout", "connect", "request"] {
            webhook_errors.with_label_values(&[reason]);
        }
        for direction in ["sent", "received"] {
            nats_messages.with_label_values(&[direction]);
        }
        Metrics {
            registry,
            processed,
            webhook_errors,
            webhook_duration,
            delivery_lag,
            nats_connected,
            nats_messages,
            nats_statistics: Arc::default(),
            lag: LagSource::default(),
            consumer_pending,
            consumer_ack_pending,
            oldest_unacked_age,
        }
    }

    pub fn processed(&self, outcome: Outcome) {
        self.processed.with_label_values(&[outcome.as_str()]).inc();
    }

    pub fn webhook_error(&self, reason: &str) {
        self.webhook_errors.with_label_values(&[reason]).inc();
    }

    /// Counts the messages `client` exchanges with NATS from now on (the
    /// first client given; later calls change nothing).
    pub fn count_messages_of(&self, client: &async_nats::Client) {
        let _ = self.nats_statistics.set(client.statistics());
    }

    /// Brings `broadcaster_nats_messages_total` up to the client's counts.
    fn read_nats_statistics(&self) {
        let Some(statistics) = self.nats_statistics.get() else {
            return;
        };
        for (direction, count) in [
            ("sent", &statistics.out_messages),
            ("received", &statistics.in_messages),
        ] {
            let counter = self.nats_messages.with_label_values(&[direction]);
            counter.inc_by(count.load(Ordering::Relaxed).saturating_sub(counter.get()));
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `/metrics`: every metric in the Prometheus text format.
impl service_kit::ops::Metrics for Metrics {
    async fn render(&self) -> String {
        self.read_nats_statistics();
        if let Some(lag) = self.lag.read().await {
            self.consumer_pending
                .set(i64::try_from(lag.pending).unwrap_or(i64::MAX));
            self.consumer_ack_pending
                .set(i64::try_from(lag.ack_pending).unwrap_or(i64::MAX));
            self.oldest_unacked_age
                .set(lag.oldest_unacked_age.as_secs_f64());
        }
        service_kit::ops::text(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_every_documented_metric() {
        let metrics = Metrics::new();
        metrics.processed(Outcome::Delivered);
        metrics.webhook_error("http_503");
        metrics.webhook_duration.observe(0.2);
        metrics.delivery_lag.observe(1.5);
        metrics.nats_connected.set(1);
        let text = service_kit::ops::text(&metrics.registry);
        for line in [
            r#"broadcaster_messages_processed_total{outcome="delivered"} 1"#,
            r#"broadcaster_messages_processed_total{outcome="dead_lettered"} 0"#,
            r#"broadcaster_webhook_errors_total{reason="http_503"} 1"#,
            "broadcaster_webhook_duration_seconds_count 1",
            "broadcaster_delivery_lag_seconds_count 1",
            "broadcaster_nats_connected 1",
            r#"broadcaster_nats_messages_total{direction="sent"} 0"#,
            r#"broadcaster_nats_messages_total{direction="received"} 0"#,
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}
