//! The HTTP surface: one module per resource, merged here with the layers
//! every request goes through.

mod api;
mod assets;
mod auth;
mod conditional;
mod extract;
mod health;
mod live;
mod middleware;
mod pages;
mod picture;
mod signed_in;

use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::AppError;
use crate::faults;
use crate::state::AppState;
use middleware::{metrics, rate_limit, security};

pub use api::openapi;
pub use extract::PageError;
pub use signed_in::{SignedIn, Visitor};

/// Request bodies larger than this answer 413.
pub const BODY_LIMIT: usize = 16 * 1024;
/// No request may take longer than this; below the shutdown drain limit, so
/// draining always finishes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything on one port (no `ADMIN_PORT`): the app and its operational
/// routes, as local runs and tests use it.
pub fn router(state: AppState) -> Router {
    let operational = operational(&state);
    app(state, operational)
}

/// The public port when `ADMIN_PORT` is set: the app, and `/version`, which
/// deploy checks and the E2E suite read through the public URL.
pub fn public_router(state: AppState) -> Router {
    app(state, health::version_router())
}

/// The admin port (`ADMIN_PORT`): probes, the scrape and `/version`, for the
/// cluster only; nothing a browser reaches, so none of the app's layers.
pub fn admin_router(state: AppState) -> Router {
    operational(&state).with_state(state)
}

/// `/healthz`, `/readyz`, `/metrics` and `/version`. Never counted in the
/// request metrics, on either port: probes and scrapes come on their own
/// clock, fast and never failing, and counted they would dilute the error
/// ratio and the latency the canary analysis judges (and pass a canary that
/// real users never reached).
fn operational(state: &AppState) -> Router<AppState> {
    service_kit::ops::probes(state.clone())
        .merge(service_kit::ops::metrics(state.clone()))
        .merge(health::version_router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// The app's routes and every layer they go through, with `operational`
/// mounted outside the metrics layer (and the faults and rate limit inside
/// it), so it is served but never measured.
fn app(state: AppState, operational: Router<AppState>) -> Router {
    let (api, _) = api::router().split_for_parts();
    Router::new()
        .merge(pages::router(&state))
        .merge(auth::router(&state))
        .merge(api)
        .route("/api/openapi.json", get(api::openapi_json))
        .merge(assets::router())
        .merge(picture::router())
        .merge(live::router())
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Added after the timeout: an event stream stays open for as long
        // as the page does, and ends at shutdown instead (see `live`). The
        // timeout bounds only the wait for response headers today, but a
        // stream must stay outside it whatever it comes to bound.
        .merge(live::streaming_router())
        // Before any body is read: a refused write costs nothing.
        .layer(tower::util::option_layer(state.write_limiter.clone().map(
            |limiter| axum::middleware::from_fn_with_state(limiter, rate_limit::limit_writes),
        )))
        // Test-only faults (a no-op unless started with `--test-faults`),
        // inside the metrics layer so injected errors and delays are measured.
        .layer(axum::middleware::from_fn_with_state(
            state.faults.clone(),
            faults::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        // After the metrics layer: see `operational`.
        .merge(operational)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|request: &Request| {
                            let route = request
                                .extensions()
                                .get::<MatchedPath>()
                                .map_or("unmatched", MatchedPath::as_str);
                            let request_id = request
                                .headers()
                                .get(&REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            tracing::info_span!(
                                "http.request",
                                http.method = %request.method(),
                                http.route = route,
                                request_id,
                            )
                        })
                        // A line per response costs more CPU than rendering a
                        // page (measured with `cargo xtask bench`); traffic is in
                        // /metrics, and `RUST_LOG=tower_http=debug` brings the
                        // lines back. The span stays, so warnings and errors
                        // carry the request id.
                        .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(security::headers())
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT)),
        )
        .with_state(state)
}

async fn not_found() -> PageError {
    PageError::from(AppError::PageNotFound)
}
