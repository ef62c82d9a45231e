//! Start-up, readiness, metrics and shutdown.

use std::time::Duration;

use crate::helpers::{
    Broadcaster, PrivateNats, Receiver, Reply, SECRET, created, get, readyz_becomes,
};

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_variable() {
    let nats = PrivateNats::start().await;
    let error = start_up_error(
        &nats,
        &[
            ("WEBHOOK_URL", "http://127.0.0.1:9/".to_owned()),
            ("WEBHOOK_SECRET", String::new()),
        ],
    )
    .await;
    assert!(error.contains("WEBHOOK_SECRET is not set"), "{error}");

    let error = start_up_error(
        &nats,
        &[
            ("WEBHOOK_URL", "http://127.0.0.1:9/".to_owned()),
            ("WEBHOOK_SECRET", SECRET.to_owned()),
            ("WEBHOOK_RETRY_SCHEDULE", "soon".to_owned()),
        ],
    )
    .await;
    assert!(
        error.contains("WEBHOOK_RETRY_SCHEDULE is not valid: `soon`"),
        "{error}"
    );
    assert!(
        !error.contains("C2FVsBQIhrsc"),
        "the secret leaked: {error}"
    );
}

/// Starts the broadcaster with `envs`, which must fail; the error with its
/// causes, as the process reported it.
async fn start_up_error(nats: &PrivateNats, envs: &[(&str, String)]) -> String {
    let error = Broadcaster::spawn(&nats.url(), envs)
        .await
        .err()
        .expect("start-up fails");
    format!("{error:#}")
}

#[tokio::test]
async fn health_readiness_and_metrics_follow_the_nats_connection() {
    let mut nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    let broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;
    let base = format!("http://127.0.0.1:{}", broadcaster.port);

    assert_eq!(get(&format!("{base}/healthz")).await.status(), 200);
    assert_eq!(get(&format!("{base}/readyz")).await.status(), 200);
    let metrics = get(&format!("{base}/metrics")).await.text().await.unwrap();
    for name in [
        "broadcaster_messages_processed_total",
        "broadcaster_webhook_errors_total",
        "broadcaster_webhook_duration_seconds",
        "broadcaster_delivery_lag_seconds",
        "broadcaster_nats_connected 1",
    ] {
        assert!(metrics.contains(name), "no {name} in:\n{metrics}");
    }

    // NATS goes away: not ready, gauge 0; it comes back: ready, and events flow.
    nats.server.stop().unwrap();
    readyz_becomes(&base, 503, Duration::from_secs(20)).await;
    assert_eq!(broadcaster.metric("broadcaster_nats_connected").await, 0.0);
    nats.server.start_again().unwrap();
    readyz_becomes(&base, 200, Duration::from_secs(30)).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    nats.js = async_nats::jetstream::new(client);
    let event = created("After the outage");
    nats.publish(&event).await;
    receiver.wait_for(1, Duration::from_secs(30)).await.unwrap();
}

#[tokio::test]
async fn sigterm_finishes_the_delivery_in_flight_and_exits_zero() {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::start(|_| Reply::Slow(Duration::from_millis(1500))).await;
    let mut broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;
    let event = created("Finish me");
    nats.publish(&event).await;
    receiver.wait_for(1, Duration::from_secs(20)).await.unwrap();

    broadcaster.service.terminate();

    let status = broadcaster
        .service
        .wait(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        status.success(),
        "{status}:\n{}",
        broadcaster.service.output()
    );
    // Acked before exiting: nothing left for another replica to redo.
    nats.wait_until_drained(Duration::from_secs(2)).await;
    assert_eq!(receiver.seen_for(&event.id.to_string()).len(), 1);
}

