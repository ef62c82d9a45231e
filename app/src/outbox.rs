//! The outbox relay: publishes outbox rows to JetStream, in order, once.
//!
//! Exactly one relay is active across all replicas: it holds a session-level
//! Postgres advisory lock on its own connection. When that replica dies its
//! connection closes, the lock is released, and another replica's relay,
//! polling for the lock, takes over. The active relay publishes a batch of
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

use std::sync::Arc;

use async_nats::jetstream::{self, message::PublishMessage};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::outbox;
use crate::metrics::Metrics;

/// How often a standby replica asks for the lock.
const STANDBY_POLL: Duration = Duration::from_secs(2);
/// A fallback in case a notification is missed (e.g. while the listener reconnects).
const SLOW_POLL: Duration = Duration::from_secs(5);
/// Rows read per round trip.
const BATCH: i64 = 100;
/// How long one publish may wait for its ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Relay {
    database: PgConnectOptions,
    /// Woken by the replica's outbox listener (`crate::outbox_listener`).
    /// A wake-up that comes during a pass is kept for the next wait, and
    /// any number of them count as one: each pass reads every committed row.
    wake: Arc<Notify>,
    jetstream: jetstream::Context,
    metrics: Metrics,
}

/// Why one pass over the outbox stopped early.
enum PassError {
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

impl Relay {
    pub fn new(
        database: PgConnectOptions,
        wake: Arc<Notify>,
        jetstream: jetstream::Context,
        metrics: Metrics,
    ) -> Self {
        Self {
            database,
            wake,
            jetstream,
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
        let mut conn = PgConnection::connect_with(&self.database).await?;
        loop {
            if outbox::try_lead(&mut conn).await? {
                break;
            }
            if pause(shutdown, STANDBY_POLL).await.is_err() {
                return Ok(());
            }
        }
        tracing::info!("outbox relay is active on this replica");

        let mut stream_ready = false;
        let mut backoff = Backoff::default();

        loop {
            match self.publish_pending(&mut conn, &mut stream_ready).await {
                Ok(more) => {
                    backoff.reset();
                    if more && !shutdown.is_cancelled() {
                        continue;
                    }
                }
                Err(PassError::Database(e)) => return Err(e),
                Err(PassError::Nats(e)) => {
                    stream_ready = false;
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

    /// Publishes up to one batch. Returns whether more rows may be waiting.
    async fn publish_pending(
        &self,
        conn: &mut PgConnection,
        stream_ready: &mut bool,
    ) -> Result<bool, PassError> {
        let rows = outbox::oldest(conn, BATCH).await?;
        if rows.is_empty() {
            return Ok(false);
        }
        if !*stream_ready {
            ensure_stream(&self.jetstream)
                .await
                .map_err(PassError::Nats)?;
            *stream_ready = true;
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
        for row in &rows {
            let event_id = row.event_id.to_string();
            let mut message = PublishMessage::build()
                .payload(row.payload.clone().into())
                .message_id(&event_id);
            if let Some(previous) = &previous {
                message = message.expected_last_message_id(previous);
            }
            match self
                .jetstream
                .send_publish(row.subject.clone(), message)
                .await
            {
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
        let mut acked = Vec::with_capacity(sent.len());
        for (row, ack) in sent {
            match tokio::time::timeout(ACK_TIMEOUT, ack).await {
                Ok(Ok(_)) => acked.push(row.seq),
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

/// Creates the `TODOS` stream if it is missing.
pub async fn ensure_stream(jetstream: &jetstream::Context) -> anyhow::Result<()> {
    jetstream
        .get_or_create_stream(events::stream_config())
        .await
        .map_err(|e| anyhow::anyhow!("creating the {} stream: {e}", events::STREAM))?;
    Ok(())
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
