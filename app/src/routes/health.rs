//! Probes for the orchestrator and the version for deploy checks.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::metrics::COMMIT;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
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
        "version": env!("CARGO_PKG_VERSION"),
        "commit": COMMIT.as_str(),
    }))
}
