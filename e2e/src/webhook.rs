//! A webhook receiver's `GET /messages` (`broadcaster sink`'s format): what
//! arrived, whether its Standard Webhooks signature verified, and what the
//! receiver answered; and a Discord message as people in the channel read it.

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
    /// What the receiver answered (absent from receivers that do not say).
    #[serde(default)]
    pub status: Option<u16>,
    pub body: serde_json::Value,
}

impl Received {
    /// The human-readable line: `message` in the generic format; in
    /// Discord's, `content` as the channel shows it.
    pub fn message(&self) -> Option<String> {
        match self.body.get("message").and_then(|m| m.as_str()) {
            Some(message) => Some(message.to_owned()),
            None => self
                .body
                .get("content")
                .and_then(|c| c.as_str())
                .map(discord_rendered),
        }
    }
}

/// Discord message content as the channel displays it: Markdown escapes
/// (`\-`, `\*`, `\@`, …) show as the character alone.
pub fn discord_rendered(content: &str) -> String {
    let mut shown = String::with_capacity(content.len());
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(next) if c == '\\' && next.is_ascii_punctuation() => {
                shown.push(*next);
                chars.next();
            }
            _ => shown.push(c),
        }
    }
    shown
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
            if let Some(found) = received
                .iter()
                .find(|r| r.message().as_deref() == Some(message))
            {
                return Ok(found.clone());
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = received.iter().filter_map(Received::message).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_shows_escaped_markdown_as_the_plain_character() {
        assert_eq!(
            discord_rendered(r"Todo created: Book the dentist e2e\-1f \*now\* \@everyone"),
            "Todo created: Book the dentist e2e-1f *now* @everyone"
        );
        assert_eq!(discord_rendered(r"a \\ b \n"), r"a \ b \n");
    }

    #[test]
    fn a_discord_message_reads_as_its_rendered_content() {
        let received: Received = serde_json::from_value(serde_json::json!({
            "signature_verified": false, "signature_error": "no headers", "webhook_id": null,
            "status": 204, "body": {"content": "Todo created: a\\-b"}
        }))
        .unwrap();
        assert_eq!(received.message().as_deref(), Some("Todo created: a-b"));
        assert_eq!(received.status, Some(204));
    }
}
