//! Caps on open live-update streams (`GET /events`): how many one replica
//! keeps, how many one client may hold, and how long each may live.
//!
//! A stream costs a connection, a task and a share of every change's
//! fan-out (and the re-fetch that follows), for as long as the browser keeps
//! it. Without caps a client could open them until the replica ran out of
//! file descriptors or memory. Over a cap the request is refused (503 with
//! `Retry-After`); a stream that reaches its lifetime ends, and the browser
//! reconnects after the `retry` the stream gave it, re-fetching the lists on
//! the new stream's first event, so nothing is missed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntGauge;

use crate::client::Client;

/// The three caps, as `LIVE_MAX_STREAMS`, `LIVE_MAX_STREAMS_PER_CLIENT` and
/// `LIVE_MAX_LIFETIME` give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub per_replica: NonZeroU32,
    pub per_client: NonZeroU32,
    pub lifetime: Duration,
}

impl StreamLimits {
    /// A replica's share of a busy team, well under the file descriptors
    /// and memory of a small pod (a stream holds about 10 KiB); a person's
    /// tabs and devices behind one address; and a lifetime short enough that
    /// streams move to new replicas after a scale-up.
    pub const DEFAULT: StreamLimits = StreamLimits {
        per_replica: NonZeroU32::new(2_000).expect("not zero"),
        per_client: NonZeroU32::new(32).expect("not zero"),
        lifetime: Duration::from_secs(15 * 60),
    };
}

/// Which cap refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Replica,
    Client,
}

/// The streams open on this replica, by client.
#[derive(Debug)]
pub struct OpenStreams {
    limits: StreamLimits,
    by_client: Mutex<HashMap<Client, u32>>,
    /// `live_streams_open`: how many are open now.
    gauge: IntGauge,
}

impl OpenStreams {
    pub fn new(limits: StreamLimits, gauge: IntGauge) -> Arc<Self> {
        Arc::new(Self {
            limits,
            by_client: Mutex::new(HashMap::new()),
            gauge,
        })
    }

    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// A place for one more stream of `client`, held until the slot is
    /// dropped (when the stream ends, however it ends).
    pub fn open(self: &Arc<Self>, client: Client) -> Result<StreamSlot, Full> {
        let mut by_client = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        if self.gauge.get() >= i64::from(self.limits.per_replica.get()) {
            return Err(Full::Replica);
        }
        let count = by_client.entry(client).or_insert(0);
        if *count >= self.limits.per_client.get() {
            return Err(Full::Client);
        }
        *count += 1;
        self.gauge.inc();
        Ok(StreamSlot {
            streams: Arc::clone(self),
            client,
        })
    }

    fn close(&self, client: Client) {
        let mut by_client = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = by_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                by_client.remove(&client);
            }
        }
        self.gauge.dec();
    }
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<OpenStreams>,
    client: Client,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.streams.close(self.client);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn streams(per_replica: u32, per_client: u32) -> Arc<OpenStreams> {
        let limits = StreamLimits {
            per_replica: NonZeroU32::new(per_replica).unwrap(),
            per_client: NonZeroU32::new(per_client).unwrap(),
            lifetime: Duration::from_secs(60),
        };
        OpenStreams::new(limits, IntGauge::new("open", "open").unwrap())
    }

    const A: Client = Client::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: Client = Client::V4(Ipv4Addr::new(10, 0, 0, 2));
    const C: Client = Client::V4(Ipv4Addr::new(10, 0, 0, 3));

    #[test]
    fn each_client_and_the_replica_have_their_cap_and_closing_frees_a_place() {
        let streams = streams(3, 2);
        let a1 = streams.open(A).unwrap();
        let _a2 = streams.open(A).unwrap();
        assert_eq!(streams.open(A).unwrap_err(), Full::Client);
        let _b1 = streams.open(B).unwrap();
        assert_eq!(streams.open(C).unwrap_err(), Full::Replica);
        assert_eq!(streams.gauge.get(), 3);

        drop(a1);
        assert_eq!(streams.gauge.get(), 2);
        let _c1 = streams.open(C).unwrap();
        assert_eq!(streams.open(A).unwrap_err(), Full::Replica);
    }

    #[test]
    fn a_client_with_no_stream_left_is_forgotten() {
        let streams = streams(10, 10);
        let slot = streams.open(A).unwrap();
        drop(slot);
        assert!(streams.by_client.lock().unwrap().is_empty());
        assert_eq!(streams.gauge.get(), 0);
    }
}
