//! Probes, version, the admin port, and what the request metrics count.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use test_support::{Postgres, ensure_database, eventually, test_nats};

use crate::helpers::{API_TOKEN, DEADLINE, TestApp, spawn_app, spawn_app_adjusted, spawn_app_on};

/// `/healthz`, `/readyz`, `/metrics`, `/version`.
const OPERATIONAL: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/version"];

async fn spawn_app_with_admin_port() -> TestApp {
    spawn_app_adjusted(|config| config.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await
}

/// The `http_requests_total` and `http_request_duration_seconds` lines of
/// a metrics text that name `route`.
fn request_lines<'a>(metrics: &'a str, route: &str) -> Vec<&'a str> {
    let label = format!("route=\"{route}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with("http_request") && line.contains(&label))
        .collect()
}

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
    let reason = down.text().await.unwrap();
    assert!(
        matches!(
            reason.as_str(),
            "not ready: database unreachable\n" | "not ready: database did not answer within 2 s\n"
        ),
        "which dependency is down, never the driver's error text: {reason:?}"
    );
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
    eventually(DEADLINE, "the app to be ready again", || async {
        (app.get("/readyz").await.status() == 200).then_some(())
    })
    .await
    .unwrap();
    let todo: Value = app
        .get(&format!("/api/todos/{kept}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(todo["text"], "written before the restart");
}

#[tokio::test]
async fn with_an_admin_port_the_operational_routes_move_there_and_version_stays_on_both() {
    let app = spawn_app_with_admin_port().await;
    let status = |url: String| {
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().status() }
    };

    for path in OPERATIONAL {
        assert_eq!(status(app.admin_url(path)).await, 200, "admin {path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(status(app.url(path)).await, 404, "public {path}");
    }
    let public: Value = app.get("/version").await.json().await.unwrap();
    let admin: Value = app.admin_get("/version").await.json().await.unwrap();
    assert_eq!(public, admin);
    assert_eq!(status(app.url("/")).await, 200, "the app stays public");
    assert_eq!(
        status(app.admin_url("/")).await,
        404,
        "only operations on the admin port"
    );
}

#[tokio::test]
async fn operational_routes_are_never_counted_in_the_request_metrics_on_one_port() {
    let app = spawn_app().await;

    for path in OPERATIONAL.iter().chain(&OPERATIONAL) {
        assert!(app.get(path).await.status().is_success(), "{path}");
    }
    assert_eq!(app.get("/").await.status(), 200);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    for path in OPERATIONAL {
        assert_eq!(request_lines(&metrics, path), Vec::<&str>::new(), "{path}");
    }
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"http_request_duration_seconds_count{method="GET",route="/"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn operational_routes_are_never_counted_in_the_request_metrics_on_either_port() {
    let app = spawn_app_with_admin_port().await;

    for path in OPERATIONAL {
        assert!(app.admin_get(path).await.status().is_success(), "{path}");
    }
    assert_eq!(app.get("/version").await.status(), 200);
    assert_eq!(app.get("/").await.status(), 200);

    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    for path in OPERATIONAL {
        assert_eq!(request_lines(&metrics, path), Vec::<&str>::new(), "{path}");
    }
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/",status="200"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_build_info_gauge_names_the_version_and_commit_that_version_reports() {
    let app = spawn_app().await;
    let version: Value = app.get("/version").await.json().await.unwrap();

    let metrics = app.get("/metrics").await.text().await.unwrap();

    let line = metrics
        .lines()
        .find(|line| line.starts_with("todo_app_build_info{"))
        .unwrap_or_else(|| panic!("no todo_app_build_info in\n{metrics}"));
    assert!(line.ends_with("} 1"), "{line}");
    for label in ["version", "commit"] {
        let expected = format!("{label}=\"{}\"", version[label].as_str().unwrap());
        assert!(line.contains(&expected), "{line} lacks {expected}");
    }
}

/// Any client can send any method and path; none may add a series. The
/// first flood creates the few series such requests belong to (`other`
/// method; 404, 405, and 429 once the write limit is reached); a second,
/// larger one must add none.
#[tokio::test]
async fn made_up_methods_and_paths_add_no_metric_series() {
    let app = spawn_app_with_admin_port().await;
    let flood = |requests: usize| {
        let app = &app;
        async move {
            for _ in 0..requests {
                let token = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
                let path = if token.ends_with(['0', '1', '2', '3', '4', '5', '6', '7']) {
                    "/todos".to_owned()
                } else {
                    format!("/{token}")
                };
                let method = reqwest::Method::from_bytes(format!("M{token}").as_bytes()).unwrap();
                let answer = app.client.request(method, app.url(&path)).send().await;
                let status = answer.unwrap().status();
                assert!(status.is_client_error(), "{status}");
            }
        }
    };
    let series = |metrics: &str| -> BTreeSet<String> {
        metrics
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
            .collect()
    };

    flood(1_000).await;
    let before = series(&app.admin_get("/metrics").await.text().await.unwrap());
    flood(10_000).await;
    let after = series(&app.admin_get("/metrics").await.text().await.unwrap());

    let added: Vec<&String> = after.difference(&before).collect();
    assert_eq!(
        added,
        Vec::<&String>::new(),
        "series added by the second flood"
    );
    let methods: BTreeSet<&str> = after
        .iter()
        .filter_map(|series| series.split_once("method=\"")?.1.split_once('"'))
        .map(|(method, _)| method)
        .collect();
    assert_eq!(methods, BTreeSet::from(["other"]), "{after:?}");
}
