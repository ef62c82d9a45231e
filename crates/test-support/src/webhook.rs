//! The webhook receiver tests deliver to: a real HTTP server on loopback
//! that answers as the test scripts and records every request.
//!
//! A test scripts the answers with a plan (the n-th request for one message
//! gets `plan(n)`), can switch the plan while the stack runs, and can
//! override it for one path: each broadcaster replica can be given its own
//! path ([`Receiver::url_for`]), so a test knows which replica a request
//! came from. Every request is recorded when it arrives and marked when it
//! is answered or abandoned (the sender closed the connection first: it
//! timed out, or it died), so a test can see deliveries in flight.
//!
//! Signatures are checked with `standardwebhooks`, the specification's
//! reference crate (the broadcaster's own sink keeps a second, hand-written
//! verifier); test-support stays below the services it tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use crate::eventually;

/// The Standard Webhooks secret the receiver verifies with; give it to the
/// broadcasters as `WEBHOOK_SECRET`.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The path [`Receiver::url`] points at; [`Receiver::url_for`] adds to it.
const BASE_PATH: &str = "/hook";

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Never answers: the request stays open until the sender gives up.
    Hang,
    /// Answers 200 after this long.
    Slow(Duration),
}

impl Reply {
    /// Whether the sender is told the delivery succeeded (2xx).
    pub fn accepts(self) -> bool {
        match self {
            Reply::Status(code) | Reply::RetryAfter(code, _) => (200..300).contains(&code),
            Reply::Slow(_) => true,
            Reply::Hang => false,
        }
    }
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request path: [`Receiver::url_for`] tells senders apart by it.
    pub path: String,
    /// `webhook-id`, empty for formats without one.
    pub webhook_id: String,
    /// `webhook-id`, or the body for formats without one: what identifies
    /// one message across its attempts.
    pub key: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the Standard Webhooks signature verified.
    pub verified: bool,
    pub reply: Reply,
    /// When the request arrived.
    pub at: Instant,
    /// When it was answered; `None` while in flight or if abandoned.
    pub answered: Option<Instant>,
    /// When the sender closed the connection before the answer.
    pub abandoned: Option<Instant>,
}

impl Seen {
    /// Arrived, and neither answered nor abandoned yet.
    pub fn in_flight(&self) -> bool {
        self.answered.is_none() && self.abandoned.is_none()
    }

    /// Answered 2xx: a delivery, as opposed to a failure or a request the
    /// sender gave up on.
    pub fn accepted(&self) -> bool {
        self.answered.is_some() && self.reply.accepts()
    }

    /// The generic format's `event` object, if the body is one.
    fn event(&self) -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .map(|mut json| json["event"].take())
            .unwrap_or_default()
    }

    /// The delivered event's id (generic format).
    pub fn event_id(&self) -> Option<Uuid> {
        self.event()["id"].as_str().and_then(|id| id.parse().ok())
    }

    /// The delivered event's type, e.g. `todo.created` (generic format).
    pub fn event_type(&self) -> Option<String> {
        self.event()["type"].as_str().map(str::to_owned)
    }

    /// The id of the todo the event is about (generic format).
    pub fn todo_id(&self) -> Option<Uuid> {
        self.event()["todo"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
    }
}

type Plan = dyn Fn(usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    plan: Arc<Mutex<Arc<Plan>>>,
    /// Replies that override the plan for one path.
    by_path: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    verifier: Arc<standardwebhooks::Webhook>,
}

