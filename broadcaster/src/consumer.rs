//! The JetStream side: the `TODOS` stream, the shared durable consumer, and
//! the pull loop.
//!
//! All replicas share one durable pull consumer, `broadcaster`: JetStream
//! hands each message to one replica at a time, and only an explicit ack
//! ends its life. Settings, and why:
//!
//! - `AckWait` = `WEBHOOK_TIMEOUT` + 5 s. The worker sends an in-progress
//!   ack every `AckWait / 3` while an event waits (for an earlier event of
//!   its todo, or for the circuit breaker) and right before an attempt that
//!   waited over a second, so `AckWait` only has to outlast one attempt. A replica that dies is
//!   noticed that quickly: its events go to another replica.
//! - Retries do not hold the event: a failed attempt is handed back with
//!   `Nak(delay)` and JetStream redelivers it after the backoff, possibly to
//!   another replica. Waiting out a 30-minute backoff therefore costs no
//!   slot, no ack-wait extension and no memory here, survives restarts, and
//!   never blocks other events. The delivery count JetStream keeps is the
//!   attempt number.
//! - `MaxDeliver` unlimited. The worker dead-letters on the last scheduled
//!   attempt, and on delivery attempts + 3 ([`last_delivery`]) whatever
//!   happened before (the slack covers redeliveries caused by crashes and
//!   shutdowns, which also count). The limit is the worker's, not
//!   JetStream's, because JetStream never redelivers past its own: a
//!   dead-letter publish that failed on that delivery would strand the
//!   event, neither delivered nor dead-lettered. Handed back instead, it
//!   comes again and the dead letter is tried again.
//! - `DeliverPolicy::All`: a broadcaster deployed after the app has
//!   published still sends everything the stream holds.
//!
//! The loop pulls only as many messages as it has free slots
//! (`BROADCASTER_MAX_IN_FLIGHT`), so nothing sits in a client buffer while
//! its `AckWait` runs out, and pulls nothing while the circuit is open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, stream};
use events::TodoEvent;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use events::TodosStream;

use crate::error::{Error, Result};
use crate::ordering::Turns;
use crate::worker::Worker;

/// The durable consumer's name, shared by every replica.
pub const DURABLE: &str = "broadcaster";

/// Redeliveries allowed beyond the schedule's attempts (see the module header).
const MAX_DELIVER_SLACK: i64 = 3;

/// How long one pull request waits on the server for messages.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// Gets the `TODOS` stream, creating it exactly as the app does if the
/// broadcaster happens to start first, or bringing it to the contract's
/// settings (see `service_kit::jetstream`).
pub async fn ensure_todos_stream(
    js: &jetstream::Context,
    settings: TodosStream,
) -> Result<stream::Stream> {
    Ok(
        service_kit::jetstream::ensure_stream(js, events::stream_config(settings))
            .await?
            .stream,
    )
}

/// The delivery on which the worker dead-letters an event whatever else
/// happened: the schedule's attempts plus slack for redeliveries after
/// crashes and shutdowns.
pub fn last_delivery(attempts: u32) -> i64 {
    i64::from(attempts) + MAX_DELIVER_SLACK
}

/// The consumer settings every replica applies.
pub fn consumer_config(ack_wait: Duration) -> pull::Config {
    pull::Config {
        durable_name: Some(DURABLE.to_owned()),
        description: Some("Docket broadcaster: every todo event to the webhook".to_owned()),
        ack_policy: AckPolicy::Explicit,
        ack_wait,
        // Unlimited: see the module header.
        max_deliver: -1,
        deliver_policy: DeliverPolicy::All,
        ..Default::default()
    }
}

/// Creates the durable consumer, or updates it to this build's settings.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    config: pull::Config,
) -> Result<PullConsumer> {
    stream
        .create_consumer(config)
        .await
        .map_err(|e| Error::Nats {
            context: format!("creating consumer {DURABLE}"),
            source: e.into(),
        })
}

/// Where the pull loop gets its consumer from, so it can make it again.
pub struct Source {
    pub stream: stream::Stream,
    pub config: pull::Config,
    /// What `/readyz` reports: whether the consumer is known to exist.
    pub ready: Arc<AtomicBool>,
}

/// Pulls and dispatches until `shutdown`, then waits for in-flight events.
///
/// A failed pull marks the broadcaster not ready and re-applies the
/// consumer before the next pull: that recreates it if someone deleted it
/// (the delivered-events bucket then turns the replay of old events into
/// acks without sending), and is a no-op if the failure was only a
/// reconnect.
pub async fn run(
    source: Source,
    mut consumer: PullConsumer,
    worker: Arc<Worker>,
    max_in_flight: usize,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let turns = Turns::default();
    let mut tasks = JoinSet::new();
    let mut check_consumer = false;
    source.ready.store(true, Ordering::Release);
    loop {
        while tasks.try_join_next().is_some() {}
        if check_consumer {
            match ensure_consumer(&source.stream, source.config.clone()).await {
                Ok(again) => {
                    consumer = again;
                    check_consumer = false;
                    source.ready.store(true, Ordering::Release);
                }
                Err(error) => {
                    tracing::warn!(error = %error.chain(), "the consumer is unavailable; trying again in a second");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            }
        }
        let first = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            slot = async {
                let slot = Arc::clone(&slots).acquire_owned().await;
                // Checked after a slot frees up: the event that just finished may have opened it.
                worker.breaker().wait_until_not_open().await;
                slot
            } => slot.expect("the semaphore is never closed"),
        };
        // Only this loop takes slots, so the count can only grow until we take them.
        let wanted = 1 + slots.available_permits();
        let mut batch = match consumer
            .batch()
            .max_messages(wanted)
            .expires(PULL_EXPIRES)
            .messages()
            .await
        {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(error = %error, "pull request failed");
                source.ready.store(false, Ordering::Release);
                check_consumer = true;
                continue;
            }
        };
        let mut first = Some(first);
        // The batch ends by itself within PULL_EXPIRES, so messages the server
        // already sent us are always handed to a worker, even while stopping.
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(error = %error, "pull batch ended with an error");
                    source.ready.store(false, Ordering::Release);
                    check_consumer = true;
                    break;
                }
            };
            let slot = first.take().unwrap_or_else(|| {
                Arc::clone(&slots)
                    .try_acquire_owned()
                    .expect("reserved above")
            });
            let event = TodoEvent::from_json(&message.payload);
            let turn = event.as_ref().ok().map(|event| turns.take(event.todo.id));
            tasks.spawn(Arc::clone(&worker).handle(message, event, turn, slot, shutdown.clone()));
        }
    }
    tracing::info!(
        in_flight = tasks.len(),
        "stopped pulling; finishing in-flight events"
    );
    while tasks.join_next().await.is_some() {}
}
