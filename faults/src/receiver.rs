//! A webhook receiver on loopback whose behaviour a scenario switches at run
//! time (accept, fail with a status, answer slowly), recording every request.
//! Signatures are checked with the sink's verifier, which shares no code with
//! the broadcaster's signer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use broadcaster::sink::Verifier;
use bytes::Bytes;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// The secret the broadcasters sign with.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// How the receiver answers right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    Fail(u16),
    /// 200 after this long.
    Slow(Duration),
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub webhook_id: String,
    pub event_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub todo_id: Option<Uuid>,
    pub verified: bool,
    /// Whether it was answered 2xx (a delivery), as opposed to a failure.
    pub accepted: bool,
    /// When it was answered.
    pub at: Instant,
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    verifier: Verifier,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Receiver> {
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(Behaviour::Accept)),
            seen: Arc::default(),
            verifier: Verifier::new(SECRET).map_err(anyhow::Error::msg)?,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { url, shared, task })
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let webhook_id = header("webhook-id");
    let verified = shared
        .verifier
        .verify(
            &webhook_id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
            OffsetDateTime::now_utc().unix_timestamp(),
        )
        .is_ok();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let event = &json["event"];
    let uuid = |value: &serde_json::Value| value.as_str().and_then(|s| s.parse().ok());
    let behaviour = *shared.behaviour.lock().unwrap();
    let accepted = matches!(behaviour, Behaviour::Accept | Behaviour::Slow(_));
    if let Behaviour::Slow(wait) = behaviour {
        tokio::time::sleep(wait).await;
    }
    // Recorded once answered: a request the broadcaster gave up on (its
    // timeout) is not a delivery.
    shared.seen.lock().unwrap().push(Seen {
        webhook_id,
        event_id: uuid(&event["id"]),
        event_type: event["type"].as_str().map(str::to_owned),
        todo_id: uuid(&event["todo"]["id"]),
        verified,
        accepted,
        at: Instant::now(),
    });
    match behaviour {
        Behaviour::Fail(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
        Behaviour::Accept | Behaviour::Slow(_) => StatusCode::OK.into_response(),
    }
}
