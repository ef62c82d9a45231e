//! Embedded static files with year-long caching (their names change with their content).

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::extract::PageError;
use crate::error::AppError;
use crate::state::AppState;
use crate::views::assets;

pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(asset))
}

async fn asset(request: Request) -> Result<Response, PageError> {
    let asset = assets::find(request.uri().path()).ok_or(AppError::PageNotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.body,
    )
        .into_response())
}
