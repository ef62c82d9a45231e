//! What the operations port (`/healthz`, `/readyz`, `/metrics`, served by
//! `service_kit::ops`) looks at.
//!
//! `/readyz` answers 200 only while the NATS connection is up and the
//! durable consumer exists, which is what the broadcaster needs to make
//! progress; it has no traffic to route, so readiness is for deploy gates
//! and dashboards, not for a load balancer.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use service_kit::ops::NatsReadiness;

use crate::metrics::Metrics;

/// What the operations endpoints look at.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Metrics,
    pub nats: async_nats::Client,
    /// Set once the durable consumer has been created.
    pub consumer_ready: Arc<AtomicBool>,
}

/// The operations router: ready once connected and the consumer exists.
pub fn router(state: AppState) -> Router {
    let readiness =
        NatsReadiness::new(state.nats, state.consumer_ready, "consumer not created yet");
    service_kit::ops::router(readiness, state.metrics)
}
