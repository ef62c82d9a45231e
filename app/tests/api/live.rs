//! Live updates: `GET /events` and the lists fragment the page re-fetches.

use std::time::Duration;

use reqwest::Method;
use test_support::{eventually, free_port, test_database};
use tokio::time::Instant;
use uuid::Uuid;

use crate::helpers::{
    API_TOKEN, DEADLINE, TestApp, spawn_app, spawn_app_adjusted, spawn_app_on, spawn_binary,
};

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    name: String,
    data: String,
}

/// A client reading `/events` the way a browser's `EventSource` does.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn connect(base_url: &str) -> EventStream {
        // No overall timeout: the stream is meant to stay open.
        let response = reqwest::Client::new()
            .get(format!("{base_url}/events"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the server ended the stream.
    async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    name: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event.name = name.trim_start().to_owned();
                    } else if let Some(data) = line.strip_prefix("data:") {
                        event.data.push_str(data.trim_start());
                        has_data = true;
                    }
                }
                // Like a browser: a block without data (a keep-alive comment) is no event.
                if has_data {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {within:?}"));
            match chunk {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Skips events until one is about `todo_id`, which must come `within`.
    async fn expect_todo_event(&mut self, todo_id: Uuid, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .next(left)
                .await
                .expect("the stream stays open while the app runs");
            if event.name != "todo" {
                continue;
            }
            let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
            if data["id"] == todo_id.to_string() {
                return data;
            }
        }
    }
}

/// Opens `/events` and waits until the app's NATS subscription delivers:
/// it connects to NATS in the background, so the first event may take a
/// moment; every later one must be fast.
async fn connected_stream(app: &TestApp) -> EventStream {
    let mut events = EventStream::connect(&app.address).await;
    let first = events.next(DEADLINE).await.unwrap();
    assert_eq!(first.name, "refresh", "every stream starts with a refresh");
    let warm_up = app.create_todo("warm-up").await;
    events.expect_todo_event(warm_up, DEADLINE).await;
    events
}

#[tokio::test]
async fn a_client_on_events_receives_a_todo_created_through_the_api_within_a_second() {
    let app = spawn_app().await;
    let mut events = connected_stream(&app).await;

    let started = Instant::now();
    let id = app.create_todo("Read the SSE spec").await;

    let data = events.expect_todo_event(id, Duration::from_secs(1)).await;
    assert_eq!(data["type"], "todo.created");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn changes_from_the_page_and_deletes_are_announced_too() {
    let app = spawn_app().await;
    let mut events = connected_stream(&app).await;
    let id = app.create_todo("Water plants").await;
    events.expect_todo_event(id, Duration::from_secs(1)).await;

    app.htmx(Method::PUT, &format!("/todos/{id}"), &[("done", "true")])
        .await;
    let updated = events.expect_todo_event(id, Duration::from_secs(1)).await;
    app.htmx(Method::DELETE, &format!("/todos/{id}"), &[]).await;
    let deleted = events.expect_todo_event(id, Duration::from_secs(1)).await;

    assert_eq!(updated["type"], "todo.updated");
    assert_eq!(deleted["type"], "todo.deleted");
}

#[tokio::test]
async fn the_event_stream_is_marked_for_proxies_and_never_cached() {
    let app = spawn_app().await;

    let events = EventStream::connect(&app.address).await;

    let headers = events.response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
}

#[tokio::test]
async fn a_stream_ends_at_its_lifetime_and_its_place_is_freed() {
    let app = spawn_app_adjusted(|config| {
        config.stream_limits.lifetime = Duration::from_secs(1);
    })
    .await;
    let mut events = EventStream::connect(&app.address).await;
    assert_eq!(events.next(DEADLINE).await.unwrap().name, "refresh");
    assert_eq!(open_streams(&app).await, 1);

    // Ended by the server within its lifetime (up to a tenth less), after
    // which a browser reconnects on the `retry` the stream began with.
    let started = Instant::now();
    while events.next(DEADLINE).await.is_some() {}
    assert!(started.elapsed() < Duration::from_secs(3));
    eventually(DEADLINE, "the ended stream to be counted out", || async {
        (open_streams(&app).await == 0).then_some(())
    })
    .await
    .unwrap();
    let mut again = EventStream::connect(&app.address).await;
    assert_eq!(again.next(DEADLINE).await.unwrap().name, "refresh");
}

#[tokio::test]
async fn a_client_over_its_cap_is_refused_with_retry_after_until_one_closes() {
    let app = spawn_app_adjusted(|config| {
        config.stream_limits.per_client = std::num::NonZeroU32::new(2).unwrap();
    })
    .await;
    let first = EventStream::connect(&app.address).await;
    let _second = EventStream::connect(&app.address).await;

    let refused = app.get("/events").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("live-update streams")
    );

    drop(first);
    eventually(DEADLINE, "a place to be free again", || async {
        (app.get("/events").await.status() == 200).then_some(())
    })
    .await
    .unwrap();
}