/// A webhook receiver on loopback, stopped when dropped.
///
/// It serves from a thread and runtime of its own: it stands in for a
/// service elsewhere, which a test blocking its own thread (`pg_ctl
/// promote`, a server restart) must not stall. A stalled receiver makes
/// senders time out and send again, and the test would count duplicates
/// its own wait made.
pub struct Receiver {
    /// Where to deliver: `http://127.0.0.1:<port>/hook`.
    pub url: String,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver answering each message's n-th request (0-based)
    /// with `plan(n)`.
    pub async fn start(plan: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Receiver {
        Receiver::try_start(plan)
            .await
            .expect("the webhook receiver starts on loopback")
    }

    /// As [`Receiver::start`], for callers that report errors.
    pub async fn try_start(
        plan: impl Fn(usize) -> Reply + Send + Sync + 'static,
    ) -> anyhow::Result<Receiver> {
        let shared = Shared {
            plan: Arc::new(Mutex::new(Arc::new(plan))),
            by_path: Arc::default(),
            seen: Arc::default(),
            verifier: Arc::new(
                standardwebhooks::Webhook::new(SECRET).context("the receiver's secret parses")?,
            ),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("failed to bind the webhook receiver")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}{BASE_PATH}", listener.local_addr()?);
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the webhook receiver's runtime")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("webhook-receiver".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // Until dropped; the runtime's end then cuts off any
                    // request still open, as a stopped server would.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
            })
            .context("starting the webhook receiver's thread")?;
        Ok(Receiver {
            url,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// A receiver answering 200 to everything.
    pub async fn accepting() -> Receiver {
        Receiver::start(|_| Reply::Status(200)).await
    }

    /// The URL for one named sender (`<url>/<name>`), whose requests are
    /// recorded with that path and can be answered apart ([`Receiver::set_for`]).
    pub fn url_for(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// The path requests to [`Receiver::url_for`]`(name)` arrive on.
    pub fn path_for(name: &str) -> String {
        format!("{BASE_PATH}/{name}")
    }

    /// From now on, answers every request with `reply`.
    pub fn set(&self, reply: Reply) {
        *self.shared.plan.lock().unwrap() = Arc::new(move |_| reply);
    }

    /// From now on, answers requests to [`Receiver::url_for`]`(name)` with
    /// `reply`, whatever the plan says.
    pub fn set_for(&self, name: &str, reply: Reply) {
        self.shared
            .by_path
            .lock()
            .unwrap()
            .insert(Receiver::path_for(name), reply);
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The requests for one message (by [`Seen::key`]).
    pub fn seen_for(&self, key: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.key == key).collect()
    }

    /// Waits until at least `count` requests arrived.
    pub async fn wait_for(&self, count: usize, within: Duration) -> anyhow::Result<Vec<Seen>> {
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Marks a request abandoned if its handler is dropped before answering,
/// which hyper does when the sender closes the connection.
struct Pending {
    seen: Arc<Mutex<Vec<Seen>>>,
    index: usize,
    answered: bool,
}

impl Pending {
    fn answer(mut self) {
        self.answered = true;
        self.seen.lock().unwrap()[self.index].answered = Some(Instant::now());
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.answered
            && let Ok(mut seen) = self.seen.lock()
        {
            seen[self.index].abandoned = Some(Instant::now());
        }
    }
}

async fn receive(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let webhook_id = header("webhook-id");
    let verified = shared.verifier.verify(&body, &headers).is_ok();
    let key = if webhook_id.is_empty() {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        webhook_id.clone()
    };
    let path = uri.path().to_owned();
    let override_reply = shared.by_path.lock().unwrap().get(&path).copied();
    let plan = shared.plan.lock().unwrap().clone();
    let (reply, pending) = {
        let mut seen = shared.seen.lock().unwrap();
        let earlier = seen.iter().filter(|s| s.key == key).count();
        let reply = override_reply.unwrap_or_else(|| plan(earlier));
        seen.push(Seen {
            path,
            webhook_id,
            key,
            headers: headers.clone(),
            body,
            verified,
            reply,
            at: Instant::now(),
            answered: None,
            abandoned: None,
        });
        let pending = Pending {
            seen: shared.seen.clone(),
            index: seen.len() - 1,
            answered: false,
        };
        (reply, pending)
    };
    let response = match reply {
        Reply::Status(code) => status(code).into_response(),
        Reply::RetryAfter(code, seconds) => {
            (status(code), [("retry-after", seconds.to_string())]).into_response()
        }
        Reply::Hang => std::future::pending::<Response>().await,
        Reply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::OK.into_response()
        }
    };
    pending.answer();
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
