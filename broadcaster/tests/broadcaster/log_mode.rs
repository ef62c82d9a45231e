//! `BROADCASTER_MODE=log`: every event is logged, nothing is sent.

use std::time::Duration;

use crate::helpers::{Broadcaster, PrivateNats, Receiver, created, log_lines};

#[tokio::test]
async fn log_mode_sends_nothing_and_logs_every_event() {
    // Arrange: a receiver is configured, to show it is not called.
    let nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    let broadcaster = Broadcaster::spawn(
        &nats.url(),
        &[
            ("BROADCASTER_MODE", "log".to_owned()),
            ("WEBHOOK_URL", receiver.url.clone()),
        ],
    )
    .await
    .expect("starts in log mode");

    // Act
    let events: Vec<_> = (0..5).map(|i| created(&format!("staging {i}"))).collect();
    for event in &events {
        nats.publish(event).await;
    }

    // Assert
    nats.wait_until_drained(Duration::from_secs(20)).await;
    assert!(receiver.seen().is_empty(), "log mode sent something");
    assert_eq!(broadcaster.processed("logged").await, 5.0);
    let output = broadcaster.service.output();
    let lines = log_lines(&output);
    for event in &events {
        let id = event.id.to_string();
        let line = lines
            .iter()
            .find(|line| {
                line["span"]["event.id"] == id.as_str()
                    && line["message"] == "log mode: logged, not sent"
            })
            .unwrap_or_else(|| panic!("no log line for {id} in:\n{output}"));
        let body: serde_json::Value =
            serde_json::from_str(line["webhook.body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body["message"],
            format!("Todo created: {}", event.todo.text)
        );
    }
}
