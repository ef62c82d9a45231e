//! What the operations port of `listen` (`/healthz`, `/readyz`, `/metrics`,
//! served by `service_kit::ops`) looks at.
//!
//! `/readyz` answers 200 once the queue subscription is registered with the
//! NATS server and while the connection is up: then a request sent to
//! `jobs.wikipedia-todo` reaches this replica's group.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use service_kit::ops::Readiness;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct OpsState {
    pub metrics: Metrics,
    pub nats: async_nats::Client,
    pub subscribed: Arc<AtomicBool>,
}

pub fn router(state: OpsState) -> Router {
    service_kit::ops::router(state.clone(), state.metrics)
}

impl Readiness for OpsState {
    async fn check(&self) -> Result<(), String> {
        service_kit::ops::nats_ready(&self.nats, &self.subscribed, "not subscribed yet")
    }
}
