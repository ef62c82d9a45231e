//! The one error type of the broadcaster.
//!
//! Two families live here: failures that stop start-up (configuration, NATS
//! set-up, binding the port) and failures of one webhook attempt. The second
//! family is classified by [`crate::retry`] into "try again later" and "give
//! up now", so each variant keeps exactly what that decision needs (the
//! status code, the `Retry-After` delay) and nothing that could leak a secret:
//! reqwest errors are stored with the URL stripped, because Discord, Slack
//! and Telegram URLs carry their token in the path.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything that can go wrong in the broadcaster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable is missing or holds a value we cannot use.
    #[error(transparent)]
    Config(#[from] service_kit::EnvError),

    /// A stream could not be made to match this build's settings.
    #[error(transparent)]
    Stream(#[from] service_kit::jetstream::StreamError),

    /// A NATS or JetStream operation failed.
    #[error("NATS: {context}")]
    Nats {
        context: String,
        #[source]
        source: async_nats::Error,
    },

    /// The health and metrics port could not be opened.
    #[error("cannot listen on {address}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The payload on the stream is not a todo event this build can read.
    #[error("undecodable event")]
    Decode(#[from] events::DecodeError),

    /// The webhook did not answer within the per-attempt timeout.
    #[error("the webhook did not answer within {0:?}")]
    Timeout(Duration),

    /// The webhook could not be reached (DNS, refused, reset, TLS).
    #[error("cannot reach the webhook")]
    Connect(#[source] reqwest::Error),

    /// Sending the request failed in another way (a broken body, a protocol error).
    #[error("the webhook request failed")]
    Request(#[source] reqwest::Error),

    /// The webhook answered, but not with a 2xx.
    #[error("the webhook answered {status}")]
    Status {
        status: u16,
        /// The `Retry-After` the target asked for, if any.
        retry_after: Option<Duration>,
    },
}

impl Error {
    /// Wraps an async-nats error with what we were doing.
    pub fn nats(context: impl Into<String>) -> impl FnOnce(async_nats::Error) -> Error {
        let context = context.into();
        move |source| Error::Nats { context, source }
    }

    /// Classifies a reqwest error without keeping the URL it may carry.
    pub fn from_reqwest(error: reqwest::Error, timeout: Duration) -> Error {
        if error.is_timeout() {
            Error::Timeout(timeout)
        } else if error.is_connect() {
            Error::Connect(error.without_url())
        } else {
            Error::Request(error.without_url())
        }
    }

    /// The `reason` label of `broadcaster_webhook_errors_total`.
    pub fn reason(&self) -> String {
        match self {
            Error::Timeout(_) => "timeout".into(),
            Error::Connect(_) => "connect".into(),
            Error::Request(_) => "request".into(),
            Error::Status { status, .. } => format!("http_{status}"),
            Error::Decode(_) => "undecodable".into(),
            Error::Config(_) | Error::Nats { .. } | Error::Stream(_) | Error::Listen { .. } => {
                "internal".into()
            }
        }
    }

    /// The error and its causes on one line, for logs and the dead-letter header.
    pub fn chain(&self) -> String {
        service_kit::backoff::chain(self)
    }
}

/// The broadcaster's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
