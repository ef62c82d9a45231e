//! Every change reaches the `TODOS` stream as one event with the contract.

use events::EventType;
use reqwest::Method;

use crate::helpers::{TestApp, spawn_app};

/// Once published, the events about the only todo stored.
async fn events_about_the_one_todo(app: &TestApp) -> Vec<events::TodoEvent> {
    app.wait_for_outbox_drained().await;
    let id: uuid::Uuid = sqlx::query_scalar("select id from todos")
        .fetch_one(&app.db)
        .await
        .unwrap();
    app.events_about(&[id]).await
}

#[tokio::test]
async fn a_form_post_publishes_one_created_event_with_the_contract() {
    let app = spawn_app().await;

    app.post_form("/todos", &[("text", "Publish me")]).await;

    let events = events_about_the_one_todo(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.event_type, EventType::Created);
    assert_eq!(event.schema_version, events::SCHEMA_VERSION);
    assert_eq!(event.todo.text, "Publish me");
    assert!(!event.todo.done);
}

#[tokio::test]
async fn an_htmx_post_publishes_one_created_event() {
    let app = spawn_app().await;

    app.htmx(Method::POST, "/todos", &[("text", "From htmx")])
        .await;

    let events = events_about_the_one_todo(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].todo.text, "From htmx");
}

#[tokio::test]
async fn done_undone_and_delete_publish_their_events_in_order() {
    let app = spawn_app().await;
    let id = app.create_todo("Lifecycle").await;
    let path = format!("/todos/{id}");

    app.htmx(Method::PUT, &path, &[("done", "true")]).await;
    app.post_form(&path, &[("_method", "put"), ("done", "false")])
        .await;
    app.htmx(Method::DELETE, &path, &[]).await;
    app.wait_for_outbox_drained().await;

    let events = app.events_about(&[id]).await;
    let summary: Vec<_> = events.iter().map(|e| (e.event_type, e.todo.done)).collect();
    assert_eq!(
        summary,
        [
            (EventType::Created, false),
            (EventType::Updated, true),
            (EventType::Updated, false),
            (EventType::Deleted, false),
        ]
    );
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 4, "every event has its own id");
}

#[tokio::test]
async fn metrics_count_todos_and_published_events() {
    let app = spawn_app().await;
    app.create_todo("Counted").await;
    app.wait_for_outbox_drained().await;

    let metrics = app.get("/metrics").await.text().await.unwrap();

    assert!(metrics.contains("todos_created_total 1"), "{metrics}");
    assert!(metrics.contains("events_published_total 1"), "{metrics}");
    assert!(metrics.contains("outbox_pending 0"), "{metrics}");
    assert!(
        metrics.contains(r#"http_requests_total{method="POST",route="/api/todos",status="201"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_app_creates_the_stream_the_contract_defines() {
    let app = spawn_app().await;
    // The relay makes it, if it is missing, before it publishes.
    app.create_todo("Make the stream").await;
    app.wait_for_outbox_drained().await;
    let nats = async_nats::connect(&app.nats_url).await.unwrap();
    let mut stream = async_nats::jetstream::new(nats)
        .get_stream(events::STREAM)
        .await
        .unwrap();

    let made = &stream.info().await.unwrap().config;
    let wanted = events::stream_config(events::TodosStream::SINGLE_NODE);
    assert_eq!(made.subjects, wanted.subjects);
    assert_eq!(made.storage, wanted.storage);
    assert_eq!(made.max_age, wanted.max_age);
    assert_eq!(made.duplicate_window, wanted.duplicate_window);
}

#[tokio::test]
async fn a_stream_made_with_other_settings_is_brought_to_the_contract() {
    // A server of its own: the stream is made here before the app starts.
    let nats = test_support::Nats::start().unwrap();
    let database = test_support::test_database().await.unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.create_stream(async_nats::jetstream::stream::Config {
        max_age: std::time::Duration::from_secs(3600),
        ..events::stream_config(events::TodosStream::SINGLE_NODE)
    })
    .await
    .unwrap();
    let app = crate::helpers::spawn_app_on(&database.url, &nats.url(), None).await;
    app.wait_until_ready().await;

    app.post_form("/todos", &[("text", "Publish me")]).await;
    app.wait_for_outbox_drained().await;

    let mut stream = js.get_stream(events::STREAM).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.max_age, events::STREAM_MAX_AGE);
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}
