//! One relay pass, stepped with the in-memory publisher: what it publishes,
//! in which order, and what it leaves in the outbox.

use std::sync::Arc;

use app::changes;
use app::db::MIGRATOR;
use app::domain::{Actor, TodoText};
use app::metrics::Metrics;
use app::outbox::{MemoryPublisher, PassError, Relay};
use app::state::AppState;
use events::TodoEvent;
use sqlx::{Connection, PgConnection, PgPool};
use test_support::{TestDatabase, test_database};
use tokio::sync::Notify;

/// A migrated database with three todos created, their events pending, and
/// a relay over it publishing to memory.
async fn three_pending() -> (
    TestDatabase,
    PgPool,
    Relay<Arc<MemoryPublisher>>,
    Arc<MemoryPublisher>,
) {
    let database = test_database().await.unwrap();
    let pool = PgPool::connect(&database.url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let state = AppState::new(pool.clone(), None);
    for text in ["first", "second", "third"] {
        changes::create(
            &state.writer,
            &TodoText::parse(text).unwrap(),
            Actor::Anonymous,
        )
        .await
        .unwrap();
    }
    let publisher = Arc::new(MemoryPublisher::default());
    let relay = Relay::new(
        database.url.parse().unwrap(),
        Arc::new(Notify::new()),
        Arc::clone(&publisher),
        Metrics::new(),
    );
    (database, pool, relay, publisher)
}

async fn outbox_payloads(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("select payload::text from outbox order by seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_pass_publishes_the_pending_rows_in_order_and_removes_them() {
    let (database, pool, relay, publisher) = three_pending().await;
    let pending = outbox_payloads(&pool).await;
    let mut conn = PgConnection::connect(&database.url).await.unwrap();

    let more = relay.pass(&mut conn).await.unwrap();

    assert!(!more, "one pass took every row");
    let messages = publisher.messages();
    let payloads: Vec<&str> = messages.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(payloads, pending, "the outbox's bytes, in its order");
    let texts: Vec<String> = messages
        .iter()
        .map(|m| {
            TodoEvent::from_json(m.payload.as_bytes())
                .unwrap()
                .todo
                .text
        })
        .collect();
    assert_eq!(texts, ["first", "second", "third"]);
    for message in &messages {
        let event = TodoEvent::from_json(message.payload.as_bytes()).unwrap();
        assert_eq!(
            message.message_id,
            event.id.to_string(),
            "deduplicated by event id"
        );
        assert_eq!(message.subject, event.subject());
    }
    assert!(
        outbox_payloads(&pool).await.is_empty(),
        "published rows are removed"
    );
}

#[tokio::test]
async fn a_refused_publish_leaves_the_rows_pending_for_the_next_pass() {
    let (database, pool, relay, publisher) = three_pending().await;
    let pending = outbox_payloads(&pool).await;
    let mut conn = PgConnection::connect(&database.url).await.unwrap();

    publisher.refuse(true);
    let refused = relay.pass(&mut conn).await;

    assert!(matches!(refused, Err(PassError::Nats(_))), "{refused:?}");
    assert!(publisher.messages().is_empty());
    assert_eq!(
        outbox_payloads(&pool).await,
        pending,
        "every row still pending"
    );

    publisher.refuse(false);
    relay.pass(&mut conn).await.unwrap();
    assert_eq!(
        publisher.messages().len(),
        3,
        "the next pass publishes them"
    );
    assert!(outbox_payloads(&pool).await.is_empty());
}

#[tokio::test]
async fn a_leader_that_falls_silent_loses_the_lock_within_its_lease() {
    let database = test_database().await.unwrap();
    let options: sqlx::postgres::PgConnectOptions = database.url.parse().unwrap();
    let leased = app::outbox::leased(&options);
    // A leader frozen right after it took the lock: its connection stays
    // open and says nothing, as a stopped process's would.
    let mut frozen = PgConnection::connect_with(&leased).await.unwrap();
    assert!(app::db::outbox::try_lead(&mut frozen).await.unwrap());
    let mut standby = PgConnection::connect_with(&leased).await.unwrap();
    let asked = std::time::Instant::now();

    let deadline = app::outbox::LEADER_LEASE + std::time::Duration::from_secs(5);
    while !app::db::outbox::try_lead(&mut standby).await.unwrap() {
        assert!(
            asked.elapsed() < deadline,
            "the standby did not get the lock within {deadline:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    let took = asked.elapsed();
    assert!(
        took >= app::outbox::LEADER_LEASE - std::time::Duration::from_secs(1),
        "the lock passed after {took:?}, before the lease ran out"
    );
    // Resumed, the old leader finds its session ended: it cannot go on
    // believing it leads.
    assert!(app::db::outbox::try_lead(&mut frozen).await.is_err());
}
