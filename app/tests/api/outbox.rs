//! The outbox under failure: NATS down, several replicas.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream;

use events::EventType;
use test_support::{Nats, test_database};

use crate::helpers::{API_TOKEN, TestApp, read_stream, spawn_app_on};

#[tokio::test]
async fn todos_created_while_nats_is_down_are_published_in_order_once_it_is_back() {
    let database = test_database().await.unwrap();
    let mut nats = Nats::start().unwrap();
    let app = spawn_app_on(&database.url, &nats.url(), Some(API_TOKEN)).await;
    app.wait_until_ready().await;
    // The stream exists before the outage, as in production.
    app.create_todo("before the outage").await;
    app.wait_for_outbox_drained().await;

    nats.stop().unwrap();
    let mut created = Vec::new();
    for n in 0..20 {
        created.push(
            app.create_todo(&format!("written while NATS is down {n}"))
                .await,
        );
    }
    assert_eq!(
        app.outbox_count().await,
        20,
        "nothing could be published yet"
    );
    nats.start_again().unwrap();
    app.wait_for_outbox_drained().await;

    let events: Vec<_> = read_stream(&nats.url())
        .await
        .into_iter()
        .filter(|e| created.contains(&e.todo.id))
        .collect();
    let published: Vec<_> = events.iter().map(|e| e.todo.id).collect();
    assert_eq!(published, created, "all 20, in order, none twice");
    assert!(events.iter().all(|e| e.event_type == EventType::Created));
}

#[tokio::test]
async fn the_app_starts_and_accepts_writes_when_nats_is_unreachable() {
    let database = test_database().await.unwrap();
    let port = test_support::free_port();
    let nats_url = format!("nats://127.0.0.1:{port}");
    let app = spawn_app_on(&database.url, &nats_url, Some(API_TOKEN)).await;
    app.wait_until_ready().await;

    let id = app.create_todo("NATS is not even started").await;
    assert_eq!(app.outbox_count().await, 1);

    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_in(dir.path(), port).unwrap();
    app.wait_for_outbox_drained().await;
    let events = read_stream(&nats.url()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].todo.id, id);
}

/// JetStream's shortest duplicate window (it refuses less, and reads zero as
/// its two-minute default): a relay publishing a row again later than this
/// stores it twice instead of being hidden.
const SHORTEST_DUPLICATE_WINDOW: Duration = Duration::from_millis(100);

/// Creates the `TODOS` stream before any relay does, with the shortest
/// duplicate window.
async fn stream_with_shortest_duplicate_window(nats_url: &str) {
    let js = jetstream::new(async_nats::connect(nats_url).await.unwrap());
    js.create_stream(jetstream::stream::Config {
        duplicate_window: SHORTEST_DUPLICATE_WINDOW,
        ..events::stream_config(events::TodosStream::SINGLE_NODE)
    })
    .await
    .unwrap();
}

/// Events a relay published and JetStream acknowledged, duplicates included
/// (JetStream acknowledges a publish it drops as a duplicate).
async fn events_published(app: &TestApp) -> u64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("events_published_total "))
        .expect("the counter is exported")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn two_app_instances_on_one_database_publish_each_event_once() {
    let database = test_database().await.unwrap();
    let nats = Nats::start().unwrap();
    stream_with_shortest_duplicate_window(&nats.url()).await;
    let first = spawn_app_on(&database.url, &nats.url(), Some(API_TOKEN)).await;
    let second = spawn_app_on(&database.url, &nats.url(), Some(API_TOKEN)).await;
    first.wait_until_ready().await;
    second.wait_until_ready().await;

    let mut created = Vec::new();
    for n in 0..30 {
        let app = if n % 2 == 0 { &first } else { &second };
        created.push(app.create_todo(&format!("replica write {n}")).await);
    }
    first.wait_for_outbox_drained().await;

    let events = read_stream(&nats.url()).await;
    assert_eq!(events.len(), 30, "each event stored exactly once");
    assert_eq!(
        events_published(&first).await + events_published(&second).await,
        30,
        "each event published by one relay only, not hidden by the duplicate window"
    );
    let ids: HashSet<_> = events.iter().map(|e| e.todo.id).collect();
    assert_eq!(ids, created.iter().copied().collect());
}

#[tokio::test]
async fn another_replica_takes_over_publishing_when_the_active_one_stops() {
    let database = test_database().await.unwrap();
    let nats = Nats::start().unwrap();
    let mut first = spawn_app_on(&database.url, &nats.url(), Some(API_TOKEN)).await;
    first.wait_until_ready().await;
    first.create_todo("published by the first").await;
    first.wait_for_outbox_drained().await;
    let second = spawn_app_on(&database.url, &nats.url(), Some(API_TOKEN)).await;
    second.wait_until_ready().await;

    first.stop().await;
    second.create_todo("published by the second").await;
    second.wait_for_outbox_drained().await;

    assert_eq!(read_stream(&nats.url()).await.len(), 2);
}
