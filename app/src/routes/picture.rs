//! `GET /picture`: the hourly picture, from this replica's memory.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::conditional;
use crate::state::AppState;
use crate::views::todos::PICTURE_PATH;

/// A browser may show its copy for five minutes, then asks again with its
/// tag (a 304 when the picture is unchanged): an hourly picture is at most
/// five minutes late, and a page load costs no image request most times.
const CACHE_CONTROL: &str = "public, max-age=300";

pub fn router() -> Router<AppState> {
    Router::new().route(PICTURE_PATH, get(picture))
}

/// 404 with no body until a picture has been stored (or with no
/// `PICTURE_SOURCE_URL`); the page's box keeps its size either way.
async fn picture(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(served) = state.picture.as_ref().and_then(|current| current.get()) else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")]).into_response();
    };
    let cache = [
        (header::ETAG, served.etag.clone()),
        (
            header::CACHE_CONTROL,
            CACHE_CONTROL.parse().expect("a header value"),
        ),
    ];
    if conditional::not_modified(&headers, &served.etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(header::CONTENT_TYPE, served.picture.kind().content_type())],
        served.picture.bytes().clone(),
    )
        .into_response()
}
