//! The event path: todos created through the JSON API, relayed by the
//! app's outbox to JetStream, forwarded by the broadcaster to the sink.
//!
//! Latency is the sink's `received_at` minus the event's own `occurred_at`
//! (stamped by the app in the writing transaction, just before commit):
//! both come from this machine's clock, so no skew enters.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinSet;
use uuid::Uuid;

async fn create(
    client: &reqwest::Client,
    app_url: &str,
    token: &str,
    text: String,
) -> anyhow::Result<Uuid> {
    let response = client
        .post(format!("{app_url}/api/todos"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await
        .context("POST /api/todos")?;
    let status = response.status();
    if status != reqwest::StatusCode::CREATED {
        bail!(
            "POST /api/todos answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let todo: Value = response.json().await?;
    todo["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .context("POST /api/todos answered without an id")
}

/// Creates `count` todos at a steady `rate` per second (each request on its
/// own task, so a slow answer does not delay the next send). Returns how
/// many failed.
pub async fn create_at_rate(
    client: &reqwest::Client,
    app_url: &str,
    token: &str,
    rate: u32,
    count: usize,
    prefix: &str,
) -> usize {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        tick.tick().await;
        let (client, url, token, text) = (
            client.clone(),
            app_url.to_string(),
            token.to_string(),
            format!("{prefix}{i}"),
        );
        tasks.spawn(async move { create(&client, &url, &token, text).await.is_err() });
    }
    tasks
        .join_all()
        .await
        .into_iter()
        .filter(|&failed| failed)
        .count()
}

/// Events the broadcaster has handed to the sink (delivered or recognised
/// as already delivered), from its `/metrics`.
pub async fn handled(client: &reqwest::Client, broadcaster_url: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{broadcaster_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(handled_in(&text))
}

fn handled_in(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with(r#"broadcaster_messages_processed_total{outcome="delivered"}"#)
                || line.starts_with(r#"broadcaster_messages_processed_total{outcome="duplicate"}"#)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Polls until the broadcaster has handled each of `targets` (ascending)
/// events; returns when it got to each.
pub async fn wait_handled(
    client: &reqwest::Client,
    broadcaster_url: &str,
    targets: &[u64],
    deadline: Duration,
) -> anyhow::Result<Vec<Instant>> {
    let started = Instant::now();
    let mut reached = Vec::with_capacity(targets.len());
    loop {
        let now = handled(client, broadcaster_url).await.unwrap_or(0);
        while reached.len() < targets.len() && now >= targets[reached.len()] {
            reached.push(Instant::now());
        }
        let Some(&target) = targets.get(reached.len()) else {
            return Ok(reached);
        };
        if started.elapsed() > deadline {
            bail!("the broadcaster handled {now} of {target} events within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Commit → received latencies (ms) of the sink's messages for todos whose
/// text starts with `prefix`.
pub fn latencies(messages: &Value, prefix: &str) -> anyhow::Result<Vec<f64>> {
    let messages = messages
        .as_array()
        .context("the sink's /messages is not a JSON array")?;
    let mut out = Vec::new();
    for message in messages {
        let event = &message["body"]["event"];
        let is_ours = event["todo"]["text"]
            .as_str()
            .is_some_and(|text| text.starts_with(prefix));
        if !is_ours {
            continue;
        }
        let at = |value: &Value, what: &str| -> anyhow::Result<OffsetDateTime> {
            let text = value.as_str().with_context(|| format!("no {what}"))?;
            OffsetDateTime::parse(text, &Rfc3339).with_context(|| format!("{what} `{text}`"))
        };
        let received = at(&message["received_at"], "received_at")?;
        let occurred = at(&event["occurred_at"], "event.occurred_at")?;
        out.push((received - occurred).as_seconds_f64() * 1000.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn latency_is_received_minus_occurred_for_our_todos_only() {
        let messages = json!([
            {"received_at": "2026-11-22T10:00:00.012500Z",
             "body": {"event": {"occurred_at": "2026-11-22T10:00:00.000Z", "todo": {"text": "ev-1"}}}},
            {"received_at": "2026-11-22T10:00:01Z",
             "body": {"event": {"occurred_at": "2026-11-22T10:00:00Z", "todo": {"text": "seed"}}}},
            {"received_at": "2026-11-22T10:00:00.1Z", "body": "not json"},
        ]);
        let latencies = latencies(&messages, "ev-").unwrap();
        assert_eq!(latencies.len(), 1);
        assert!((latencies[0] - 12.5).abs() < 1e-9, "{latencies:?}");
    }

    #[test]
    fn handled_counts_delivered_and_duplicates() {
        let metrics = "# HELP x\n\
            broadcaster_messages_processed_total{outcome=\"delivered\"} 120\n\
            broadcaster_messages_processed_total{outcome=\"duplicate\"} 3\n\
            broadcaster_messages_processed_total{outcome=\"dead_lettered\"} 1\n";
        assert_eq!(handled_in(metrics), 123);
    }
}
