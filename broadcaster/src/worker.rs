//! Handling one event, from "pulled" to "acked".
//!
//! The order of steps is what makes delivery exactly-once in practice:
//!
//! 1. wait for earlier events of the same todo ([`crate::ordering`]);
//! 2. look the event id up in the delivered-events bucket; if present, ack
//!    without sending ([`crate::dedupe`]);
//! 3. wait for the circuit breaker, then send one attempt;
//! 4. on a 2xx: record the id, then ack. On a failure: hand the event back
//!    with `Nak(backoff)`, or dead-letter it and then ack ([`crate::retry`],
//!    [`crate::dlq`]).
//!
//! While it waits in steps 1 and 3 the worker sends in-progress acks so
//! JetStream does not give the event to another replica, and on shutdown a
//! waiting event is handed back at once (an attempt already under way is
//! finished). Every log line about an event carries `event.id` through the
//! span it runs in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Message};
use events::{DecodeError, TodoEvent};
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::circuit::Breaker;
use crate::dedupe::Dedupe;
use crate::delivery::{Sender, generic_body};
use crate::dlq::{self, DeadLetter};
use crate::error::Error;
use crate::metrics::{Metrics, Outcome};
use crate::ordering::Turn;
use crate::retry::{Decision, RetrySchedule, is_retryable};

/// How soon an event comes back after a failure of our own (NATS, the bucket).
const INTERNAL_RETRY: Duration = Duration::from_secs(5);
/// `AckWait` is one attempt's timeout plus 5 s; an event that waited less
/// than this before its attempt still has most of that margin left, so it
/// needs no in-progress ack (one message fewer per event for NATS).
const RENEW_AFTER: Duration = Duration::from_secs(1);

/// What one attempt came to, before anything is said to JetStream.
#[derive(Debug)]
pub enum Step {
    /// The webhook took it: record it, then ack.
    Delivered,
    /// It failed; `decision` says whether it comes back or is dead-lettered.
    Failed { error: Error, decision: Decision },
}

/// Makes attempt number `attempt` (1-based) of `event` through `sender` and
/// decides what follows: the part of handling an event that needs no
/// JetStream, so a test can step it with an in-memory sender.
pub async fn step(
    sender: &dyn Sender,
    retry: &RetrySchedule,
    event: &TodoEvent,
    attempt: u32,
) -> Step {
    match sender.send(event).await {
        Ok(()) => Step::Delivered,
        Err(error) => {
            let decision = retry.decide(attempt, &error);
            Step::Failed { error, decision }
        }
    }
}

/// What every event task shares.
pub struct Worker {
    pub js: jetstream::Context,
    /// `None` in log mode.
    pub sender: Option<Arc<dyn Sender>>,
    pub dedupe: Dedupe,
    pub breaker: Arc<Breaker>,
    pub retry: RetrySchedule,
    pub metrics: Metrics,
    pub ack_wait: Duration,
    /// The delivery on which an event is dead-lettered whatever happened
    /// ([`crate::consumer::last_delivery`]).
    pub last_delivery: i64,
}

/// Where a message sits in JetStream, for logs and dead letters.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    sequence: u64,
    /// JetStream's delivery count: the attempt number.
    count: i64,
}

impl Worker {
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// Takes one pulled message to its end: acked, handed back, or dead-lettered.
    pub async fn handle(
        self: Arc<Self>,
        message: Message,
        event: Result<TodoEvent, DecodeError>,
        turn: Option<Turn>,
        _slot: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) {
        let pulled = Instant::now();
        let delivery = match message.info() {
            Ok(info) => Delivery {
                sequence: info.stream_sequence,
                count: info.delivered,
            },
            Err(_) => Delivery {
                sequence: 0,
                count: 1,
            },
        };
        match event {
            Ok(event) => {
                let span = tracing::info_span!(
                    "event",
                    event.id = %event.id,
                    event.type = event.event_type.as_str(),
                    todo.id = %event.todo.id,
                    stream.sequence = delivery.sequence,
                    delivery.attempt = delivery.count,
                );
                self.process(&message, &event, delivery, pulled, turn, &shutdown)
                    .instrument(span)
                    .await;
            }
            Err(error) => {
                let error = Error::from(error);
                tracing::error!(
                    stream.sequence = delivery.sequence,
                    error = %error.chain(),
                    "cannot read the event: dead-lettering it"
                );
                self.dead_letter(&message, delivery, &error).await;
            }
        }
    }

