//! Failures: retried with backoff, dead-lettered when hopeless or out of
//! attempts, and the circuit breaker stops hammering a failing target.

use std::time::Duration;

use crate::helpers::{Broadcaster, PrivateNats, Receiver, Reply, created, eventually, nats_header};

const WAIT: Duration = Duration::from_secs(30);

/// Answers `first` to an event's first `times` attempts, then accepts it.
fn failing(times: usize, first: Reply) -> impl Fn(usize) -> Reply + Send + Sync + 'static {
    move |attempt| {
        if attempt < times {
            first
        } else {
            Reply::Status(200)
        }
    }
}

/// A private NATS, a receiver answering `plan`, and a broadcaster forwarding
/// to it with `env` on top of the helpers' defaults.
async fn stack(
    plan: impl Fn(usize) -> Reply + Send + Sync + 'static,
    env: &[(&str, &str)],
) -> (PrivateNats, Receiver, Broadcaster) {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::start(plan).await;
    let broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, env).await;
    (nats, receiver, broadcaster)
}

#[tokio::test]
async fn a_receiver_failing_with_500_then_accepting_gets_the_event_once() {
    // Arrange: 500 twice, then 200.
    let (nats, receiver, broadcaster) = stack(
        failing(2, Reply::Status(500)),
        &[("WEBHOOK_RETRY_SCHEDULE", "300ms,300ms,300ms")],
    )
    .await;

    // Act
    let event = created("Retry me");
    nats.publish(&event).await;

    // Assert: three attempts, the last accepted, nothing after it.
    nats.wait_until_drained(WAIT).await;
    let seen = receiver.seen_for(&event.id.to_string());
    let replies: Vec<Reply> = seen.iter().map(|s| s.reply).collect();
    assert_eq!(
        replies,
        [Reply::Status(500), Reply::Status(500), Reply::Status(200)]
    );
    assert!(seen.iter().all(|s| s.verified), "every attempt is signed");
    // Backoff: each retry came after (jittered) 300 ms, not at once.
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(240),
            "retried after only {gap:?}"
        );
    }
    assert_eq!(
        broadcaster
            .metric(r#"broadcaster_webhook_errors_total{reason="http_500"}"#)
            .await,
        2.0
    );
    assert_eq!(broadcaster.processed("delivered").await, 1.0);
    assert!(nats.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_400_is_dead_lettered_at_once_with_the_error() {
    let (nats, receiver, broadcaster) = stack(|_| Reply::Status(400), &[]).await;

    let event = created("Rejected");
    nats.publish(&event).await;

    nats.wait_until_drained(WAIT).await;
    assert_eq!(
        receiver.seen_for(&event.id.to_string()).len(),
        1,
        "a 400 is not retried"
    );
    let letters = nats.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.subject.as_str(), "todos_dlq.created");
    assert_eq!(
        letter.payload.as_ref(),
        event.to_json().as_slice(),
        "the original event, untouched"
    );
    assert_eq!(
        nats_header(letter, "Docket-Last-Error").unwrap(),
        "the webhook answered 400"
    );
    assert_eq!(nats_header(letter, "Docket-Attempts").unwrap(), "1");
    assert_eq!(
        nats_header(letter, "Docket-Original-Subject").unwrap(),
        "todos.created"
    );
    assert_eq!(broadcaster.processed("dead_lettered").await, 1.0);
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_dead_lettered_after_the_schedule() {
    let (nats, receiver, broadcaster) = stack(
        |_| Reply::Hang,
        &[
            ("WEBHOOK_TIMEOUT", "500ms"),
            ("WEBHOOK_RETRY_SCHEDULE", "200ms,200ms"),
        ],
    )
    .await;

    let event = created("Nobody home");
    nats.publish(&event).await;

    let letters = eventually(WAIT, "a dead letter", || async {
        let letters = nats.dead_letters().await;
        (!letters.is_empty()).then_some(letters)
    })
    .await
    .unwrap();
    nats.wait_until_drained(WAIT).await;
    assert_eq!(
        receiver.seen_for(&event.id.to_string()).len(),
        3,
        "one attempt per schedule entry, plus one"
    );
    assert_eq!(letters.len(), 1);
    assert_eq!(
        nats_header(&letters[0], "Docket-Last-Error").unwrap(),
        "the webhook did not answer within 500ms"
    );
    assert_eq!(nats_header(&letters[0], "Docket-Attempts").unwrap(), "3");
    assert_eq!(
        broadcaster
            .metric(r#"broadcaster_webhook_errors_total{reason="timeout"}"#)
            .await,
        3.0
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (nats, receiver, _broadcaster) = stack(
        failing(1, Reply::RetryAfter(429, 2)),
        &[("WEBHOOK_RETRY_SCHEDULE", "100ms")],
    )
    .await;

    let event = created("Slow down");
    nats.publish(&event).await;

    nats.wait_until_drained(WAIT).await;
    let seen = receiver.seen_for(&event.id.to_string());
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_secs(2),
        "retried after {gap:?}, before Retry-After: 2"
    );
}

#[tokio::test]
async fn the_circuit_opens_on_repeated_failures_and_a_probe_closes_it() {
    // Arrange: the target fails its first three requests, whatever the event.
    let requests = std::sync::atomic::AtomicUsize::new(0);
    let every_request = failing(3, Reply::Status(503));
    let (nats, receiver, _broadcaster) = stack(
        move |_| every_request(requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst)),
        &[
            ("WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,100ms,100ms"),
            ("WEBHOOK_BREAKER_THRESHOLD", "3"),
            ("WEBHOOK_BREAKER_COOLDOWN", "2s"),
            // One at a time, so no request is already on its way when the circuit opens.
            ("BROADCASTER_MAX_IN_FLIGHT", "1"),
        ],
    )
    .await;

    // Act
    let events: Vec<_> = (0..5).map(|i| created(&format!("outage {i}"))).collect();
    for event in &events {
        nats.publish(event).await;
    }

    // Assert: after the third failure nothing went out for the cooldown,
    // then every event arrived exactly once.
    nats.wait_until_drained(WAIT).await;
    let seen = receiver.seen();
    let third_failure = seen[2].at;
    let next = seen[3].at;
    assert!(
        next - third_failure >= Duration::from_millis(1900),
        "the circuit let a request through after {:?}",
        next - third_failure
    );
    for event in &events {
        let accepted = receiver
            .seen_for(&event.id.to_string())
            .iter()
            .filter(|s| s.reply == Reply::Status(200))
            .count();
        assert_eq!(accepted, 1, "event {}", event.id);
    }
    assert!(
        nats.dead_letters().await.is_empty(),
        "no event was lost to the outage"
    );
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_stored_on_a_late_delivery_is_tried_again_not_stranded() {
    use async_nats::jetstream::{AckKind, consumer::PullConsumer, stream};
    use futures::StreamExt;

    let nats = PrivateNats::start().await;
    let todos = nats
        .js
        .create_stream(events::stream_config(events::TodosStream::SINGLE_NODE))
        .await
        .unwrap();
    // The dead-letter stream as the broadcaster makes it, but full: it
    // refuses the next letter.
    let mut dlq = nats
        .js
        .create_stream(stream::Config {
            name: broadcaster::dlq::STREAM.to_owned(),
            subjects: vec![broadcaster::dlq::SUBJECTS.to_owned()],
            max_age: Duration::from_secs(30 * 24 * 3600),
            duplicate_window: events::STREAM_DUPLICATE_WINDOW,
            max_messages: 1,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .unwrap();
    nats.js
        .publish("todos_dlq.filler", "filler".into())
        .await
        .unwrap()
        .await
        .unwrap();
    // An event already delivered ten times (say, to replicas that crashed):
    // past the last delivery the worker allows.
    let consumer: PullConsumer = todos
        .create_consumer(broadcaster::consumer::consumer_config(Duration::from_secs(
            7,
        )))
        .await
        .unwrap();
    let event = created("Late and rejected");
    nats.publish(&event).await;
    for _ in 0..10 {
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .unwrap();
        let message = batch.next().await.unwrap().unwrap();
        message.ack_with(AckKind::Nak(None)).await.unwrap();
    }
    let receiver = Receiver::start(|_| Reply::Status(400)).await;
    let broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;

    // Its dead letter is refused; the event must come back, not vanish.
    eventually(WAIT, "the webhook to refuse the event", || async {
        (!receiver.seen_for(&event.id.to_string()).is_empty()).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        dlq.info().await.unwrap().state.messages,
        1,
        "only the filler"
    );
    dlq.purge().await.unwrap();

    eventually(WAIT, "the event to be dead-lettered", || async {
        nats.dead_letters()
            .await
            .iter()
            .any(|letter| letter.payload.as_ref() == event.to_json().as_slice())
            .then_some(())
    })
    .await
    .unwrap();
    nats.wait_until_drained(WAIT).await;
    assert_eq!(broadcaster.processed("dead_lettered").await, 1.0);
}
