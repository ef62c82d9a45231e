//! A webhook receiver's `GET /messages` (`broadcaster sink`'s format): what
//! arrived, and whether its Standard Webhooks signature verified.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Url;
use serde::Deserialize;
use tokio::time::{Instant, sleep};

/// One message as the receiver recorded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub signature_verified: bool,
    pub signature_error: Option<String>,
    pub webhook_id: Option<String>,
    pub body: serde_json::Value,
}

impl Received {
    /// The human-readable line (`message` in the generic format).
    pub fn message(&self) -> Option<&str> {
        self.body.get("message").and_then(|m| m.as_str())
    }
}

/// Reads a receiver's `/messages`.
#[derive(Debug, Clone)]
pub struct Receiver {
    http: reqwest::Client,
    messages: Url,
}

impl Receiver {
    pub fn new(messages: Url) -> anyhow::Result<Receiver> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("failed to build the receiver client")?;
        Ok(Receiver { http, messages })
    }

    /// Everything received so far.
    pub async fn messages(&self) -> anyhow::Result<Vec<Received>> {
        let response = self
            .http
            .get(self.messages.clone())
            .send()
            .await
            .with_context(|| format!("GET {} failed", self.messages))?;
        if !response.status().is_success() {
            bail!("GET {} answered {}", self.messages, response.status());
        }
        response
            .json()
            .await
            .with_context(|| format!("GET {} answered unreadable JSON", self.messages))
    }

    /// Polls until a message with exactly this `message` line arrives, and
    /// returns it; fails after `within`, listing what did arrive.
    pub async fn wait_for(&self, message: &str, within: Duration) -> anyhow::Result<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.messages().await?;
            if let Some(found) = received.iter().find(|r| r.message() == Some(message)) {
                return Ok(found.clone());
            }
            if Instant::now() >= deadline {
                let seen: Vec<&str> = received.iter().filter_map(Received::message).collect();
                bail!(
                    "no webhook `{message}` arrived at {} within {within:?}; it received {} \
                     message(s): {seen:?}",
                    self.messages,
                    received.len()
                );
            }
            // Polling the receiver, bounded by the deadline above.
            sleep(Duration::from_millis(200)).await;
        }
    }
}
