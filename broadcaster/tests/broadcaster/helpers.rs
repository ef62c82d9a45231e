//! Shared set-up: a private nats-server and the real `broadcaster` binary;
//! the webhook receiver (answering as each test scripts) and `eventually`
//! come from `test-support`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap as NatsHeaders;
use async_nats::jetstream::{self, consumer::pull};
use events::{EventType, SCHEMA_VERSION, TodoEvent, TodoSnapshot};
use test_support::{Nats, Service, free_port};
use time::OffsetDateTime;
use uuid::Uuid;

pub use test_support::eventually;
pub use test_support::webhook::{Receiver, Reply, SECRET};

/// A private nats-server and a JetStream handle on it, with the `TODOS`
/// helpers the tests share. Each test gets its own server (not
/// [`test_support::TestNats`], which may share one): the durable consumer
/// `broadcaster` is shared by whoever connects.
pub struct PrivateNats {
    pub server: Nats,
    pub js: jetstream::Context,
}

impl PrivateNats {
    pub async fn start() -> PrivateNats {
        telemetry::init_for_tests();
        let server = Nats::start().expect("nats-server starts");
        let client = async_nats::connect(server.url())
            .await
            .expect("connects to nats-server");
        PrivateNats {
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
        .await
        .unwrap();
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
        actor: None,
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
    .await
    .unwrap();
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
        let text = get(&format!("http://127.0.0.1:{}/metrics", self.port))
            .await
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

/// `GET url` with [`http`]; fails the test if nothing answers.
pub async fn get(url: &str) -> reqwest::Response {
    http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url} answers: {e}"))
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
