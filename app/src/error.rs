//! The app's one error type, and the single place it becomes an HTTP status.
//!
//! Handlers return `Result<_, AppError>`. JSON routes render it as
//! `{"error": "..."}` (the `IntoResponse` impl here); page routes render the
//! same status and message as HTML (`views::error_page`). Internal causes are
//! logged once, here, and never shown to the client.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::SignInError;
use crate::domain::{
    Access, CursorError, IdempotencyKeyError, LimitError, ShownError, TodoTextError,
};
use crate::open_streams::Full;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    InvalidText(#[from] TodoTextError),
    #[error(transparent)]
    InvalidLimit(#[from] LimitError),
    #[error(transparent)]
    InvalidCursor(#[from] CursorError),
    #[error(transparent)]
    InvalidShown(#[from] ShownError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error(transparent)]
    InvalidIdempotencyKey(#[from] IdempotencyKeyError),
    #[error(
        "This Idempotency-Key was already used with a different request; send a new key with a new request."
    )]
    IdempotencyKeyReused,
    #[error("No todo with that id exists; it may have been deleted.")]
    TodoNotFound,
    #[error("Page not found.")]
    PageNotFound,
    #[error("This request needs `Authorization: Bearer <token>` with a valid API token.")]
    Unauthorized,
    #[error("{}", match .0 {
        Access::Write => "JSON API writes are disabled: the server has no API_TOKEN or API_TOKENS_FILE configured.",
        Access::Read => "JSON API reads are disabled: the server has no API_TOKEN or API_TOKENS_FILE configured.",
    })]
    NoApiTokens(Access),
    #[error("This token may only read; writes need a token with `write` access.")]
    ReadOnlyToken,
    #[error("The request body is larger than 16 KiB.")]
    PayloadTooLarge,
    #[error("Cross-site form submissions are not accepted.")]
    CrossSiteRequest,
    #[error("Too many changes from you; try again in {} s.", retry_after_secs(*.retry_after))]
    TooManyRequests { retry_after: Duration },
    #[error("{}", match .0 {
        Full::Replica => "This server has as many live-update streams open as it keeps; try again shortly.",
        Full::Client => "Your address has as many live-update streams open as one client may.",
    })]
    TooManyStreams(Full),
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error("Sign in to see the todos.")]
    SignInRequired,
    #[error(
        "This form is out of date or did not come from Docket's page; reload the page and try again."
    )]
    CsrfToken,
    #[error("The database is unavailable; please try again shortly.")]
    DatabaseUnavailable(#[source] sqlx::Error),
    #[error("Something went wrong on our side; please try again.")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // Connection-level failures are temporary; everything else is a bug.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => AppError::DatabaseUnavailable(e),
            sqlx::Error::Database(ref db) if is_unavailable_code(db.code().as_deref()) => {
                AppError::DatabaseUnavailable(e)
            }
            other => AppError::Internal(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

/// SQLSTATE classes 08 (connection exception) and 57 (operator intervention:
/// shutdown, admin restart) mean "try again", not "bug".
fn is_unavailable_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("08") || c.starts_with("57"))
}

impl AppError {
    /// The one mapping from error to status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidText(_)
            | AppError::Unprocessable(_)
            | AppError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::InvalidLimit(_)
            | AppError::InvalidCursor(_)
            | AppError::InvalidShown(_)
            | AppError::InvalidIdempotencyKey(_)
            | AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TodoNotFound | AppError::PageNotFound => StatusCode::NOT_FOUND,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::CrossSiteRequest | AppError::ReadOnlyToken | AppError::CsrfToken => {
                StatusCode::FORBIDDEN
            }
            AppError::SignInRequired => StatusCode::UNAUTHORIZED,
            AppError::SignIn(SignInError::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::SignIn(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::NoApiTokens(_)
            | AppError::DatabaseUnavailable(_)
            | AppError::TooManyStreams(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told: never the internal cause.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    /// Headers that belong with the status, whatever the body's format.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        match self {
            AppError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AppError::TooManyRequests { retry_after } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(*retry_after)),
                );
            }
            // A full replica frees places as streams end or reach their
            // lifetime; a client's own streams only as it closes them.
            AppError::TooManyStreams(full) => {
                let seconds: u64 = match full {
                    Full::Replica => 5,
                    Full::Client => 30,
                };
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
    }

    /// Logs server-side failures once, with their cause chain.
    pub fn log(&self) {
        match self {
            AppError::Internal(e) => tracing::error!(error = format!("{e:#}"), "request failed"),
            AppError::DatabaseUnavailable(e) => {
                tracing::warn!(error = %e, "database unavailable")
            }
            AppError::SignIn(SignInError::Unverified(e)) => {
                tracing::warn!(error = format!("{e:#}"), "refused a sign-in")
            }
            AppError::SignIn(e) => tracing::info!(error = %e, "a sign-in did not finish"),
            AppError::CsrfToken => tracing::warn!("refused a form without its CSRF token"),
            AppError::InvalidText(e) => {
                tracing::warn!(todo.text.chars = e.rejected_chars(), "rejected todo text")
            }
            _ => {}
        }
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words meant for the caller.
    pub error: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.public_message(),
            }),
        )
            .into_response();
        self.add_headers(response.headers_mut());
        response
    }
}

/// `Retry-After` counts whole seconds; round up so a client that waits as
/// told is let through.
fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable_not_internal() {
        let err = AppError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = AppError::Internal(anyhow::anyhow!("password=hunter2 relation missing"));
        assert!(!err.public_message().contains("hunter2"));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
