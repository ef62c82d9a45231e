//! `broadcaster sink`: a webhook receiver for local use and tests.
//!
//! It listens on 127.0.0.1 only, verifies Standard Webhooks signatures with
//! its own implementation ([`verify`]), prints one readable line per
//! message, and answers `GET /messages` with everything it received, in
//! order, as JSON. It answers 204 to a message whose signature verifies
//! and 401 otherwise, like a real receiver would, so a wrong secret shows
//! up in the broadcaster as a dead-lettered event rather than passing
//! silently. Bodies of the chat formats (no signature) can be received
//! too: `--secret` is then still required but `signature_verified` is false.
//!
//! With `--accept discord` it stands in for a Discord channel's webhook
//! instead: it answers 204, as Discord does, to a JSON body whose `content`
//! Discord would post (1 to 2,000 characters), and 400 to anything else, so
//! a production-like broadcaster (`WEBHOOK_FORMAT=discord`) delivers to it
//! as it would to the chat.
//!
//! ```text
//! broadcaster sink --port 9000 --secret whsec_...
//! broadcaster sink --port 9000 --secret whsec_... --accept discord
//! ```

mod printer;
mod verify;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;

pub use verify::Verifier;

use printer::Printer;

/// Messages kept for `GET /messages`; the oldest are dropped beyond this.
const KEEP: usize = 100_000;

/// `broadcaster sink` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// Port to listen on, on 127.0.0.1 (0 picks a free one and prints it).
    #[arg(long, env = "SINK_PORT", default_value_t = 9000)]
    pub port: u16,
    /// The Standard Webhooks secret, `whsec_<base64>`.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// What it accepts: signed Standard Webhooks, or Discord's message shape.
    #[arg(long, env = "SINK_ACCEPT", value_enum, default_value_t = Accept::StandardWebhooks)]
    pub accept: Accept,
}

/// The receiver the sink stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accept {
    /// A Standard Webhooks receiver: 204 when the signature verifies, else 401.
    StandardWebhooks,
    /// A Discord channel's webhook: 204 for a postable `content`, else 400.
    Discord,
}

/// Discord refuses message content longer than this.
const DISCORD_MAX_CHARS: usize = 2000;

/// One message as received.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub received_at: String,
    pub path: String,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub signature_verified: bool,
    /// Why the signature did not verify, if it did not.
    pub signature_error: Option<String>,
    /// The status the sink answered.
    pub status: u16,
    /// Why it refused the message, if it did.
    pub refused: Option<String>,
    /// The body, parsed if it is JSON, else as text.
    pub body: serde_json::Value,
}

#[derive(Clone)]
struct Sink {
    verifier: Verifier,
    accept: Accept,
    /// One readable line per message, off the request path.
    printer: Printer,
    /// A ring: dropping the oldest must not move the rest (a `Vec`'s
    /// `remove(0)` did, and held the sink to a few hundred messages per
    /// second once full).
    received: Arc<Mutex<VecDeque<Received>>>,
}

/// Runs the sink until Ctrl-C or SIGTERM.
pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let verifier = Verifier::new(&args.secret)
        .map_err(anyhow::Error::msg)
        .context("--secret / WEBHOOK_SECRET")?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let port = listener.local_addr()?.port();
    println!("sink listening on http://127.0.0.1:{port}/ (GET /messages lists what arrived)");
    let sink = Sink {
        verifier,
        accept: args.accept,
        printer: Printer::start(),
        received: Arc::default(),
    };
    axum::serve(listener, router(sink))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the sink")
}

fn router(sink: Sink) -> Router {
    Router::new()
        .route("/messages", get(messages))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(receive)
        .with_state(sink)
}

async fn messages(State(sink): State<Sink>) -> Json<Vec<Received>> {
    Json(sink.received.lock().unwrap().iter().cloned().collect())
}

async fn receive(
    State(sink): State<Sink>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let id = header("webhook-id");
    let timestamp = header("webhook-timestamp");
    let verdict = match (&id, &timestamp, header("webhook-signature")) {
        (Some(id), Some(timestamp), Some(signature)) => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            sink.verifier.verify(id, timestamp, &signature, &body, now)
        }
        _ => Err("no webhook-id/-timestamp/-signature headers"),
    };
    let now = OffsetDateTime::now_utc();
    let parsed = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    let (status, refused) = match sink.accept {
        Accept::StandardWebhooks => match verdict {
            Ok(()) => (StatusCode::NO_CONTENT, None),
            Err(reason) => (StatusCode::UNAUTHORIZED, Some(reason.to_owned())),
        },
        Accept::Discord => match discord_refusal(&parsed) {
            None => (StatusCode::NO_CONTENT, None),
            Some(reason) => (StatusCode::BAD_REQUEST, Some(reason)),
        },
    };
    let received = Received {
        received_at: now.format(&Rfc3339).unwrap_or_default(),
        path: uri.path().to_owned(),
        webhook_id: id,
        webhook_timestamp: timestamp,
        signature_verified: verdict.is_ok(),
        signature_error: verdict.err().map(str::to_owned),
        status: status.as_u16(),
        refused,
        body: parsed,
    };
    sink.printer.print(line(&received, sink.accept, now));
    let mut all = sink.received.lock().unwrap();
    if all.len() >= KEEP {
        all.pop_front();
    }
    all.push_back(received);
    status
}

