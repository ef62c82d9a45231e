//! Shared set-up: a private nats-server, the real `broadcaster` binary,
//! and webhook receivers on loopback that answer as each test scripts.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::HeaderMap as NatsHeaders;
use async_nats::jetstream::{self, consumer::pull};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use broadcaster::sink::Verifier;
use bytes::Bytes;
use events::{EventType, SCHEMA_VERSION, TodoEvent, TodoSnapshot};
use test_support::{Nats, Service, free_port};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// The secret every test signs with.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A private nats-server and a JetStream handle on it. Each test gets its
/// own: the durable consumer `broadcaster` is shared by whoever connects.
pub struct TestNats {
    pub server: Nats,
    pub js: jetstream::Context,
}

impl TestNats {
    pub async fn start() -> TestNats {
        telemetry::init_for_tests();
        let server = Nats::start().expect("nats-server starts");
        let client = async_nats::connect(server.url())
            .await
            .expect("connects to nats-server");
        TestNats {
            server,
            js: jetstream::new(client),
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Publishes as the app's outbox relay does: on the type's subject, with
    /// the event id as `Nats-Msg-Id`.
    pub async fn publish(&self, event: &TodoEvent) {
        self.publish_with_msg_id(event, &event.id.to_string()).await;
    }

    /// Publishes with a chosen `Nats-Msg-Id`, to store one event twice.
    pub async fn publish_with_msg_id(&self, event: &TodoEvent, msg_id: &str) {
        let mut headers = NatsHeaders::new();
        headers.insert(events::MSG_ID_HEADER, msg_id);
        self.js
            .publish_with_headers(event.subject(), headers, event.to_json().into())
            .await
            .expect("publish is sent")
            .await
            .expect("publish is stored: the broadcaster creates TODOS");
    }

    /// The durable consumer's state, if it exists.
    pub async fn consumer(&self) -> Option<jetstream::consumer::Info> {
        let stream = self.js.get_stream(events::STREAM).await.ok()?;
        stream
            .consumer_info(broadcaster::consumer::DURABLE)
            .await
            .ok()
    }

    /// Waits until every event in TODOS has been acked by the broadcasters.
    pub async fn wait_until_drained(&self, within: Duration) {
        eventually(within, "the consumer to ack everything", || async {
            let info = self.consumer().await?;
            let stream_last = self
                .js
                .get_stream(events::STREAM)
                .await
                .ok()?
                .info()
                .await
                .ok()?
                .state
                .last_sequence;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.ack_floor.stream_sequence == stream_last)
                .then_some(())
        })
        .await;
    }

    /// Everything in the dead-letter stream, oldest first.
    pub async fn dead_letters(&self) -> Vec<jetstream::Message> {
        let Ok(stream) = self.js.get_stream(broadcaster::dlq::STREAM).await else {
            return Vec::new();
        };
        let consumer = stream
            .create_consumer(pull::Config {
                ..Default::default()
            })
            .await
            .expect("an ephemeral consumer on the DLQ");
        let mut out = Vec::new();
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .messages()
            .await
            .expect("fetch");
        while let Some(Ok(message)) = futures::StreamExt::next(&mut batch).await {
            out.push(message);
        }
        out
    }
}

/// A todo event as the app would publish it.
pub fn event(event_type: EventType, todo_id: Uuid, text: &str, done: bool) -> TodoEvent {
    let now = OffsetDateTime::now_utc();
    TodoEvent {
        id: Uuid::now_v7(),
        event_type,
        schema_version: SCHEMA_VERSION,
        occurred_at: now,
        todo: TodoSnapshot {
            id: todo_id,
            text: text.into(),
            done,
            created_at: now,
            updated_at: now,
        },
        changed: Vec::new(),
    }
}

/// A fresh `todo.created` event.
pub fn created(text: &str) -> TodoEvent {
    event(EventType::Created, Uuid::now_v7(), text, false)
}

/// The real `broadcaster sink`, as `cargo xtask up` runs it, verifying
/// with [`SECRET`]; its base URL is `http://127.0.0.1:<port>/`.
pub async fn spawn_sink() -> (Service, u16) {
    let port = free_port();
    let port_arg = port.to_string();
    let sink = Service::spawn(
        Path::new(env!("CARGO_BIN_EXE_broadcaster")),
        &["sink", "--port", &port_arg, "--secret", SECRET],
        &[],
        &format!("http://127.0.0.1:{port}/healthz"),
    )
    .await
    .expect("the sink starts");
    (sink, port)
}

/// Waits until `GET <base>/readyz` answers `status`, failing the test after `within`.
pub async fn readyz_becomes(base: &str, status: u16, within: Duration) {
    let readyz = format!("{base}/readyz");
    eventually(within, &format!("/readyz to report {status}"), || async {
        let answered = http().get(&readyz).send().await.ok()?.status();
        (answered == status).then_some(())
    })
    .await;
}

/// What the sink on `port` has received so far (`None` if it did not answer).
pub async fn sink_messages(port: u16) -> Option<Vec<serde_json::Value>> {
    http()
        .get(format!("http://127.0.0.1:{port}/messages"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// A running `broadcaster` process and its operations port.
pub struct Broadcaster {
    pub service: Service,
    pub port: u16,
}

impl Broadcaster {
    /// Spawns the binary with `envs` on top of `NATS_URL`, `PORT` and JSON
    /// logs; ready once `/readyz` answers 200.
    pub async fn spawn(nats_url: &str, envs: &[(&str, String)]) -> anyhow::Result<Broadcaster> {
        let port = free_port();
        let mut all = vec![
            ("NATS_URL", nats_url.to_owned()),
            ("PORT", port.to_string()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ];
        all.extend(envs.iter().cloned());
        let service = Service::spawn(
            Path::new(env!("CARGO_BIN_EXE_broadcaster")),
            &[],
            &all,
            &format!("http://127.0.0.1:{port}/readyz"),
        )
        .await?;
        Ok(Broadcaster { service, port })
    }

    /// Forward mode, generic format, signed with [`SECRET`], to `url`, with
    /// a short timeout and schedule unless `extra` says otherwise.
    pub async fn forwarding(nats_url: &str, url: &str, extra: &[(&str, &str)]) -> Broadcaster {
        let mut envs = vec![
            ("WEBHOOK_URL", url.to_owned()),
            ("WEBHOOK_SECRET", SECRET.to_owned()),
            ("WEBHOOK_TIMEOUT", "2s".to_owned()),
            ("WEBHOOK_RETRY_SCHEDULE", "200ms,200ms".to_owned()),
        ];
        for (key, value) in extra {
            envs.retain(|(k, _)| k != key);
            envs.push((key, value.to_string()));
        }
        Broadcaster::spawn(nats_url, &envs)
            .await
            .expect("the broadcaster starts")
    }

    /// `broadcaster_messages_processed_total{outcome="<outcome>"}`.
    pub async fn processed(&self, outcome: &str) -> f64 {
        self.metric(&format!(
            r#"broadcaster_messages_processed_total{{outcome="{outcome}"}}"#
        ))
        .await
    }

    /// The value of one sample on `/metrics`, e.g.
    /// `broadcaster_messages_processed_total{outcome="delivered"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = http()
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(sample)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }
}

/// An HTTP client that never goes through a proxy.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// How a [`Receiver`] answers the n-th request (0-based) for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Never answers (holds the request for an hour).
    Hang,
    /// Answers 200 after this many milliseconds.
    Slow(u64),
}

/// One request a [`Receiver`] saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `webhook-id`, or the body for formats without one.
    pub key: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the Standard Webhooks signature verified (checked by the sink's
    /// verifier, which shares no code with the broadcaster's signer).
    pub verified: bool,
    pub reply: Reply,
    pub at: Instant,
}

type Plan = dyn Fn(usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct ReceiverState {
    plan: Arc<Plan>,
    seen: Arc<Mutex<Vec<Seen>>>,
    verifier: Verifier,
}

/// A webhook receiver on loopback that answers each message's n-th request
/// as its plan says and records everything.
pub struct Receiver {
    pub url: String,
    state: ReceiverState,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start(plan: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Receiver {
        let state = ReceiverState {
            plan: Arc::new(plan),
            seen: Arc::default(),
            verifier: Verifier::new(SECRET).unwrap(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new().fallback(receive).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state, task }
    }

    /// Answers 200 to everything.
    pub async fn accepting() -> Receiver {
        Receiver::start(|_| Reply::Status(200)).await
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests for one message.
    pub fn seen_for(&self, key: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.key == key).collect()
    }

    /// Waits until at least `count` requests arrived.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Seen> {
        eventually(
            within,
            &format!("{count} requests at the receiver"),
            || async {
                let seen = self.seen();
                (seen.len() >= count).then_some(seen)
            },
        )
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let verified = state
        .verifier
        .verify(
            &id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
            OffsetDateTime::now_utc().unix_timestamp(),
        )
        .is_ok();
    let key = if id.is_empty() {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        id
    };
    let reply = {
        let mut seen = state.seen.lock().unwrap();
        let earlier = seen.iter().filter(|s| s.key == key).count();
        let reply = (state.plan)(earlier);
        seen.push(Seen {
            key,
            headers: headers.clone(),
            body,
            verified,
            reply,
            at: Instant::now(),
        });
        reply
    };
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::RetryAfter(code, seconds) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", seconds.to_string())],
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Reply::Slow(millis) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Polls `check` until it yields `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for a process to log a line containing `needle`.
pub async fn wait_for_output(
    service: &Service,
    needle: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if service.output().contains(needle) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "no `{needle}` in the output within {within:?}:\n{}",
        service.output()
    )
}

/// Reads a JSON log line's field, for assertions on logs.
pub fn log_lines(output: &str) -> Vec<serde_json::Value> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The header of a NATS message as text.
pub fn nats_header(message: &jetstream::Message, name: &str) -> anyhow::Result<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
        .with_context(|| format!("no {name} header"))
}
