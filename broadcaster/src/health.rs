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
use service_kit::ops::Readiness;

use crate::metrics::Metrics;

/// What the operations endpoints look at.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Metrics,
    pub nats: async_nats::Client,
    /// Set once the durable consumer has been created.
    pub consumer_ready: Arc<AtomicBool>,
}

/// The operations router.
pub fn router(state: AppState) -> Router {
    service_kit::ops::router(state.clone(), state.metrics)
}

impl Readiness for AppState {
    async fn check(&self) -> Result<(), String> {
        service_kit::ops::nats_ready(&self.nats, &self.consumer_ready, "consumer not created yet")
    }
}
