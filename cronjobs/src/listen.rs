//! `cronjobs listen`: runs `wikipedia-todo` for every request on the NATS
//! subject `jobs.wikipedia-todo`, and answers with the created todo.
//!
//! Every replica joins the queue group `cronjobs`, so NATS hands each
//! request to exactly one of them: one request, one todo, however many
//! replicas run. A request with a reply subject gets `{"id": .., "text": ..}`
//! or `{"error": ".."}` back; the request's payload is ignored.
//!
//! Core NATS, not JetStream: a request sent while no replica runs fails at
//! once with "no responders" for the requester to see, rather than creating
//! a todo some time later that nobody waits for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use service_kit::{Env, NatsSettings};

use crate::config::ListenConfig;
use crate::metrics::Metrics;
use crate::ops;
use crate::wikipedia::WikipediaTodo;

pub const SUBJECT: &str = "jobs.wikipedia-todo";
pub const QUEUE_GROUP: &str = "cronjobs";
/// Jobs one replica runs at once; further requests wait in the client.
const CONCURRENCY: usize = 4;
/// How long running jobs may take to finish after SIGTERM (under the 10 s
/// Kubernetes waits by default before SIGKILL).
const DRAIN_LIMIT: Duration = Duration::from_secs(8);

/// The answer to a request.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Reply {
    Created { id: Uuid, text: String },
    Failed { error: String },
}

pub struct Listener {
    listener: TcpListener,
    nats: async_nats::Client,
    job: WikipediaTodo,
    metrics: Metrics,
}

impl Listener {
    /// Binds `PORT` and starts connecting to NATS; NATS may still be down.
    pub async fn build(config: ListenConfig) -> anyhow::Result<Self> {
        let job = WikipediaTodo::new(config.job)?;
        let nats = config
            .nats
            .connect(NatsSettings::service_options("cronjobs-listen"))
            .await
            .context("setting up the NATS connection (NATS_URL)")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {} (is the port taken? set PORT)", config.listen))?;
        Ok(Self {
            listener,
            nats,
            job,
            metrics: Metrics::new(),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
            .port()
    }

    /// Serves requests until `shutdown`, then lets running jobs finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            nats,
            job,
            metrics,
        } = self;
        let subscribed = Arc::new(AtomicBool::new(false));
        let ops = ops::router(metrics.clone(), nats.clone(), subscribed.clone());
        tracing::info!(
            port = listener.local_addr()?.port(),
            "cronjobs listen: operations port open"
        );
        let server = tokio::spawn(
            axum::serve(listener, ops)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );

        let mut requests = nats
            .queue_subscribe(SUBJECT, QUEUE_GROUP.to_owned())
            .await
            .context("subscribing to jobs.wikipedia-todo")?;
        // Ready once the server has the subscription (a flush round trip),
        // which waits for the connection if NATS is not up yet.
        tokio::select! {
            () = shutdown.cancelled() => {}
            flushed = nats.flush() => {
                flushed.context("registering the subscription with NATS")?;
                subscribed.store(true, Ordering::Release);
                tracing::info!(subject = SUBJECT, queue = QUEUE_GROUP, "listening for requests");
            }
        }

        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut running = JoinSet::new();
        loop {
            let request = tokio::select! {
                () = shutdown.cancelled() => break,
                request = requests.next() => match request {
                    Some(request) => request,
                    None => anyhow::bail!("the NATS subscription ended unexpectedly"),
                },
            };
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let (job, nats, metrics) = (job.clone(), nats.clone(), metrics.clone());
            running.spawn(async move {
                handle(&job, &nats, &metrics, request.reply).await;
                drop(permit);
            });
            // Reap finished jobs so the set does not grow.
            while running.try_join_next().is_some() {}
        }

        tracing::info!("shutting down: no new requests, finishing running jobs");
        subscribed.store(false, Ordering::Release);
        let _ = requests.unsubscribe().await;
        let drained = tokio::time::timeout(DRAIN_LIMIT, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("jobs still running after {DRAIN_LIMIT:?}; stopping anyway");
        }
        // Replies are buffered in the client: send them before exiting.
        let _ = tokio::time::timeout(Duration::from_secs(1), nats.flush()).await;
        server
            .await
            .context("the operations server panicked")?
            .context("serving the operations port")?;
        tracing::info!("cronjobs listen stopped");
        Ok(())
    }
}

/// Runs the job once for one request and answers it, if it asked.
async fn handle(
    job: &WikipediaTodo,
    nats: &async_nats::Client,
    metrics: &Metrics,
    reply_to: Option<async_nats::Subject>,
) {
    let started = Instant::now();
    let result = job.run_once().await;
    metrics.duration.observe(started.elapsed().as_secs_f64());
    metrics.record(result.is_ok());
    let reply = match result {
        Ok(todo) => Reply::Created {
            id: todo.id,
            text: todo.text,
        },
        Err(e) => {
            tracing::error!(error = %e, "wikipedia-todo request failed");
            Reply::Failed {
                error: e.to_string(),
            }
        }
    };
    if let Some(reply_to) = reply_to {
        let body = serde_json::to_vec(&reply).expect("a reply serializes");
        if let Err(e) = nats.publish(reply_to, body.into()).await {
            tracing::warn!(error = %e, "could not send the reply");
        }
    }
}

/// `cronjobs listen`: until SIGTERM or Ctrl-C.
pub async fn run() -> anyhow::Result<()> {
    let config = ListenConfig::read(&Env::process())?;
    let shutdown = CancellationToken::new();
    tokio::spawn(service_kit::stop::cancel_on_request(
        shutdown.clone(),
        "finishing the jobs under way",
    ));
    Listener::build(config)
        .await?
        .run_until_stopped(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_carry_the_id_or_the_reason() {
        let id = Uuid::nil();
        let created = serde_json::to_value(Reply::Created {
            id,
            text: "Read x".into(),
        })
        .unwrap();
        assert_eq!(created, serde_json::json!({ "id": id, "text": "Read x" }));
        let failed = serde_json::to_value(Reply::Failed {
            error: "no redirect".into(),
        })
        .unwrap();
        assert_eq!(failed, serde_json::json!({ "error": "no redirect" }));
    }
}
