//! The dead-letter stream `TODOS_DLQ`.
//!
//! An event that cannot be delivered (a non-retryable answer, the schedule
//! ran out, or a payload this build cannot read) is published here with its
//! original bytes untouched, so it can be inspected and replayed into
//! `TODOS` as is, plus headers saying why:
//!
//! | header | value |
//! |---|---|
//! | `Docket-Last-Error` | the last error, with its causes |
//! | `Docket-Attempts` | the delivery count when it was given up |
//! | `Docket-Original-Subject` | e.g. `todos.created` |
//! | `Docket-Original-Sequence` | the sequence in `TODOS` |
//!
//! `Nats-Msg-Id` is the original stream sequence, so if a replica dies
//! between publishing here and acking the original, the retry does not
//! store a second copy. Only after JetStream confirms the dead letter is the
//! original acked: an event is in one stream or the other, never neither.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use events::StreamReplicas;

use crate::error::{Error, Result};

/// The dead-letter stream.
pub const STREAM: &str = "TODOS_DLQ";

/// Its subjects: `todos_dlq.<original subject's last token>`.
pub const SUBJECTS: &str = "todos_dlq.>";

/// Dead letters are kept for a month: long enough to notice and replay.
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What to record about a dead letter.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    pub payload: Bytes,
    pub original_subject: &'a str,
    pub original_sequence: u64,
    pub attempts: i64,
    pub last_error: String,
}

/// Creates the stream, or brings it to these settings.
pub async fn ensure_stream(js: &jetstream::Context, replicas: StreamReplicas) -> Result<()> {
    service_kit::jetstream::ensure_stream(
        js,
        stream::Config {
            name: STREAM.to_owned(),
            description: Some("Docket broadcaster: todo events that could not be delivered".into()),
            subjects: vec![SUBJECTS.to_owned()],
            storage: stream::StorageType::File,
            max_age: MAX_AGE,
            duplicate_window: events::STREAM_DUPLICATE_WINDOW,
            num_replicas: replicas.get(),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Publishes a dead letter and waits for JetStream to store it.
pub async fn publish(js: &jetstream::Context, letter: DeadLetter<'_>) -> Result<()> {
    let kind = letter
        .original_subject
        .rsplit('.')
        .next()
        .unwrap_or("unknown");
    let mut headers = HeaderMap::new();
    headers.insert(
        events::MSG_ID_HEADER,
        format!("todos-{}", letter.original_sequence).as_str(),
    );
    // Header values are one line; keep the error readable and bounded.
    let error: String = letter
        .last_error
        .replace(['\r', '\n'], " ")
        .chars()
        .take(1000)
        .collect();
    headers.insert("Docket-Last-Error", error.as_str());
    headers.insert("Docket-Attempts", letter.attempts.to_string().as_str());
    headers.insert("Docket-Original-Subject", letter.original_subject);
    headers.insert(
        "Docket-Original-Sequence",
        letter.original_sequence.to_string().as_str(),
    );
    js.publish_with_headers(format!("todos_dlq.{kind}"), headers, letter.payload)
        .await
        .map_err(|e| Error::Nats {
            context: "publishing a dead letter".into(),
            source: e.into(),
        })?
        .await
        .map_err(|e| Error::Nats {
            context: "storing a dead letter".into(),
            source: e.into(),
        })?;
    Ok(())
}