/// Why Discord would refuse `body` as a webhook message, if it would.
fn discord_refusal(body: &serde_json::Value) -> Option<String> {
    match body.get("content").and_then(|c| c.as_str()) {
        None => Some("not a JSON object with a string `content`".to_owned()),
        Some("") => Some("`content` is empty".to_owned()),
        Some(content) if content.chars().count() > DISCORD_MAX_CHARS => Some(format!(
            "`content` is longer than {DISCORD_MAX_CHARS} characters"
        )),
        Some(_) => None,
    }
}

/// `10:00:01  ✔ signed   Todo created: Buy milk  (todo.created 0192…)`
fn line(received: &Received, accept: Accept, now: OffsetDateTime) -> String {
    let body = &received.body;
    let text = ["message", "content", "text"]
        .iter()
        .find_map(|key| body.get(key).and_then(|v| v.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    let kind = body
        .pointer("/event/type")
        .and_then(|v| v.as_str())
        .unwrap_or("-");
    let verdict = match (accept, &received.refused) {
        (Accept::StandardWebhooks, None) => "✔ signed  ".to_owned(),
        (Accept::StandardWebhooks, Some(reason)) => format!("✘ UNVERIFIED ({reason})"),
        (Accept::Discord, None) => "✔ discord ".to_owned(),
        (Accept::Discord, Some(reason)) => format!("✘ REFUSED ({reason})"),
    };
    let id = received.webhook_id.as_deref().unwrap_or("-");
    format!(
        "{:02}:{:02}:{:02}  {verdict}  {text}  ({kind} {id})",
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use secrecy::SecretString;
    use tower::ServiceExt;

    use super::*;
    use crate::delivery::{Format, SigningSecret};

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn sink() -> Sink {
        sink_accepting(Accept::StandardWebhooks)
    }

    fn sink_accepting(accept: Accept) -> Sink {
        Sink {
            verifier: Verifier::new(SECRET).unwrap(),
            accept,
            printer: Printer::start(),
            received: Arc::default(),
        }
    }

    async fn post(sink: &Sink, body: Vec<u8>, headers: &[(&'static str, String)]) -> StatusCode {
        let mut request = Request::post("/hook");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = router(sink.clone())
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        response.status()
    }

    /// The round trip: signed by the broadcaster's signer, checked by the sink's own verifier.
    #[tokio::test]
    async fn accepts_what_the_broadcaster_signs_and_refuses_tampering() {
        let secret = SigningSecret::parse(SecretString::from(SECRET)).unwrap();
        let event = crate::delivery::tests::event(events::EventType::Created, "Buy milk", false);
        let out = Format::Generic(secret).render(&event, OffsetDateTime::now_utc());

        let sink = sink();
        assert_eq!(
            post(&sink, out.body.clone(), &out.headers).await,
            StatusCode::NO_CONTENT
        );
        let mut tampered = out.body.clone();
        tampered[20] ^= 1;
        assert_eq!(
            post(&sink, tampered, &out.headers).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            post(&sink, b"{}".to_vec(), &[]).await,
            StatusCode::UNAUTHORIZED
        );

        let received = sink.received.lock().unwrap().clone();
        assert_eq!(received.len(), 3);
        assert!(received[0].signature_verified);
        assert_eq!(
            received[0].webhook_id.as_deref(),
            Some(event.id.to_string().as_str())
        );
        assert_eq!(received[0].body["message"], "Todo created: Buy milk");
        assert!(!received[1].signature_verified);
        assert!(!received[2].signature_verified);
    }

    /// What the broadcaster sends in Discord's format is accepted as Discord
    /// would; what Discord would refuse is answered 400.
    #[tokio::test]
    async fn as_discord_it_accepts_postable_content_only() {
        let event = crate::delivery::tests::event(events::EventType::Created, "Buy milk", false);
        let out = Format::Discord.render(&event, OffsetDateTime::now_utc());

        let sink = sink_accepting(Accept::Discord);
        assert_eq!(
            post(&sink, out.body, &out.headers).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            post(&sink, br#"{"message": "x"}"#.to_vec(), &[]).await,
            StatusCode::BAD_REQUEST
        );
        let too_long = serde_json::json!({"content": "x".repeat(2001)}).to_string();
        assert_eq!(
            post(&sink, too_long.into_bytes(), &[]).await,
            StatusCode::BAD_REQUEST
        );

        let received = sink.received.lock().unwrap().clone();
        assert_eq!(received[0].body["content"], "Todo created: Buy milk");
        assert_eq!(
            (received[0].status, received[0].refused.as_deref()),
            (204, None)
        );
        assert_eq!(received[1].status, 400);
        assert!(received[2].refused.as_deref().unwrap().contains("2000"));
    }

    #[test]
    fn prints_one_readable_line() {
        let received = Received {
            received_at: String::new(),
            path: "/".into(),
            webhook_id: Some("0192".into()),
            webhook_timestamp: Some("1".into()),
            signature_verified: true,
            signature_error: None,
            status: 204,
            refused: None,
            body: serde_json::json!({"message": "Todo created: Buy milk", "event": {"type": "todo.created"}}),
        };
        let now = time::macros::datetime!(2026-11-22 10:00:01 UTC);
        assert_eq!(
            line(&received, Accept::StandardWebhooks, now),
            "10:00:01  ✔ signed    Todo created: Buy milk  (todo.created 0192)"
        );
    }
}
