//! The outbox relay: publishes outbox rows to JetStream, in order, once.
//!
//! Exactly one relay is active across all replicas: it holds a session-level
//! Postgres advisory lock on its own connection. When that replica dies its
//! connection closes, the lock is released, and another replica's relay,
//! polling for the lock, takes over. A leader that is frozen (a stopped
//! process, a paused VM) or cut off keeps its connection open, so the lock
//! connection is leased: the server ends the session once it has been idle
//! for [`LEADER_LEASE`] (`idle_session_timeout`), or once its TCP peer stops
//! answering (keepalives, `tcp_user_timeout`), and a live leader is never
//! idle that long. Another replica leads within [`LEADER_LEASE`] plus one
//! standby poll (14 s). The active relay publishes a batch of
//! rows in `seq` order, each expecting its predecessor to be the stream's
//! last message, so the stream's order is the outbox's order even across
//! NATS failures. A row
//! is deleted only after its ack; if the relay dies between ack and delete
//! the row is published again with the same `Nats-Msg-Id`, and JetStream's
//! duplicate window drops it.
//!
//! NATS being down is not an error for the app: writes keep landing in the
//! outbox and the relay retries with backoff until NATS answers again.

use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, message::PublishMessage};
use events::TodosStream;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::outbox::{self, PendingEvent};
use crate::metrics::Metrics;

/// How often a standby replica asks for the lock.
const STANDBY_POLL: Duration = Duration::from_secs(2);
/// How long the server lets the leader's lock connection sit idle before it
/// ends the session and so frees the lock. A live leader talks to the
/// database at least every `SLOW_POLL`, or after one publish and one
/// backoff (`ACK_TIMEOUT` + `MAX_BACKOFF`): 10 s at most.
pub const LEADER_LEASE: Duration = Duration::from_secs(12);
/// A fallback in case a notification is missed (e.g. while the listener reconnects).
const SLOW_POLL: Duration = Duration::from_secs(5);
/// Rows read per round trip.
const BATCH: i64 = 100;
/// How long one publish may wait for its ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Relay<P = JetStreamPublisher> {
    database: PgConnectOptions,
    /// Woken by the replica's outbox listener (`crate::outbox_listener`).
    /// A wake-up that comes during a pass is kept for the next wait, and
    /// any number of them count as one: each pass reads every committed row.
    wake: Arc<Notify>,
    publisher: P,
    metrics: Metrics,
}

/// Why one pass over the outbox stopped early.
#[derive(Debug)]
pub enum PassError {
    /// NATS did not take a message: retry after a pause, stay active.
    Nats(anyhow::Error),
    /// The database connection failed: give up the lock and start over.
    Database(sqlx::Error),
}

impl From<sqlx::Error> for PassError {
    fn from(e: sqlx::Error) -> Self {
        PassError::Database(e)
    }
}

impl<P: Publisher> Relay<P> {
    pub fn new(
        database: PgConnectOptions,
        wake: Arc<Notify>,
        publisher: P,
        metrics: Metrics,
    ) -> Self {
        Self {
            database,
            wake,
            publisher,
            metrics,
        }
    }

    /// Runs until `shutdown`, finishing the batch in hand first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            match self.serve_while_leader(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay lost its database connection; retrying");
                    if pause(&shutdown, backoff.next()).await.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn serve_while_leader(&self, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
        let mut conn = PgConnection::connect_with(&leased(&self.database)).await?;
        loop {
            if outbox::try_lead(&mut conn).await? {
                break;
            }
            if pause(shutdown, STANDBY_POLL).await.is_err() {
                return Ok(());
            }
        }
        tracing::info!("outbox relay is active on this replica");

        let mut backoff = Backoff::default();

        loop {
            match self.pass(&mut conn).await {
                Ok(more) => {
                    backoff.reset();
                    if more && !shutdown.is_cancelled() {
                        continue;
                    }
                }
                Err(PassError::Database(e)) => return Err(e),
                Err(PassError::Nats(e)) => {
                    let delay = backoff.next();
                    tracing::warn!(
                        error = format!("{e:#}"),
                        retry_in_ms = delay.as_millis() as u64,
                        "could not publish outbox events to NATS"
                    );
                    if pause(shutdown, delay).await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(SLOW_POLL) => {}
            }
        }
    }

    /// One pass: publishes up to one batch of the oldest rows, in order,
    /// and removes those acknowledged. Returns whether more rows may be
    /// waiting. Rows not acknowledged stay for the next pass.
    pub async fn pass(&self, conn: &mut PgConnection) -> Result<bool, PassError> {
        let rows = outbox::oldest(conn, BATCH).await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let Published { acked, failure } = self.publisher.publish(&rows).await;
        let acked: Vec<i64> = rows[..acked].iter().map(|row| row.seq).collect();
        if !acked.is_empty() {
            // Counted before the delete: acknowledged is published, and a
            // reader who sees the outbox empty sees the count complete.
            self.metrics.events_published.inc_by(acked.len() as u64);
            outbox::remove(conn, &acked).await?;
            tracing::debug!(count = acked.len(), "published outbox events");
        }
        match failure {
            Some(e) => Err(PassError::Nats(e)),
            None => Ok(rows.len() as i64 == BATCH),
        }
    }
}

/// What became of a batch handed to a [`Publisher`].
pub struct Published {
    /// How many rows, from the first, were acknowledged.
    pub acked: usize,
    /// Why the rest were not.
    pub failure: Option<anyhow::Error>,
}

/// Where the relay publishes: JetStream, or memory in tests that step one
/// pass ([`MemoryPublisher`]).
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `rows` in order; stops at the first that fails.
    fn publish(&self, rows: &[PendingEvent]) -> impl Future<Output = Published> + Send;
}

