//! Six replicas share the work and still send each event exactly once.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;

use crate::helpers::{Broadcaster, PrivateNats, created, eventually, sink_messages, spawn_sink};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_replicas_deliver_500_events_exactly_once() {
    // Arrange: the sink as receiver, six replicas on one consumer.
    let nats = PrivateNats::start().await;
    let (_sink, port) = spawn_sink().await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let nats_url = nats.url();
    let replicas = join_all((0..6).map(|_| Broadcaster::forwarding(&nats_url, &url, &[]))).await;

    // Act
    let events: Vec<_> = (0..500).map(|i| created(&format!("todo {i}"))).collect();
    for event in &events {
        nats.publish(event).await;
    }

    // Assert: every event arrived, each exactly once, all signed correctly.
    nats.wait_until_drained(Duration::from_secs(120)).await;
    let messages: Vec<serde_json::Value> =
        eventually(Duration::from_secs(10), "the sink's list", || {
            sink_messages(port)
        })
        .await
        .unwrap();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for message in &messages {
        assert_eq!(message["signature_verified"], true, "{message}");
        *per_id
            .entry(message["webhook_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for event in &events {
        assert_eq!(
            per_id.get(&event.id.to_string()),
            Some(&1),
            "event {} not exactly once",
            event.id
        );
    }
    assert_eq!(messages.len(), 500);

    // The work was shared, and the replicas' counters agree with the sink.
    let mut delivered = Vec::new();
    for replica in &replicas {
        delivered.push(replica.processed("delivered").await);
    }
    assert_eq!(delivered.iter().sum::<f64>(), 500.0, "{delivered:?}");
    assert!(
        delivered.iter().filter(|n| **n > 0.0).count() > 1,
        "only one replica worked: {delivered:?}"
    );
}
