//! The app's JSON API, as far as the jobs use it: creating a todo.
//!
//! Plain HTTP like any other client (a service never links another
//! service's code); the contract is the app's `/api/openapi.json`.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::{Error, Result, is_retryable_status};

/// A todo as the API returned it.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedTodo {
    pub id: Uuid,
    pub text: String,
}

#[derive(Clone)]
pub struct TodoApi {
    http: reqwest::Client,
    endpoint: Url,
    token: SecretString,
    /// The client's per-request timeout, for the message when it strikes.
    timeout: Duration,
}

impl TodoApi {
    /// `base` is the app's URL (`TODO_API_URL`), with or without a path
    /// prefix; `http` is a client built with `timeout`.
    pub fn new(http: reqwest::Client, base: &Url, token: SecretString, timeout: Duration) -> Self {
        let mut endpoint = base.clone();
        let path = format!("{}/api/todos", base.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        Self {
            http,
            endpoint,
            token,
            timeout,
        }
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// One attempt at `POST /api/todos`.
    pub async fn create(&self, text: &str) -> Result<CreatedTodo> {
        let url = self.endpoint.to_string();
        let response = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(self.token.expose_secret())
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    // The app may have stored the todo before the answer was lost.
                    Error::ApiTimeout {
                        url: url.clone(),
                        after: self.timeout,
                    }
                } else {
                    Error::Unreachable {
                        what: format!("the todo API at {url}"),
                        reason: reason(&e),
                    }
                }
            })?;
        let status = response.status();
        match status {
            StatusCode::CREATED => {
                response
                    .json::<CreatedTodo>()
                    .await
                    .map_err(|e| Error::BadApiResponse {
                        url,
                        reason: reason(&e),
                    })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Unauthorized {
                url,
                status: status.as_u16(),
            }),
            _ => {
                let message = error_message(response).await;
                let status = status.as_u16();
                if !is_retryable_status(status) {
                    tracing::debug!(status, "the todo API refused the todo");
                }
                Err(Error::ApiRefused {
                    url,
                    status,
                    message,
                })
            }
        }
    }
}

/// The API's `{"error": "..."}`, or the start of whatever else came back.
async fn error_message(response: reqwest::Response) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let body = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&body) {
        Ok(parsed) => parsed.error,
        Err(_) => one_line(&body, 200),
    }
}

/// A reqwest error's causes, on one line. The outermost message is left
/// out when there are causes: it only repeats the URL the caller names.
pub fn reason(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let reason = if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    };
    one_line(&reason, 300)
}

/// Collapses whitespace and caps the length, so a reason stays one line.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max_chars {
        joined
    } else {
        let cut: String = joined.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_under_the_base_url() {
        let api = |base: &str| {
            TodoApi::new(
                reqwest::Client::new(),
                &Url::parse(base).unwrap(),
                SecretString::from("t"),
                Duration::from_secs(1),
            )
            .endpoint()
            .to_string()
        };
        assert_eq!(
            api("http://todo-app:8080"),
            "http://todo-app:8080/api/todos"
        );
        assert_eq!(
            api("http://todo-app:8080/"),
            "http://todo-app:8080/api/todos"
        );
        assert_eq!(api("http://gw/docket/"), "http://gw/docket/api/todos");
    }

    #[test]
    fn long_or_multi_line_text_becomes_one_short_line() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
