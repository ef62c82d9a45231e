//! The operations port of `listen`: `/healthz`, `/readyz`, `/metrics`.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 once the
//! queue subscription is registered with the NATS server and while the
//! connection is up: then a request sent to `jobs.wikipedia-todo` reaches
//! this replica's group.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::connection::State as Connection;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct OpsState {
    pub metrics: Metrics,
    pub nats: async_nats::Client,
    pub subscribed: Arc<AtomicBool>,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<OpsState>) -> (StatusCode, &'static str) {
    if state.nats.connection_state() != Connection::Connected {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not connected to NATS\n",
        );
    }
    if !state.subscribed.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not subscribed yet\n",
        );
    }
    (StatusCode::OK, "ready\n")
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