    async fn process(
        &self,
        message: &Message,
        event: &TodoEvent,
        delivery: Delivery,
        pulled: Instant,
        mut turn: Option<Turn>,
        shutdown: &CancellationToken,
    ) {
        if let Some(turn) = turn.as_mut()
            && self.hold(message, shutdown, turn.wait()).await.is_none()
        {
            return self
                .hand_back(message, delivery, None, "shutting down")
                .await;
        }

        let Some(sender) = &self.sender else {
            let body = serde_json::to_string(&generic_body(event)).unwrap_or_default();
            tracing::info!(webhook.body = %body, "log mode: logged, not sent");
            return self.ack(message, Outcome::Logged).await;
        };

        match self.dedupe.already_delivered(event.id).await {
            Ok(true) => {
                tracing::info!("already delivered: acking without sending again");
                return self.ack(message, Outcome::Duplicate).await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %error.chain(), "cannot check whether the event was delivered");
                return self
                    .hand_back(message, delivery, Some(INTERNAL_RETRY), &error.chain())
                    .await;
            }
        }

        let Some(permit) = self.hold(message, shutdown, self.breaker.acquire()).await else {
            return self
                .hand_back(message, delivery, None, "shutting down")
                .await;
        };
        // A full AckWait for the attempt itself, however long we waited before.
        if pulled.elapsed() > RENEW_AFTER {
            let _ = message.ack_with(AckKind::Progress).await;
        }

        let started = Instant::now();
        let attempt = u32::try_from(delivery.count).unwrap_or(u32::MAX);
        let step = step(sender.as_ref(), &self.retry, event, attempt).await;
        self.metrics
            .webhook_duration
            .observe(started.elapsed().as_secs_f64());

