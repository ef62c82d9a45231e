//! Probes for the orchestrator, the scrape, and the version for deploy checks.
//!
//! With `ADMIN_PORT` set they are served there (see [`super::admin_router`]);
//! `/version` stays on the public port as well, where deploy checks read it.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::build;
use crate::db;
use crate::state::AppState;

/// `/healthz` and `/readyz`: for the orchestrator only.
pub fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// `/version`: for deploy checks, which read it through the public URL.
pub fn version_router() -> Router<AppState> {
    Router::new().route("/version", get(version))
}

/// The process is up and answering.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready for traffic: migrations have run and Postgres answers now.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if !state.is_migrated() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: database migrations have not run yet\n".into(),
        );
    }
    let ping = sqlx::query_scalar::<_, i32>("select 1").fetch_one(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n".into()),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database unreachable: {e}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: database did not answer within 2 s\n".into(),
        ),
    }
}

/// What is running: checked by `gitops verify-env` after a deploy.
async fn version() -> Json<Value> {
    Json(json!({
        "name": "todo-app",
        "version": build::VERSION,
        "commit": build::commit(),
    }))
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_outbox_pending(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Reads the outbox backlog for `/metrics`. Every replica reports the
/// same table, so the gauge is a fact about the database, not the pod.
async fn refresh_outbox_pending(state: &AppState) {
    let count = async {
        let mut conn = state.pool.acquire().await?;
        db::outbox::pending_count(&mut conn).await
    };
    if let Ok(Ok(count)) = tokio::time::timeout(Duration::from_secs(2), count).await {
        state.metrics.outbox_pending.set(count);
    }
}
