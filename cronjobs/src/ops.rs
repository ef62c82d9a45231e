//! What the operations port of `listen` (`/healthz`, `/readyz`, `/metrics`,
//! served by `service_kit::ops`) looks at.
//!
//! `/readyz` answers 200 once the queue subscription is registered with the
//! NATS server and while the connection is up: then a request sent to
//! `jobs.wikipedia-todo` reaches this replica's group.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use service_kit::ops::NatsReadiness;

use crate::metrics::Metrics;

/// The operations router; `subscribed` is set while the subscription is.
pub fn router(metrics: Metrics, nats: async_nats::Client, subscribed: Arc<AtomicBool>) -> Router {
    service_kit::ops::router(
        NatsReadiness::new(nats, subscribed, "not subscribed yet"),
        metrics,
    )
}
