//! The end of every scenario: wait until the stack has settled, then count
//! what the load sent, what the app acknowledged, what PostgreSQL stored,
//! what the `TODOS` stream holds and what the receiver accepted, and check
//! they agree.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use events::TodoEvent;
use sqlx::{Connection, PgConnection};
use tokio::time::Instant;
use uuid::Uuid;

use crate::load::Results;
use crate::report::Figures;
use test_support::Stack;

/// Waits (up to `within`) until the outbox is empty, the broadcasters'
/// consumer has acked the whole stream and every acknowledged todo's
/// `todo.created` reached the receiver. Then counts.
///
/// The recovery time is how long after `fault_cleared` the receiver got the
/// last event of the backlog, the todos acknowledged before the fault
/// cleared (0 if they were all delivered by then); the load still running
/// afterwards does not count.
pub async fn settle(
    stack: &Stack,
    scenario: &str,
    load: &Results,
    fault_cleared: Instant,
    within: Duration,
) -> anyhow::Result<Figures> {
    let js = stack.jetstream().await?;
    let mut db = connect(&stack.database_url.clone(), within).await?;
    let acked: HashSet<Uuid> = load.acked.iter().copied().collect();
    let deadline = Instant::now() + within;
    loop {
        if settled(stack, &js, &mut db, &acked).await? {
            break;
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{scenario}: the stack did not settle within {within:?}: {}\n{}",
                describe(stack, &js, &mut db, &acked).await,
                stack.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let stored: HashSet<Uuid> = sqlx::query_scalar::<_, Uuid>("select id from todos")
        .fetch_all(&mut db)
        .await?
        .into_iter()
        .collect();
    let stream = stream_events(&js).await?;
    let seen = stack.receiver().seen();
    anyhow::ensure!(
        seen.iter().all(|s| s.verified),
        "{scenario}: a webhook failed signature verification"
    );

    let published: HashSet<Uuid> = stream.iter().map(|e| e.id).collect();
    let created_in_stream: HashSet<Uuid> = stream
        .iter()
        .filter(|e| e.event_type == events::EventType::Created)
        .map(|e| e.todo.id)
        .collect();
    let mut accepted: HashMap<Uuid, usize> = HashMap::new();
    for s in seen.iter().filter(|s| s.accepted()) {
        let event_id = s.event_id();
        anyhow::ensure!(
            event_id.map(|id| id.to_string()) == Some(s.webhook_id.clone()),
            "{scenario}: webhook-id {} is not the event id {event_id:?}",
            s.webhook_id,
        );
        *accepted.entry(event_id.unwrap()).or_default() += 1;
    }
    let delivered: HashSet<Uuid> = accepted.keys().copied().collect();
    let backlog: HashSet<Uuid> = load
        .acked
        .iter()
        .zip(&load.acked_at)
        .filter(|(_, at)| **at <= fault_cleared)
        .map(|(id, _)| *id)
        .collect();
    let mut first_delivery: HashMap<Uuid, Instant> = HashMap::new();
    for s in seen.iter().filter(|s| s.accepted()) {
        if let (Some(todo), Some("todo.created"), Some(answered)) =
            (s.todo_id(), s.event_type().as_deref(), s.answered)
        {
            first_delivery.entry(todo).or_insert(answered);
        }
    }
    let recovery = backlog
        .iter()
        .filter_map(|todo| first_delivery.get(todo))
        .map(|at| at.saturating_duration_since(fault_cleared))
        .max()
        .unwrap_or_default();

    let acked_not_stored = acked.difference(&stored).count();
    let stored_not_published = stored.difference(&created_in_stream).count();
    let published_not_delivered = published.difference(&delivered).count();
    Ok(Figures {
        scenario: scenario.to_owned(),
        sent: load.sent,
        acknowledged: acked.len(),
        stored: stored.len(),
        published: stream.len(),
        delivered: delivered.len(),
        duplicates: accepted.values().map(|n| n - 1).sum(),
        lost: acked_not_stored + stored_not_published + published_not_delivered,
        recovery,
        note: String::new(),
    })
}

async fn connect(url: &str, within: Duration) -> anyhow::Result<PgConnection> {
    let deadline = Instant::now() + within;
    loop {
        match PgConnection::connect(url).await {
            Ok(conn) => return Ok(conn),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context("PostgreSQL did not come back");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn settled(
    stack: &Stack,
    js: &async_nats::jetstream::Context,
    db: &mut PgConnection,
    acked: &HashSet<Uuid>,
) -> anyhow::Result<bool> {
    let outbox: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&mut *db)
        .await?;
    if outbox > 0 {
        return Ok(false);
    }
    if !drained(js).await {
        return Ok(false);
    }
    let delivered: HashSet<Uuid> = stack
        .receiver()
        .seen()
        .iter()
        .filter(|s| s.accepted() && s.event_type().as_deref() == Some("todo.created"))
        .filter_map(|s| s.todo_id())
        .collect();
    Ok(acked.is_subset(&delivered))
}

/// The broadcasters' durable consumer has acked every message in `TODOS`.
async fn drained(js: &async_nats::jetstream::Context) -> bool {
    let Ok(mut stream) = js.get_stream(events::STREAM).await else {
        return false;
    };
    let Ok(info) = stream.info().await else {
        return false;
    };
    let last = info.state.last_sequence;
    let Ok(consumer) = stream.consumer_info(broadcaster::consumer::DURABLE).await else {
        return false;
    };
    consumer.num_pending == 0
        && consumer.num_ack_pending == 0
        && consumer.ack_floor.stream_sequence == last
}

/// What is still missing, for a failure message.
async fn describe(
    stack: &Stack,
    js: &async_nats::jetstream::Context,
    db: &mut PgConnection,
    acked: &HashSet<Uuid>,
) -> String {
    let outbox: Result<i64, _> = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&mut *db)
        .await;
    let consumer = match js.get_stream(events::STREAM).await {
        Ok(stream) => format!(
            "{:?}",
            stream
                .consumer_info(broadcaster::consumer::DURABLE)
                .await
                .map(|c| (
                    c.num_pending,
                    c.num_ack_pending,
                    c.ack_floor.stream_sequence
                ))
        ),
        Err(e) => format!("no stream: {e}"),
    };
    let delivered: HashSet<Uuid> = stack
        .receiver()
        .seen()
        .iter()
        .filter(|s| s.accepted())
        .filter_map(|s| s.todo_id())
        .collect();
    format!(
        "outbox rows {outbox:?}; consumer (pending, ack pending, ack floor) {consumer}; \
         acknowledged todos not delivered: {}",
        acked.difference(&delivered).count()
    )
}

/// Every event in `TODOS`, in stream order.
async fn stream_events(js: &async_nats::jetstream::Context) -> anyhow::Result<Vec<TodoEvent>> {
    test_support::stored_messages(js, events::STREAM)
        .await?
        .iter()
        .map(|message| TodoEvent::from_json(&message.payload).context("a stored event decodes"))
        .collect()
}
