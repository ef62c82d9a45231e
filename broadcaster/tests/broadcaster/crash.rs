//! A replica dying mid-delivery loses nothing and duplicates nothing.

use std::time::Duration;

use crate::helpers::{Broadcaster, PrivateNats, Receiver, Reply, created, eventually};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_event_in_flight_on_a_killed_replica_is_delivered_by_another() {
    // Arrange: the receiver holds the first request and accepts the rest.
    let nats = PrivateNats::start().await;
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let timeout = [("WEBHOOK_TIMEOUT", "3s")];
    let mut first = Broadcaster::forwarding(&nats.url(), &receiver.url, &timeout).await;
    let event = created("Survive a crash");
    nats.publish(&event).await;
    receiver.wait_for(1, WAIT).await.unwrap();
    let second = Broadcaster::forwarding(&nats.url(), &receiver.url, &timeout).await;

    // Act: SIGKILL while the request is in flight.
    first.service.kill();
    first
        .service
        .wait(Duration::from_secs(5))
        .await
        .expect("the replica dies");

    // Assert: after AckWait the survivor delivers it, once.
    let id = event.id.to_string();
    eventually(WAIT, "the survivor to deliver", || async {
        receiver
            .seen_for(&id)
            .iter()
            .any(|s| s.reply == Reply::Status(200))
            .then_some(())
    })
    .await
    .unwrap();
    nats.wait_until_drained(WAIT).await;
    let replies: Vec<Reply> = receiver.seen_for(&id).iter().map(|s| s.reply).collect();
    assert_eq!(replies, [Reply::Hang, Reply::Status(200)]);
    assert_eq!(second.processed("delivered").await, 1.0);
}

/// What a replica that delivered but died before its ack leaves behind is
/// the event id in the delivered-events bucket and the event still in the
/// stream. Storing the same event a second time (under another
/// `Nats-Msg-Id`) makes JetStream hand it out again in exactly that state.
#[tokio::test]
async fn an_event_already_delivered_is_acked_without_sending_it_again() {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    let broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;
    let event = created("Only once");
    nats.publish(&event).await;
    nats.wait_until_drained(WAIT).await;

    nats.publish_with_msg_id(&event, "same-event-again").await;

    nats.wait_until_drained(WAIT).await;
    assert_eq!(receiver.seen_for(&event.id.to_string()).len(), 1);
    assert_eq!(broadcaster.processed("duplicate").await, 1.0);
    let bucket = nats
        .js
        .get_key_value(broadcaster::dedupe::BUCKET)
        .await
        .unwrap();
    assert!(bucket.get(event.id.to_string()).await.unwrap().is_some());
}

/// Deleting the durable consumer (an operator's mistake) replays the whole
/// stream to the recreated one; the delivered-events bucket keeps that from
/// reaching the receiver.
#[tokio::test]
async fn a_deleted_consumer_is_recreated_without_resending_old_events() {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    let broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;
    let before: Vec<_> = (0..3).map(|i| created(&format!("before {i}"))).collect();
    for event in &before {
        nats.publish(event).await;
    }
    nats.wait_until_drained(WAIT).await;

    // nats-server 2.9 sometimes answers "directory not empty" although it
    // deletes; so delete until the consumer is gone or was recreated, and no more.
    let stream = nats.js.get_stream(events::STREAM).await.unwrap();
    let original = nats.consumer().await.unwrap().created;
    eventually(WAIT, "the consumer to be deleted", || async {
        let _ = stream.delete_consumer(broadcaster::consumer::DURABLE).await;
        match nats.consumer().await {
            None => Some(()),
            Some(info) if info.created != original => Some(()),
            Some(_) => None,
        }
    })
    .await
    .unwrap();
    let after = created("after");
    nats.publish(&after).await;

    eventually(WAIT, "the new event at the receiver", || async {
        (!receiver.seen_for(&after.id.to_string()).is_empty()).then_some(())
    })
    .await
    .unwrap();
    nats.wait_until_drained(WAIT).await;
    assert_eq!(receiver.seen().len(), 4, "old events were sent again");
    assert_eq!(broadcaster.processed("duplicate").await, 3.0);
}
