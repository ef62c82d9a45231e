//! Live updates for open pages: the event stream and the fragment it makes
//! the page re-fetch.
//!
//! The page never patches itself from event data. An event only says "the
//! lists changed", and the page re-fetches the lists section whole
//! (`GET /fragments/todo-lists`), so a todo the page just added is never
//! shown twice and the counts are always the database's.
//!
//! `/events` is mounted outside the request timeout (a stream is meant to
//! stay open) and ends when the app shuts down, so draining never waits on a
//! browser. Streams are capped per replica and per client, and live at most
//! `LIVE_MAX_LIFETIME` ([`crate::open_streams`]).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{StreamExt, stream};

use super::extract::{PageError, PageQuery};
use super::pages::{ShownQuery, lists_section};
use super::signed_in::Visitor;
use crate::error::AppError;
use crate::live::LiveEvent;
use crate::open_streams::Full;
use crate::state::AppState;
use crate::views::todos as view;

/// Proxies and load balancers drop connections that stay silent; a comment
/// line this often keeps the stream open (most idle limits are 60 s).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How soon a browser reconnects after the stream ended (a restart, a deploy).
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Routes that must not be cut off by the request timeout.
pub fn streaming_router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

pub fn router() -> Router<AppState> {
    Router::new().route(view::LISTS_PATH, get(lists))
}

/// `text/event-stream`: `todo` events (data: `{"type":"todo.created","id":..}`)
/// and `refresh` events (data: `refresh`).
///
/// Each stream starts with a `refresh`: whatever changed between rendering
/// the page (or the last connection) and subscribing now is picked up.
async fn events(
    State(state): State<AppState>,
    visitor: Visitor,
    request: Request,
) -> Result<Response, AppError> {
    visitor.reading()?;
    let client = state.client_ip.of(&request);
    let slot = state.open_streams.open(client).map_err(|full| {
        let cap = match full {
            Full::Replica => "replica",
            Full::Client => "client",
        };
        state
            .metrics
            .live_streams_refused
            .with_label_values(&[cap])
            .inc();
        AppError::TooManyStreams(full)
    })?;
    let changes = state.live.subscribe();
    let first = Event::default()
        .event("refresh")
        .data("refresh")
        .retry(RECONNECT_AFTER);
    // Up to a tenth shorter, so streams opened together (after a deploy)
    // do not all end, and reconnect, together.
    let lifetime = state
        .open_streams
        .limits()
        .lifetime
        .mul_f64(1.0 - rand::random::<f64>() / 10.0);
    let events = stream::once(async { first })
        .chain(changes.map(to_sse))
        .take_until(tokio::time::sleep(lifetime))
        // The slot is freed when the stream is dropped: it ended, or the
        // browser went away.
        .map(move |event| {
            let _held = &slot;
            Ok::<_, Infallible>(event)
        });
    Ok((
        // nginx and similar buffer responses unless told not to.
        [("x-accel-buffering", "no")],
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)),
    )
        .into_response())
}

fn to_sse(event: LiveEvent) -> Event {
    match event {
        LiveEvent::Todo {
            event_type,
            todo_id,
        } => Event::default()
            .event("todo")
            .data(serde_json::json!({ "type": event_type.as_str(), "id": todo_id }).to_string()),
        // Browsers ignore an event without data, so it carries its own name.
        LiveEvent::Refresh => Event::default().event("refresh").data("refresh"),
    }
}

/// The lists section alone, as the page re-fetches it after an event, as
/// long as the page shows them (`?show_open=`, `?show_done=`).
async fn lists(
    State(state): State<AppState>,
    visitor: Visitor,
    PageQuery(query): PageQuery<ShownQuery>,
) -> Result<Response, PageError> {
    let shown = query.parse()?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        lists_section(&state, None, visitor.reading()?, shown).await?,
    )
        .into_response())
}
