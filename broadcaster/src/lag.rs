//! How far the broadcaster is behind the `TODOS` stream, read from the
//! durable consumer when `/metrics` is scraped: events waiting to be
//! delivered, events delivered and not yet acknowledged, and the age of the
//! oldest event not yet acknowledged. An event still unacknowledged when the
//! stream's `max_age` (7 days) passes is gone, so the age is what an alert
//! must watch. Every replica reports the same consumer.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream::stream;
use time::OffsetDateTime;

/// How long a scrape waits for the consumer's numbers.
const READ_WITHIN: Duration = Duration::from_secs(2);

/// The consumer's backlog at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// Not yet delivered to any replica.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: u64,
    /// Of the oldest event not yet acknowledged; zero when none is waiting.
    pub oldest_unacked_age: Duration,
}

/// Where the lag is read from, once the stream and its consumer are set up.
#[derive(Debug, Clone, Default)]
pub struct LagSource(Arc<OnceLock<Watched>>);

/// The stream and the name of the durable consumer whose lag is read.
#[derive(Debug)]
struct Watched {
    stream: stream::Stream,
    consumer: &'static str,
}

impl LagSource {
    /// From now on, the lag of `consumer` on `stream`.
    pub fn set(&self, stream: stream::Stream, consumer: &'static str) {
        let _ = self.0.set(Watched { stream, consumer });
    }

    /// The current lag; `None` before set-up or when NATS does not answer
    /// in time (the gauges then keep their last values).
    pub async fn read(&self) -> Option<Lag> {
        let watched = self.0.get()?;
        match tokio::time::timeout(READ_WITHIN, measure(&watched.stream, watched.consumer)).await {
            Ok(Ok(lag)) => Some(lag),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "could not read the consumer's lag");
                None
            }
            Err(_) => None,
        }
    }
}

async fn measure(stream: &stream::Stream, consumer: &str) -> Result<Lag, async_nats::Error> {
    let info = stream.consumer_info(consumer).await?;
    let ack_pending = info.num_ack_pending as u64;
    let oldest_unacked_age = if info.num_pending + ack_pending == 0 {
        Duration::ZERO
    } else {
        // Everything up to the ack floor is acknowledged, so the event
        // after it is the oldest that is not.
        let oldest = stream
            .get_raw_message(info.ack_floor.stream_sequence + 1)
            .await?;
        (OffsetDateTime::now_utc() - oldest.time)
            .try_into()
            .unwrap_or(Duration::ZERO)
    };
    Ok(Lag {
        pending: info.num_pending,
        ack_pending,
        oldest_unacked_age,
    })
}
