//! Wiring: connect, bind the port, set up JetStream, run until stopped.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::PullConsumer;
use service_kit::NatsSettings;
use service_kit::jetstream::StreamError;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::circuit::Breaker;
use crate::config::{Config, Mode};
use crate::consumer;
use crate::dedupe::Dedupe;
use crate::delivery::{Deliverer, Sender};
use crate::dlq;
use crate::error::{Error, Result};
use crate::health::{self, AppState};
use crate::metrics::Metrics;
use crate::worker::Worker;

/// A broadcaster ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    js: jetstream::Context,
    config: Config,
}

/// What the pull loop needs once JetStream is set up.
struct Running {
    source: consumer::Source,
    consumer: PullConsumer,
    worker: Arc<Worker>,
}

impl Application {
    /// Starts connecting to NATS and binds the operations port (`PORT=0`
    /// picks a free one). NATS need not be up yet: like the app, the
    /// broadcaster starts, answers `/healthz`, and reports not ready on
    /// `/readyz` until it has connected and set up its streams, bucket and
    /// consumer ([`Application::run_until_stopped`] keeps trying).
    pub async fn build(config: Config) -> Result<Application> {
        let metrics = Metrics::new();
        let nats = connect(&config.nats, metrics.clone()).await?;
        metrics.count_messages_of(&nats);
        let js = jetstream::new(nats.clone());
        match &config.mode {
            Mode::Forward(target) => {
                tracing::info!(format = target.format.name(), "forwarding to the webhook");
            }
            Mode::Log => tracing::info!("log mode: messages are logged, nothing is sent"),
        }
        let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| Error::Listen { address, source })?;
        let state = AppState {
            metrics,
            nats,
            consumer_ready: Arc::new(AtomicBool::new(false)),
        };
        Ok(Application {
            listener,
            state,
            js,
            config,
        })
    }

    /// The operations port actually bound.
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Runs until SIGTERM or Ctrl-C: then stops pulling, finishes the events
    /// in flight (bounded by the drain deadline) and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = CancellationToken::new();
        tokio::spawn(service_kit::stop::cancel_on_request(
            shutdown.clone(),
            "no new events will be pulled",
        ));
        tracing::info!(port = self.port(), "broadcaster running");

        let http_stop = CancellationToken::new();
        let server = axum::serve(self.listener, health::router(self.state.clone()))
            .with_graceful_shutdown(http_stop.clone().cancelled_owned());
        let server = tokio::spawn(async move { server.await });

        let running = tokio::select! {
            () = shutdown.cancelled() => None,
            running = set_up_until_done(&self.js, &self.config, &self.state) => match running {
                Ok(running) => Some(running),
                Err(error) => {
                    http_stop.cancel();
                    let _ = server.await;
                    return Err(error.into());
                }
            },
        };
        if let Some(Running {
            source,
            consumer,
            worker,
        }) = running
        {
            // An attempt under way ends within the timeout; then the ack.
            let drain_deadline = self.config.ack_wait() + Duration::from_secs(3);
            let pulling = consumer::run(
                source,
                consumer,
                worker,
                self.config.max_in_flight,
                shutdown.clone(),
            );
            tokio::pin!(pulling);
            tokio::select! {
                () = &mut pulling => {}
                () = shutdown.cancelled() => {
                    if tokio::time::timeout(drain_deadline, &mut pulling).await.is_err() {
                        tracing::warn!("in-flight events did not finish in time; JetStream will redeliver them");
                    }
                }
            }
        }
        // Make sure the last acks left the socket before the process ends.
        let _ = self.state.nats.flush().await;
        http_stop.cancel();
        let _ = server.await;
        tracing::info!("broadcaster stopped");
        Ok(())
    }
}

/// Sets up JetStream, retrying with backoff (1 s doubling to 10 s) until it
/// works; a stream whose settings JetStream cannot change ends the service
/// with the difference named, since waiting would not change it.
async fn set_up_until_done(
    js: &jetstream::Context,
    config: &Config,
    state: &AppState,
) -> Result<Running> {
    let policy =
        service_kit::backoff::exponential(Duration::from_secs(1), Duration::from_secs(10), None);
    let set_up = || set_up(js, config, state);
    let retryable = |error: &Error| !matches!(error, Error::Stream(StreamError::Immutable { .. }));
    service_kit::backoff::retry("setting up JetStream", policy, retryable, set_up).await
}

/// Makes sure the streams, the bucket and the consumer exist (every replica
/// applies the same settings; all calls are idempotent).
async fn set_up(js: &jetstream::Context, config: &Config, state: &AppState) -> Result<Running> {
    let stream = consumer::ensure_todos_stream(js, config.todos_stream).await?;
    dlq::ensure_stream(js, config.todos_stream.replicas).await?;
    let dedupe = Dedupe::open(js, config.dedupe_ttl, config.todos_stream.replicas).await?;
    let consumer_config = consumer::consumer_config(config.ack_wait());
    let last_delivery = consumer::last_delivery(config.retry.attempts());
    let consumer = consumer::ensure_consumer(&stream, consumer_config.clone()).await?;
    state.metrics.lag.set(stream.clone(), consumer::DURABLE);
    let sender = match &config.mode {
        Mode::Forward(target) => Some(Arc::new(Deliverer::new(
            target.clone(),
            config.webhook_timeout,
        )) as Arc<dyn Sender>),
        Mode::Log => None,
    };
    let worker = Arc::new(Worker {
        js: js.clone(),
        sender,
        dedupe,
        breaker: Breaker::new(config.breaker),
        retry: config.retry.clone(),
        metrics: state.metrics.clone(),
        ack_wait: config.ack_wait(),
        last_delivery,
    });
    let source = consumer::Source {
        stream,
        config: consumer_config,
        ready: Arc::clone(&state.consumer_ready),
    };
    Ok(Running {
        source,
        consumer,
        worker,
    })
}

async fn connect(settings: &NatsSettings, metrics: Metrics) -> Result<async_nats::Client> {
    let events_metrics = metrics.clone();
    let options = NatsSettings::service_options("docket-broadcaster")
        .connection_timeout(Duration::from_secs(10))
        .event_callback(move |event| {
            let metrics = events_metrics.clone();
            async move {
                match event {
                    async_nats::Event::Connected => metrics.nats_connected.set(1),
                    async_nats::Event::Disconnected => {
                        metrics.nats_connected.set(0);
                        tracing::warn!("disconnected from NATS; reconnecting");
                    }
                    // A refused login or a permissions violation: the
                    // server's configuration and this service disagree.
                    async_nats::Event::ServerError(error) => {
                        tracing::warn!(error = %error, "NATS server error");
                    }
                    other => tracing::info!(nats.event = %other, "NATS event"),
                }
            }
        });
    let client = settings
        .connect(options)
        .await
        // Not the URL: it may carry credentials.
        .map_err(|e| Error::Nats {
            context: "connecting to NATS_URL".into(),
            source: e.into(),
        })?;
    Ok(client)
}
