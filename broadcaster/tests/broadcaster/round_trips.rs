//! What one delivery costs in messages with NATS and in log lines: nearly
//! half of the broadcaster's CPU went to the system calls that move the
//! messages, and about 7 % to a JSON line per event.

use std::time::Duration;

use crate::helpers::{Broadcaster, PrivateNats, Receiver, created, log_lines};

/// Events in the backlog: more than one replica's slots, so the pull loop
/// refills them while others are still in flight.
const EVENTS: usize = 400;

#[tokio::test]
async fn a_delivery_costs_three_messages_each_way_with_nats_and_no_log_line() {
    // Arrange: a backlog waiting before the broadcaster starts.
    let nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    nats.js
        .create_stream(events::stream_config(events::TodosStream::SINGLE_NODE))
        .await
        .expect("TODOS is created");
    let events: Vec<_> = (0..EVENTS).map(|i| created(&format!("todo {i}"))).collect();
    for event in &events {
        nats.publish(event).await;
    }

    // Act
    let broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;
    nats.wait_until_drained(Duration::from_secs(60)).await;

    // Assert: per event, the event, the bucket's answer and the bucket
    // write's ack come in; the bucket lookup, the write and the ack go out.
    // Setting up and pull requests are the rest. A confirmed ack would make
    // it four in.
    assert_eq!(broadcaster.processed("delivered").await, EVENTS as f64);
    let per_event = |direction: &str| {
        let sample = format!(r#"broadcaster_nats_messages_total{{direction="{direction}"}}"#);
        let broadcaster = &broadcaster;
        async move { broadcaster.metric(&sample).await / EVENTS as f64 }
    };
    let received = per_event("received").await;
    let sent = per_event("sent").await;
    assert!(
        (3.0..3.2).contains(&received),
        "{received} messages received per event"
    );
    assert!((3.0..3.2).contains(&sent), "{sent} messages sent per event");
    let output = broadcaster.service.output();
    let lines = log_lines(&output);
    assert!(
        lines.len() < 50,
        "{} log lines for {EVENTS} events:\n{output}",
        lines.len()
    );
}