/// `live_streams_open`, from the app's `/metrics`.
async fn open_streams(app: &TestApp) -> i64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("live_streams_open "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn pages_hear_about_changes_when_nats_was_down_at_start() {
    let database = test_database().await.unwrap();
    let port = free_port();
    let app = spawn_app_on(
        &database.url,
        &format!("nats://127.0.0.1:{port}"),
        Some(API_TOKEN),
    )
    .await;
    app.wait_until_ready().await;
    let mut events = EventStream::connect(&app.address).await;

    let dir = tempfile::tempdir().unwrap();
    let _nats = test_support::Nats::start_in(dir.path(), port).unwrap();
    let id = app.create_todo("Published once NATS is up").await;

    events.expect_todo_event(id, DEADLINE).await;
}

#[tokio::test]
async fn the_lists_fragment_shows_each_todo_once_after_the_page_added_it() {
    let app = spawn_app().await;
    let mut events = connected_stream(&app).await;

    // The page adds a todo, then hears about its own change and re-fetches.
    let added = app
        .htmx(Method::POST, "/todos", &[("text", "Added on this page")])
        .await;
    assert_eq!(added.status(), 200);
    let id: Uuid = sqlx::query_scalar("select id from todos where text = 'Added on this page'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    events.expect_todo_event(id, Duration::from_secs(1)).await;
    let response = app.htmx(Method::GET, "/fragments/todo-lists", &[]).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.starts_with(r#"<section id="todo-lists""#), "{html}");
    assert!(!html.contains("<html"), "a fragment, not a page: {html}");
    assert_eq!(
        html.matches(">Added on this page</span>").count(),
        1,
        "{html}"
    );
    assert_eq!(html.matches(&format!(r#"data-todo-id="{id}""#)).count(), 1);
}

#[tokio::test]
async fn the_page_subscribes_with_the_vendored_sse_extension_and_morphs_its_lists() {
    let app = spawn_app().await;

    let html = app.get("/").await.text().await.unwrap();
    let script = app.get("/static/htmx-ext-sse-2.2.4.min.js").await;

    assert!(html.contains(r#"sse-connect="/events""#), "{html}");
    assert!(
        html.contains(
            r#"hx-trigger="sse:todo, sse:refresh, todos-changed from:body, lists-lengthened""#
        ),
        "{html}"
    );
    assert!(html.contains(r#"hx-get="/fragments/todo-lists""#), "{html}");
    assert!(html.contains(r#"hx-ext="sse, morph""#), "{html}");
    assert!(html.contains(r#"hx-swap="morph:outerHTML""#), "{html}");
    for script in [
        "/static/htmx-ext-sse-2.2.4.min.js",
        "/static/idiomorph-ext-0.8.0.min.js",
    ] {
        assert!(
            html.contains(&format!(r#"<script src="{script}" defer></script>"#)),
            "{html}"
        );
        assert_eq!(app.get(script).await.status(), 200, "{script}");
    }
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert!(script.text().await.unwrap().contains("sse-connect"));
}

#[tokio::test]
async fn sigterm_with_an_open_event_stream_still_exits_within_a_few_seconds() {
    let mut app = spawn_binary(&[]).await;
    let mut events = EventStream::connect(&app.url("")).await;
    assert_eq!(events.next(DEADLINE).await.unwrap().name, "refresh");

    let started = Instant::now();
    app.service.terminate();

    let status = app.service.wait(Duration::from_secs(3)).await.unwrap();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        app.service.output()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        events.next(Duration::from_secs(1)).await.is_none(),
        "the stream ended"
    );
}
