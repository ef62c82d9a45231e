//! The record of delivered events, shared by every replica.
//!
//! A JetStream key-value bucket keyed by event id. Before sending, a replica
//! looks the id up and, if it is there, acks the message without sending:
//! that is how a redelivery of an event another replica already delivered
//! (it crashed before its ack reached the server, or its ack was lost) stays
//! a single message. The key is written right after the webhook's 2xx and
//! before the ack, so the only window for a duplicate is a crash between
//! the 2xx and that write; receivers can close it themselves with
//! `webhook-id`, which is the same event id.
//!
//! Entries expire after `BROADCASTER_DEDUPE_TTL` (default 7 days, the
//! stream's own retention), so the bucket stays bounded while covering every
//! event JetStream could still hand out again.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use events::StreamReplicas;

use crate::error::{Error, Result};

/// The bucket's name.
pub const BUCKET: &str = "broadcaster_delivered";

/// Handle on the bucket.
#[derive(Clone)]
pub struct Dedupe {
    store: kv::Store,
}

impl Dedupe {
    /// Opens the bucket, creating it on first use, or bringing it to these
    /// settings (see `service_kit::nats::key_value_stream` for why not
    /// `create_key_value`).
    pub async fn open(
        js: &jetstream::Context,
        ttl: Duration,
        replicas: StreamReplicas,
    ) -> Result<Dedupe> {
        service_kit::jetstream::ensure_stream(
            js,
            stream::Config {
                max_age: ttl,
                num_replicas: replicas.get(),
                ..service_kit::nats::key_value_stream(
                    BUCKET,
                    "Docket broadcaster: ids of events already delivered",
                )
            },
        )
        .await?;
        let store = js.get_key_value(BUCKET).await.map_err(|e| Error::Nats {
            context: format!("opening bucket {BUCKET}"),
            source: e.into(),
        })?;
        Ok(Dedupe { store })
    }

    /// Whether the event was delivered before.
    pub async fn already_delivered(&self, event_id: Uuid) -> Result<bool> {
        self.store
            .get(event_id.to_string())
            .await
            .map(|entry| entry.is_some())
            .map_err(|e| Error::Nats {
                context: "reading the delivered-events bucket".into(),
                source: e.into(),
            })
    }

    /// Records the event as delivered (the value is when, for people reading the bucket).
    pub async fn record(&self, event_id: Uuid) -> Result<()> {
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        self.store
            .put(event_id.to_string(), Bytes::from(now))
            .await
            .map(|_| ())
            .map_err(|e| Error::Nats {
                context: "writing the delivered-events bucket".into(),
                source: e.into(),
            })
    }
}