#[tokio::test]
async fn starts_while_nats_is_down_and_becomes_ready_when_it_is_up() {
    // Arrange: a NATS that is not running yet.
    let mut nats = PrivateNats::start().await;
    nats.server.stop().unwrap();
    let receiver = Receiver::accepting().await;
    let port = test_support::free_port();
    let _broadcaster = test_support::ServiceCommand::new(
        env!("CARGO_BIN_EXE_broadcaster"),
        format!("http://127.0.0.1:{port}/healthz"),
    )
    .env("NATS_URL", nats.url())
    .env("PORT", port.to_string())
    .env("WEBHOOK_URL", receiver.url.clone())
    .env("WEBHOOK_SECRET", SECRET)
    .spawn()
    .await
    .expect("starts without NATS");
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let not_ready = get(&readyz).await;
    assert_eq!(not_ready.status(), 503);
    assert_eq!(
        not_ready.text().await.unwrap(),
        "not ready: not connected to NATS\n"
    );

    // Act
    nats.server.start_again().unwrap();

    // Assert
    readyz_becomes(
        &format!("http://127.0.0.1:{port}"),
        200,
        Duration::from_secs(30),
    )
    .await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    nats.js = async_nats::jetstream::new(client);
    let event = created("NATS came up late");
    nats.publish(&event).await;
    receiver.wait_for(1, Duration::from_secs(20)).await.unwrap();
}

/// `TODOS` as an older build or an operator made it: `max_age` of an hour.
fn drifted_todos() -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        max_age: Duration::from_secs(3600),
        ..events::stream_config(events::TodosStream::SINGLE_NODE)
    }
}

#[tokio::test]
async fn a_stream_that_drifted_is_brought_back_to_the_contract_and_the_change_logged() {
    let nats = PrivateNats::start().await;
    nats.js.create_stream(drifted_todos()).await.unwrap();
    let receiver = Receiver::accepting().await;

    let broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;

    let mut stream = nats.js.get_stream(events::STREAM).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.max_age, events::STREAM_MAX_AGE);
    let output = broadcaster.service.output();
    assert!(
        output.contains("updated the stream") && output.contains("max_age: 3600s → 604800s"),
        "{output}"
    );
}

#[tokio::test]
async fn a_stream_whose_storage_cannot_change_stops_start_up_naming_the_difference() {
    let nats = PrivateNats::start().await;
    nats.js
        .create_stream(async_nats::jetstream::stream::Config {
            storage: async_nats::jetstream::stream::StorageType::Memory,
            ..events::stream_config(events::TodosStream::SINGLE_NODE)
        })
        .await
        .unwrap();

    let error = start_up_error(
        &nats,
        &[
            ("WEBHOOK_URL", "http://127.0.0.1:9/".to_owned()),
            ("WEBHOOK_SECRET", SECRET.to_owned()),
        ],
    )
    .await;

    assert!(
        error.contains("stream TODOS exists with settings JetStream cannot change")
            && error.contains("storage: Memory → File"),
        "{error}"
    );
}

#[tokio::test]
async fn metrics_show_the_backlog_and_the_age_of_the_oldest_event_waiting() {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::start(|_| Reply::Status(503)).await;
    // Retries seconds apart, so the events stay unacknowledged while measured.
    let broadcaster = Broadcaster::forwarding(
        &nats.url(),
        &receiver.url,
        &[("WEBHOOK_RETRY_SCHEDULE", "3s,3s,3s,3s")],
    )
    .await;
    assert_eq!(
        broadcaster
            .metric("broadcaster_oldest_unacked_age_seconds")
            .await,
        0.0
    );
    for text in ["one", "two", "three"] {
        nats.publish(&created(text)).await;
    }

    let waiting = test_support::eventually(
        Duration::from_secs(20),
        "three events waiting for over a second",
        || async {
            let pending = broadcaster.metric("broadcaster_consumer_pending").await
                + broadcaster.metric("broadcaster_consumer_ack_pending").await;
            let age = broadcaster
                .metric("broadcaster_oldest_unacked_age_seconds")
                .await;
            (pending == 3.0 && age >= 1.0).then_some(age)
        },
    )
    .await
    .unwrap();
    assert!(waiting < 30.0, "{waiting}");

    receiver.set(Reply::Status(200));
    test_support::eventually(Duration::from_secs(30), "the backlog to clear", || async {
        let pending = broadcaster.metric("broadcaster_consumer_pending").await
            + broadcaster.metric("broadcaster_consumer_ack_pending").await;
        let age = broadcaster
            .metric("broadcaster_oldest_unacked_age_seconds")
            .await;
        (pending == 0.0 && age == 0.0).then_some(())
    })
    .await
    .unwrap();
}
