//! What the fuzz targets share: the real app router, in-process, in front of
//! a database that fails at once.
//!
//! The HTTP targets drive `app::routes::router` with `tower::ServiceExt::oneshot`,
//! so bodies and query strings go through the app's own extractors
//! (`PageForm`, `ApiJson`, `ApiQuery`) and its own rejection messages, with
//! no socket and no PostgreSQL. Input the app accepts reaches the database
//! and comes back as a 503; input it refuses must come back as a 4xx that
//! says why. Anything else (a 500, another 5xx, a panic) is a finding.

use std::sync::OnceLock;

use app::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::SecretString;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// The API token the router is configured with.
pub const API_TOKEN: &str = "fuzz-api-token";

/// A todo id that is a well-formed UUID (and names no todo).
pub const SOME_ID: &str = "0192f0c4-0000-7000-8000-000000000001";

struct Harness {
    runtime: Runtime,
    router: Router,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        // A Unix socket that does not exist: every connection attempt fails
        // at once with "not found", which the app maps to 503. (A refused TCP
        // connection would be retried until the acquire timeout, making each
        // accepted input cost a second.)
        let options = PgConnectOptions::new()
            .socket("/nonexistent/docket-fuzz")
            .username("fuzz")
            .database("fuzz");
        let router = runtime.block_on(async {
            let pool = PgPoolOptions::new()
                .acquire_timeout(std::time::Duration::from_secs(1))
                .connect_lazy_with(options);
            let state = AppState::new(pool, Some(SecretString::from(API_TOKEN)));
            app::routes::router(state)
        });
        Harness { runtime, router }
    })
}

/// What the app answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

/// Sends one request through the app's router.
pub fn send(request: Request<Body>) -> Answer {
    let harness = harness();
    harness.runtime.block_on(async {
        let response = harness
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("an in-memory body reads")
            .to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    })
}

/// The properties every answer to outside input must have: no 5xx but the
/// database's 503 (the input was accepted and reached the store), and a
/// refusal that says why.
pub fn check(answer: &Answer, what: &str) {
    assert!(
        !answer.status.is_server_error() || answer.status == StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {} {}",
        answer.status,
        answer.body
    );
    if answer.status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            answer.body.contains("database is unavailable"),
            "{what}: a 503 that is not the database's: {}",
            answer.body
        );
    }
    if answer.status.is_client_error() {
        assert!(
            !answer.body.trim().is_empty(),
            "{what}: a {} without a message",
            answer.status
        );
    }
}

/// The id segment of a todo's URL: [`SOME_ID`] for `None`, otherwise the
/// fuzzer's bytes, percent-encoded so that any of them make a valid path.
pub fn todo_id(raw: Option<&[u8]>) -> String {
    raw.map_or_else(|| SOME_ID.to_owned(), |raw| percent_encode(raw, b""))
}

/// Percent-encodes everything but RFC 3986's unreserved characters and the
/// ones listed in `keep`, so any fuzzer string becomes a valid URI part.
pub fn percent_encode(raw: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &byte in raw {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