/// Shared, so a test can read what the relay published.
impl<P: Publisher> Publisher for Arc<P> {
    fn publish(&self, rows: &[PendingEvent]) -> impl Future<Output = Published> + Send {
        P::publish(self, rows)
    }
}

/// Publishes to the `TODOS` stream, creating it if it is missing.
pub struct JetStreamPublisher {
    jetstream: jetstream::Context,
    stream: TodosStream,
    /// The stream is known to exist; checked again after a failure.
    stream_ready: AtomicBool,
}

impl JetStreamPublisher {
    pub fn new(jetstream: jetstream::Context, stream: TodosStream) -> Self {
        Self {
            jetstream,
            stream,
            stream_ready: AtomicBool::new(false),
        }
    }

    async fn send(&self, rows: &[PendingEvent]) -> Published {
        if !self.stream_ready.load(Ordering::Acquire) {
            if let Err(e) = ensure_stream(&self.jetstream, self.stream).await {
                return Published {
                    acked: 0,
                    failure: Some(e),
                };
            }
            self.stream_ready.store(true, Ordering::Release);
        }
        // The whole batch goes out before the first ack is awaited: one
        // round trip per batch instead of one per row. Each message but the
        // first expects the one before it to be the stream's last, so if
        // JetStream refused one, every later one is refused too and the
        // stream's order stays the outbox's (a retried row that was stored
        // after all is dropped by its Nats-Msg-Id before that check).
        let mut sent = Vec::with_capacity(rows.len());
        let mut failure = None;
        let mut previous: Option<String> = None;
        for row in rows {
            let event_id = row.event_id.to_string();
            let mut message = PublishMessage::build()
                .payload(row.payload.clone().into())
                .message_id(&event_id);
            if let Some(previous) = &previous {
                message = message.expected_last_message_id(previous);
            }
            match self.jetstream.send_publish(row.subject, message).await {
                Ok(ack) => sent.push((row, ack)),
                Err(e) => {
                    failure = Some(
                        anyhow::Error::new(e).context(format!("publishing event {}", row.event_id)),
                    );
                    break;
                }
            }
            previous = Some(event_id);
        }
        let mut acked = 0;
        for (row, ack) in sent {
            match tokio::time::timeout(ACK_TIMEOUT, ack).await {
                Ok(Ok(_)) => acked += 1,
                Ok(Err(e)) => {
                    failure = Some(
                        anyhow::Error::new(e).context(format!("publishing event {}", row.event_id)),
                    );
                    break;
                }
                Err(_) => {
                    failure = Some(anyhow::anyhow!(
                        "no acknowledgement from JetStream within {ACK_TIMEOUT:?} for event {}",
                        row.event_id
                    ));
                    break;
                }
            }
        }
        Published { acked, failure }
    }
}

impl Publisher for JetStreamPublisher {
    async fn publish(&self, rows: &[PendingEvent]) -> Published {
        let published = self.send(rows).await;
        if published.failure.is_some() {
            self.stream_ready.store(false, Ordering::Release);
        }
        published
    }
}

/// A message as [`MemoryPublisher`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub message_id: String,
    pub payload: String,
}

/// Keeps what it is given, in order, for tests that step one relay pass;
/// told to, it refuses every publish, as an unreachable NATS does.
#[derive(Default)]
pub struct MemoryPublisher {
    messages: Mutex<Vec<Message>>,
    refusing: AtomicBool,
}

impl MemoryPublisher {
    /// Every message taken so far, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refuses (`true`) or takes (`false`) publishes from now on.
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Release);
    }
}

impl Publisher for MemoryPublisher {
    async fn publish(&self, rows: &[PendingEvent]) -> Published {
        if self.refusing.load(Ordering::Acquire) {
            return Published {
                acked: 0,
                failure: Some(anyhow::anyhow!("the publisher refuses")),
            };
        }
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages.extend(rows.iter().map(|row| Message {
            subject: row.subject.to_owned(),
            message_id: row.event_id.to_string(),
            payload: row.payload.clone(),
        }));
        Published {
            acked: rows.len(),
            failure: None,
        }
    }
}

/// Creates the `TODOS` stream, or brings it to the contract's settings
/// (see `service_kit::jetstream`).
pub async fn ensure_stream(
    jetstream: &jetstream::Context,
    stream: TodosStream,
) -> anyhow::Result<()> {
    service_kit::jetstream::ensure_stream(jetstream, events::stream_config(stream)).await?;
    Ok(())
}

/// `database` for a lock connection: sessions the server ends when idle
/// for [`LEADER_LEASE`], or when the peer stops answering TCP for about
/// 10 s (`tcp_user_timeout` for unacknowledged data, keepalives from 5 s of
/// silence, every 2 s, 3 probes), whichever comes first.
pub fn leased(database: &PgConnectOptions) -> PgConnectOptions {
    let lease_ms = LEADER_LEASE.as_millis().to_string();
    database.clone().options([
        ("idle_session_timeout", lease_ms.as_str()),
        ("tcp_keepalives_idle", "5"),
        ("tcp_keepalives_interval", "2"),
        ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "10000"),
    ])
}

/// Sleeps unless shutdown comes first (then `Err`).
async fn pause(shutdown: &CancellationToken, duration: Duration) -> Result<(), ()> {
    tokio::select! {
        () = shutdown.cancelled() => Err(()),
        () = tokio::time::sleep(duration) => Ok(()),
    }
}

/// Doubling delays from 100 ms up to [`MAX_BACKOFF`].
#[derive(Default)]
struct Backoff {
    attempts: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let delay = Duration::from_millis(100u64 << self.attempts.min(6)).min(MAX_BACKOFF);
        self.attempts = self.attempts.saturating_add(1);
        delay
    }

    fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..8).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next().as_millis(), 100);
    }
}