        match step {
            Step::Delivered => {
                permit.record(true);
                if let Err(error) = self.dedupe.record(event.id).await {
                    // Still ack: the webhook has it. Only a redelivery could now send it twice.
                    tracing::warn!(error = %error.chain(), "delivered, but could not record it");
                }
                let lag = (OffsetDateTime::now_utc() - event.occurred_at).as_seconds_f64();
                self.metrics.delivery_lag.observe(lag.max(0.0));
                // Debug, not info: a JSON line per event was about 7 % of
                // the broadcaster's CPU delivering a backlog (perf), and
                // `broadcaster_messages_processed_total` counts them. What
                // goes wrong is still logged at warn and error.
                tracing::debug!(webhook.format = sender.format_name(), "delivered");
                self.ack(message, Outcome::Delivered).await;
            }
            Step::Failed { error, decision } => {
                // Only transient failures say the target is unwell; a 400 means it is up.
                permit.record(!is_retryable(&error));
                self.metrics.webhook_error(&error.reason());
                match decision {
                    Decision::RetryAfter(delay) => {
                        tracing::warn!(error = %error.chain(), retry_in = ?delay, "delivery failed: will retry");
                        self.hand_back(message, delivery, Some(delay), &error.chain())
                            .await;
                    }
                    Decision::DeadLetter => {
                        tracing::error!(error = %error.chain(), "delivery failed: dead-lettering");
                        self.dead_letter(message, delivery, &error).await;
                    }
                }
            }
        }
    }

    /// Runs `wait` while keeping the message ours; `None` if we are shutting down first.
    async fn hold<F: Future>(
        &self,
        message: &Message,
        shutdown: &CancellationToken,
        wait: F,
    ) -> Option<F::Output> {
        let every = self.ack_wait / 3;
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return None,
                output = &mut wait => return Some(output),
                _ = ticks.tick() => {
                    let _ = message.ack_with(AckKind::Progress).await;
                }
            }
        }
    }

    /// Gives the message back to JetStream for a later attempt; from the
    /// last delivery on, dead-letters it instead.
    async fn hand_back(
        &self,
        message: &Message,
        delivery: Delivery,
        delay: Option<Duration>,
        reason: &str,
    ) {
        if delivery.count >= self.last_delivery {
            tracing::error!(reason, "out of redeliveries: dead-lettering");
            let error = format!("out of redeliveries after: {reason}");
            return self.publish_dead_letter(message, delivery, error).await;
        }
        if let Err(error) = message.ack_with(AckKind::Nak(delay)).await {
            tracing::warn!(error = %error, "could not hand the event back; JetStream redelivers it after AckWait");
        }
    }

    async fn dead_letter(&self, message: &Message, delivery: Delivery, error: &Error) {
        self.publish_dead_letter(message, delivery, error.chain())
            .await;
    }

    async fn publish_dead_letter(&self, message: &Message, delivery: Delivery, last_error: String) {
        let letter = DeadLetter {
            payload: message.payload.clone(),
            original_subject: message.subject.as_str(),
            original_sequence: delivery.sequence,
            attempts: delivery.count,
            last_error,
        };
        match dlq::publish(&self.js, letter).await {
            Ok(()) => self.ack(message, Outcome::DeadLettered).await,
            Err(error) => {
                tracing::error!(error = %error.chain(), "could not dead-letter the event; it will come back");
                let _ = message.ack_with(AckKind::Nak(Some(INTERNAL_RETRY))).await;
            }
        }
    }

    /// Acks, then counts the outcome.
    ///
    /// A plain ack, not one JetStream confirms: the confirmation cost a
    /// round trip per event (a reply from the server, and the task held its
    /// slot and its todo's turn until it came), and all it changed was
    /// whether a warning was written: an ack lost either way brings the
    /// event back. A delivered event then finds its id in the bucket and is
    /// acked without sending; a dead-lettered one is handled again, as it
    /// was when its confirmation never came. Acks still in the client's
    /// buffer at shutdown are flushed before the process ends (`startup`).
    async fn ack(&self, message: &Message, outcome: Outcome) {
        match message.ack().await {
            Ok(()) => self.metrics.processed(outcome),
            Err(error) => tracing::warn!(
                error = %error,
                outcome = outcome.as_str(),
                "could not send the ack; a redelivery will be recognised as a duplicate"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use events::EventType;

    use super::*;
    use crate::delivery::memory::{Answer, InMemory};
    use crate::delivery::tests::event;

    fn schedule() -> RetrySchedule {
        RetrySchedule::parse("5s,30s").unwrap()
    }

    #[tokio::test]
    async fn a_success_is_delivered_once() {
        let webhook = InMemory::answering([Answer::Accept]);
        let created = event(EventType::Created, "Buy milk", false);

        let step = step(&webhook, &schedule(), &created, 1).await;

        assert!(matches!(step, Step::Delivered), "{step:?}");
        assert_eq!(webhook.sent(), vec![created]);
    }

    #[tokio::test]
    async fn a_retryable_failure_schedules_a_retry_from_the_schedule() {
        let webhook = InMemory::answering([Answer::Status(503, None)]);
        let created = event(EventType::Created, "Buy milk", false);

        let step = step(&webhook, &schedule(), &created, 1).await;

        let Step::Failed {
            decision: Decision::RetryAfter(delay),
            error,
        } = step
        else {
            panic!("expected a retry, got {step:?}");
        };
        assert!(
            (Duration::from_secs(4)..=Duration::from_secs(6)).contains(&delay),
            "{delay:?}"
        );
        assert_eq!(error.reason(), "http_503");
    }

    #[tokio::test]
    async fn a_permanent_failure_dead_letters_at_once() {
        let webhook = InMemory::answering([Answer::Status(400, None)]);
        let created = event(EventType::Created, "Buy milk", false);

        let step = step(&webhook, &schedule(), &created, 1).await;

        assert!(
            matches!(
                step,
                Step::Failed {
                    decision: Decision::DeadLetter,
                    ..
                }
            ),
            "{step:?}"
        );
    }

    #[tokio::test]
    async fn a_timeout_on_the_last_attempt_dead_letters() {
        let webhook = InMemory::answering([Answer::Timeout(Duration::from_secs(5))]);
        let created = event(EventType::Created, "Buy milk", false);

        let step = step(&webhook, &schedule(), &created, 3).await;

        assert!(
            matches!(
                step,
                Step::Failed {
                    decision: Decision::DeadLetter,
                    error: Error::Timeout(_),
                }
            ),
            "{step:?}"
        );
    }
}
