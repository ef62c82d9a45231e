//! Probes and version.

use std::time::Duration;

use serde_json::Value;
use test_support::{Postgres, ensure_database, test_nats};

use crate::helpers::{API_TOKEN, DEADLINE, spawn_app, spawn_app_on};

#[tokio::test]
async fn healthz_and_version_answer() {
    let app = spawn_app().await;

    assert_eq!(app.get("/healthz").await.status(), 200);
    let version: Value = app.get("/version").await.json().await.unwrap();
    assert_eq!(version["name"], "todo-app");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn readyz_follows_postgres_down_and_back_up_and_the_app_keeps_running() {
    let mut postgres = Postgres::start().unwrap();
    let database_url = ensure_database(&postgres.url(), "docket").await.unwrap();
    let nats = test_nats().unwrap();
    let app = spawn_app_on(&database_url, &nats.url, Some(API_TOKEN)).await;
    app.wait_until_ready().await;
    let kept = app.create_todo("written before the restart").await;

    postgres.stop().unwrap();
    let down = app.get("/readyz").await;
    assert_eq!(down.status(), 503);
    assert!(down.text().await.unwrap().contains("database"));
    let started = tokio::time::Instant::now();
    let page = app.get("/").await;
    assert_eq!(page.status(), 503, "a clear error page, not a hang");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("database is unavailable")
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the process lives on"
    );

    postgres.start_again().unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while app.get("/readyz").await.status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let todo: Value = app
        .get(&format!("/api/todos/{kept}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(todo["text"], "written before the restart");
}
