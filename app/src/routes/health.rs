//! What the kit's probes and scrape (`service_kit::ops`) ask of the app,
//! and the version for deploy checks.
//!
//! With `ADMIN_PORT` set they are served there (see [`super::admin_router`]);
//! `/version` stays on the public port as well, where deploy checks read it.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use service_kit::ops::Readiness;

use crate::build;
use crate::db;
use crate::state::AppState;

/// `/version`: for deploy checks, which read it through the public URL.
pub fn version_router() -> Router<AppState> {
    Router::new().route("/version", get(version))
}

/// Ready for traffic: migrations have run and Postgres answers now. The
/// answer names the dependency; the driver's error, which can carry host
/// and user names, goes to the log only.
impl Readiness for AppState {
    async fn check(&self) -> Result<(), &'static str> {
        if !self.is_migrated() {
            return Err("database migrations have not run yet");
        }
        let ping = sqlx::query_scalar::<_, i32>("select 1").fetch_one(&self.pool);
        match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "readiness: the database is unreachable");
                Err("database unreachable")
            }
            Err(_) => Err("database did not answer within 2 s"),
        }
    }
}

/// The app's metrics, with the outbox backlog read for each scrape.
impl service_kit::ops::Metrics for AppState {
    async fn render(&self) -> String {
        refresh_outbox_pending(self).await;
        self.metrics.render()
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
