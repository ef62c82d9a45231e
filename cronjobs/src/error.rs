//! The crate's one error type.
//!
//! Each message is a complete one-line reason, printed as is when a command
//! fails and sent back to NATS requesters by `listen`. [`Error::is_transient`]
//! decides what `retry` tries again.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A variable is missing or unusable (see `config`).
    #[error(transparent)]
    Env(#[from] service_kit::EnvError),

    #[error(
        "{url} answered {status} instead of redirecting to an article (expected a 3xx with a Location header)"
    )]
    NoRedirect { url: String, status: u16 },
    #[error("{url} redirected ({status}) without a usable Location header")]
    NoLocation { url: String, status: u16 },
    #[error("the redirect target `{location}` is not a valid URL: {reason}")]
    BadLocation { location: String, reason: String },
    #[error(
        "the article URL has {chars} characters, more than the {max} that fit in a todo after \"Read \"; not creating a todo with a cut-off link: {url}"
    )]
    ArticleUrlTooLong {
        url: String,
        chars: usize,
        /// The most that fit (`wikipedia::MAX_URL_CHARS`).
        max: usize,
    },
    #[error("{url} answered {status}")]
    UpstreamStatus { url: String, status: u16 },

    #[error("the todo API at {url} refused the token ({status}); check API_TOKEN")]
    Unauthorized { url: String, status: u16 },
    #[error("the todo API at {url} answered {status}: {message}")]
    ApiRefused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the todo API at {url} answered 201 with an unexpected body: {reason}")]
    BadApiResponse { url: String, reason: String },
    #[error(
        "the todo API at {url} did not answer within {after:?}; the todo may have been created, so it is not retried (a retry could add it twice)"
    )]
    ApiTimeout { url: String, after: Duration },

    #[error("{what} did not answer within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("cannot reach {what}: {reason}")]
    Unreachable { what: String, reason: String },

    #[error(
        "{tool} not found in PG_BIN_DIR, /usr/lib/postgresql/<version>/bin or PATH; install the PostgreSQL client"
    )]
    ToolNotFound { tool: &'static str },
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    // The cause is part of the message, not a `source`: the one-line
    // reason (`{:#}`) would print it twice otherwise.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Worth trying again after a pause: the network, a timeout on a request
    /// that is safe to repeat, or a server saying "not now".
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Unreachable { .. } => true,
            // A GET for a random article is safe to repeat after any 5xx.
            Error::UpstreamStatus { status, .. } => *status == 429 || *status >= 500,
            Error::ApiRefused { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |error| Error::Io { path, error }
    }
}

/// 429 and the gateway errors say "try later" and promise nothing was done.
/// A plain 500 is left alone: it is more likely a bug than a blip.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_network_trouble_and_try_later_answers_are_transient() {
        let refused = |status| Error::ApiRefused {
            url: "u".into(),
            status,
            message: "m".into(),
        };
        assert!(refused(503).is_transient());
        assert!(refused(429).is_transient());
        assert!(!refused(500).is_transient());
        assert!(!refused(422).is_transient());
        assert!(
            !Error::Unauthorized {
                url: "u".into(),
                status: 401
            }
            .is_transient()
        );
        assert!(
            !Error::NoRedirect {
                url: "u".into(),
                status: 200
            }
            .is_transient()
        );
        assert!(
            !Error::ApiTimeout {
                url: "u".into(),
                after: Duration::from_secs(1)
            }
            .is_transient()
        );
    }

    #[test]
    fn messages_are_one_line() {
        let e = Error::ArticleUrlTooLong {
            url: "https://x".into(),
            chars: 200,
            max: 135,
        };
        assert!(!e.to_string().contains('\n'));
    }
}
