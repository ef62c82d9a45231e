//! The event path: todos created through the JSON API, relayed by the
//! app's outbox to JetStream, forwarded by the broadcaster to the sink.
//!
//! Latency is the sink's `received_at` minus the event's own `occurred_at`
//! (stamped by the app in the writing transaction, just before commit):
//! both come from this machine's clock, so no skew enters.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
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

/// When the stream stored each event from `first_sequence` on, by event
/// id (the relay's `Nats-Msg-Id`), read with an ordered consumer.
pub async fn stored_at(
    stream: &Stream,
    first_sequence: u64,
) -> anyhow::Result<HashMap<String, OffsetDateTime>> {
    let last = stream.get_info().await?.state.last_sequence;
    let mut stored = HashMap::new();
    if last < first_sequence {
        return Ok(stored);
    }
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: first_sequence,
            },
            ..Default::default()
        })
        .await
        .context("an ordered consumer on the app's stream")?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let info = message.info().map_err(anyhow::Error::msg)?;
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(|id| id.as_str().to_owned())
            .context("a stored event without a Nats-Msg-Id")?;
        stored.insert(id, info.published);
        if info.stream_sequence >= last {
            break;
        }
    }
    Ok(stored)
}

/// How long one of our events took (ms): commit → received, and its parts
/// on either side of the stream where the stream's copy was found.
#[derive(Debug)]
pub struct Timing {
    /// When it was committed (the event's `occurred_at`).
    pub occurred: OffsetDateTime,
    pub total: f64,
    /// Commit → stored, stored → received.
    pub split: Option<(f64, f64)>,
}

/// Commit → received latencies of the sink's messages for todos whose text
/// starts with `prefix`, split at `stored` (by event id) where known.
pub fn latencies(
    messages: &Value,
    prefix: &str,
    stored: &HashMap<String, OffsetDateTime>,
) -> anyhow::Result<Vec<Timing>> {
    let messages = messages
        .as_array()
        .context("the sink's /messages is not a JSON array")?;
    let mut out = Vec::new();
    let ms = |d: time::Duration| d.as_seconds_f64() * 1000.0;
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
        let split = event["id"]
            .as_str()
            .and_then(|id| stored.get(id))
            .map(|stored| (ms(*stored - occurred), ms(received - *stored)));
        out.push(Timing {
            occurred,
            total: ms(received - occurred),
            split,
        });
    }
    Ok(out)
}

/// The timings as CSV in the order they were committed: a slow run's
/// slow events, and whether they came together, at a glance.
pub fn timings_csv(timings: &[Timing]) -> String {
    let mut in_order: Vec<&Timing> = timings.iter().collect();
    in_order.sort_by_key(|timing| timing.occurred);
    let mut csv =
        String::from("occurred_at,commit_to_webhook_ms,commit_to_stream_ms,stream_to_webhook_ms\n");
    for timing in in_order {
        let occurred = timing.occurred.format(&Rfc3339).unwrap_or_default();
        let (to_stream, from_stream) = timing.split.map_or_else(
            || (String::new(), String::new()),
            |(to, from)| (format!("{to:.3}"), format!("{from:.3}")),
        );
        let _ = writeln!(
            csv,
            "{occurred},{:.3},{to_stream},{from_stream}",
            timing.total
        );
    }
    csv
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn latency_is_received_minus_occurred_for_our_todos_only_split_where_stored() {
        let messages = json!([
            {"received_at": "2026-11-22T10:00:00.012500Z",
             "body": {"event": {"id": "0192f0c4-0000-7000-8000-000000000001",
                               "occurred_at": "2026-11-22T10:00:00.000Z", "todo": {"text": "ev-1"}}}},
            {"received_at": "2026-11-22T10:00:01Z",
             "body": {"event": {"occurred_at": "2026-11-22T10:00:00Z", "todo": {"text": "seed"}}}},
            {"received_at": "2026-11-22T10:00:00.1Z", "body": "not json"},
        ]);
        let stored = HashMap::from([(
            "0192f0c4-0000-7000-8000-000000000001".to_owned(),
            OffsetDateTime::parse("2026-11-22T10:00:00.002Z", &Rfc3339).unwrap(),
        )]);
        let timings = latencies(&messages, "ev-", &stored).unwrap();
        assert_eq!(timings.len(), 1, "{timings:?}");
        assert!((timings[0].total - 12.5).abs() < 1e-9, "{timings:?}");
        let (to_stream, from_stream) = timings[0].split.unwrap();
        assert!((to_stream - 2.0).abs() < 1e-9, "{timings:?}");
        assert!((from_stream - 10.5).abs() < 1e-9, "{timings:?}");
    }

    #[test]
    fn the_csv_lists_timings_in_commit_order_with_blanks_where_not_split() {
        let at = |text| OffsetDateTime::parse(text, &Rfc3339).unwrap();
        let timings = [
            Timing {
                occurred: at("2026-11-22T10:00:01Z"),
                total: 3.25,
                split: None,
            },
            Timing {
                occurred: at("2026-11-22T10:00:00.5Z"),
                total: 12.5,
                split: Some((2.0, 10.5)),
            },
        ];
        assert_eq!(
            timings_csv(&timings),
            "occurred_at,commit_to_webhook_ms,commit_to_stream_ms,stream_to_webhook_ms\n\
             2026-11-22T10:00:00.5Z,12.500,2.000,10.500\n\
             2026-11-22T10:00:01Z,3.250,,\n"
        );
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
