//! `cronjobs next-request`: takes one request from the JetStream consumer
//! `JOBS/wikipedia-todo`, runs `wikipedia-todo` for it, and acknowledges it;
//! then exits. This is the Job a scale-to-zero scaler (KEDA's
//! `nats-jetstream`, `kustomize/components/keda-wikipedia`) starts per
//! pending request.
//!
//! The request is acknowledged only after its todo exists, and the
//! acknowledgement waits for the server's confirmation. A failed job
//! answers the request with a delayed `nak`, so the consumer hands it out
//! again (up to its `maxDeliver`); a Job that dies mid-way leaves it
//! unacknowledged, and it comes back after the consumer's `ackWait`. So
//! every request makes a todo at least once; a Job killed between creating
//! the todo and the acknowledgement makes a second one.
//!
//! No request pending (the scaler started one Job too many) is not a
//! failure: the command waits `REQUEST_WAIT` and exits 0.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use service_kit::{Env, NatsSettings};

use crate::config::RequestConfig;
use crate::wikipedia::WikipediaTodo;

/// The stream and durable consumer the requests wait on.
pub const STREAM: &str = "JOBS";
pub const CONSUMER: &str = "wikipedia-todo";
/// The inbox prefix the `jobs` NATS user may receive replies under
/// (kustomize/base/nats/nats.conf).
pub const INBOX_PREFIX: &str = "_INBOX_jobs";
/// How long a failed request waits before the consumer hands it out again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// What one run did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A request was taken, its todo created, the request acknowledged.
    Served,
    /// No request came within the wait.
    NothingPending,
}

/// `cronjobs next-request`.
pub async fn run() -> anyhow::Result<()> {
    let config = RequestConfig::read(&Env::process())?;
    match serve_one(config).await? {
        Outcome::Served => tracing::info!("served one request"),
        Outcome::NothingPending => tracing::info!("no request was pending"),
    }
    Ok(())
}

/// Takes and serves at most one request.
pub async fn serve_one(config: RequestConfig) -> anyhow::Result<Outcome> {
    let job = WikipediaTodo::new(config.job)?;
    let nats = config
        .nats
        .connect(
            NatsSettings::service_options("cronjobs-next-request")
                .custom_inbox_prefix(INBOX_PREFIX),
        )
        .await
        .context("connecting to NATS (NATS_URL)")?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = jetstream::new(nats.clone())
        .get_consumer_from_stream(CONSUMER, STREAM)
        .await
        .with_context(|| format!("finding the consumer {STREAM}/{CONSUMER}"))?;
    let started = Instant::now();
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(config.wait)
        .messages()
        .await
        .context("asking for the next request")?;
    let Some(request) = batch.next().await else {
        tracing::debug!(waited = ?started.elapsed(), "no request within the wait");
        return Ok(Outcome::NothingPending);
    };
    let request = request.map_err(|e| anyhow::anyhow!("receiving the request: {e}"))?;

    match job.run_once().await {
        Ok(todo) => {
            request.double_ack().await.map_err(|e| {
                anyhow::anyhow!("acknowledging the request (todo {}): {e}", todo.id)
            })?;
            nats.flush().await.context("flushing the acknowledgement")?;
            Ok(Outcome::Served)
        }
        Err(job_error) => {
            if let Err(e) = request.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await {
                tracing::warn!(error = %e, "could not hand the request back; it returns after the consumer's ack wait");
            }
            let _ = nats.flush().await;
            Err(anyhow::Error::new(job_error)
                .context("the request's job failed; it will be retried"))
        }
    }
}
