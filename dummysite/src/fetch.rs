//! Fetching the page: bounded in time and size, HTML only.

use std::time::Duration;

use service_kit::body::{BodyError, read_limited};

use crate::WebsiteUrl;

/// A page as fetched: its bytes and the content type it was served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub body: Vec<u8>,
    pub content_type: String,
}

/// Why a page could not be copied. Each maps to the `reason` of the
/// `FetchFailed` condition, so `kubectl get dummysite` says which it was.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the site: {0}")]
    Unreachable(String),
    #[error("the site answered {0}")]
    HttpStatus(reqwest::StatusCode),
    #[error("the site answered {0:?}, not an HTML page")]
    NotHtml(String),
    #[error("the page is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl FetchError {
    /// The condition reason: one CamelCase word, as Kubernetes expects.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "Timeout",
            FetchError::Unreachable(_) => "Unreachable",
            FetchError::HttpStatus(_) => "HttpStatus",
            FetchError::NotHtml(_) => "NotHtml",
            FetchError::TooLarge { .. } => "TooLarge",
        }
    }
}

/// Fetches pages with one HTTP client (its connection pool is shared by
/// every reconcile).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_bytes: usize,
}

impl Fetcher {
    /// `timeout` bounds the whole fetch, body included; `max_bytes` the
    /// body (a ConfigMap holds at most 1 MiB in all).
    pub fn new(timeout: Duration, max_bytes: usize) -> Fetcher {
        let client = reqwest::Client::builder()
            .user_agent(concat!("docket-dummysite/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .expect("the TLS backend is compiled in");
        Fetcher {
            client,
            timeout,
            max_bytes,
        }
    }

    pub async fn fetch(&self, url: &WebsiteUrl) -> Result<Page, FetchError> {
        let response = self
            .client
            .get(url.as_url().clone())
            .header(reqwest::header::ACCEPT, "text/html, application/xhtml+xml")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        if !response.status().is_success() {
            return Err(FetchError::HttpStatus(response.status()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !is_html(&content_type) {
            return Err(FetchError::NotHtml(content_type));
        }
        let body = read_limited(response, self.max_bytes)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge { limit } => FetchError::TooLarge { limit },
                BodyError::Read(e) => self.transport(e),
            })?;
        Ok(Page {
            body: Vec::from(body),
            content_type,
        })
    }

    fn transport(&self, error: reqwest::Error) -> FetchError {
        if error.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else {
            FetchError::Unreachable(service_kit::backoff::chain(&error))
        }
    }
}

fn is_html(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(essence.as_str(), "text/html" | "application/xhtml+xml")
}

#[cfg(test)]
mod tests {
    use super::is_html;

    #[test]
    fn html_is_recognised_with_or_without_parameters() {
        assert!(is_html("text/html"));
        assert!(is_html("Text/HTML; charset=utf-8"));
        assert!(is_html("application/xhtml+xml"));
        assert!(!is_html("application/json"));
        assert!(!is_html("image/png"));
        assert!(!is_html(""));
    }
}
