//! Middleware: the per-writer write limit ([`crate::rate_limit`]) in front
//! of every unsafe request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::rate_limit::{WriteLimiter, Writer};
use crate::routes::extract::PageError;

/// Middleware: limits unsafe methods per writer (the API's per client);
/// answers the API in JSON and pages in HTML.
pub async fn limit_writes(
    State(limiter): State<Arc<WriteLimiter>>,
    mut request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let api = request.uri().path().starts_with("/api/");
    // The API authenticates with tokens, not sessions: a session cookie
    // sent along must not move its writes off the address's allowance.
    let writer = if api {
        Writer::Client(limiter.client_of(&request))
    } else {
        limiter.writer_of(&mut request)
    };
    match limiter.check(writer) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            let error = AppError::TooManyRequests { retry_after };
            if api {
                error.into_response()
            } else {
                PageError(error).into_response()
            }
        }
    }
}
