//! The operations port: `/healthz`, `/readyz`, `/metrics`.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 only
//! while the NATS connection is up and the durable consumer exists, which
//! is what the broadcaster needs to make progress; it has no traffic to
//! route, so readiness is for deploy gates and dashboards, not for a
//! load balancer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::connection::State;
use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

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
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(Extract(state): Extract<AppState>) -> impl IntoResponse {
    let connected = state.nats.connection_state() == State::Connected;
    let consumer = state.consumer_ready.load(Ordering::Acquire);
    match (connected, consumer) {
        (true, true) => (StatusCode::OK, "ready"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "consumer not created yet"),
    }
}

async fn metrics(Extract(state): Extract<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
