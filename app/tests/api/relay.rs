//! One relay pass, stepped with the in-memory publisher: what it publishes,
//! in which order, and what it leaves in the outbox.

use std::sync::Arc;

use app::changes;
use app::db::{MIGRATOR, outbox};
use app::domain::{Actor, TodoText};
use app::metrics::Metrics;
use app::outbox::{MemoryPublisher, PassError, Relay};
use app::state::AppState;
use events::{EventType, SCHEMA_VERSION, TodoEvent, TodoField, TodoSnapshot};
use sqlx::{Connection, PgConnection, PgPool};
use test_support::{TestDatabase, test_database};
use time::macros::datetime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::migrate_to_before;

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

/// The events the outbox holds, as the relay reads them, in its order.
async fn outbox_payloads(pool: &PgPool) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    let pending = outbox::oldest(&mut conn, i64::MAX).await.unwrap();
    pending.into_iter().map(|event| event.payload).collect()
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
    assert_eq!(payloads, pending, "the outbox's events, in its order");
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

/// Events waiting in the outbox when it began keeping fields instead of
/// JSON (migration `20261207000001`) are converted, and published as they
/// were written: the same bytes, in the same order.
#[tokio::test]
async fn events_pending_across_the_outbox_migration_are_published_as_written() {
    let database = test_database().await.unwrap();
    let pool = PgPool::connect(&database.url).await.unwrap();
    migrate_to_before(&pool, 20261207000001).await;
    // Stored to the microsecond, as PostgreSQL keeps times.
    let at =
        |seconds: i64| datetime!(2026-12-07 09:30:00.123456 UTC) + time::Duration::seconds(seconds);
    let todo = TodoSnapshot {
        id: Uuid::now_v7(),
        text: "Water \"the\" plants ✓".to_owned(),
        done: false,
        created_at: at(0),
        updated_at: at(0),
    };
    let event = |event_type, todo: TodoSnapshot, occurred_at| TodoEvent {
        id: Uuid::now_v7(),
        event_type,
        schema_version: SCHEMA_VERSION,
        occurred_at,
        todo,
        changed: Vec::new(),
        actor: None,
    };
    let written = [
        event(EventType::Created, todo.clone(), at(0)).by(events::Actor::Token {
            name: "ci-bot".to_owned(),
        }),
        TodoEvent {
            changed: vec![TodoField::Text, TodoField::Done],
            ..event(
                EventType::Updated,
                TodoSnapshot {
                    text: "Water the ferns".to_owned(),
                    done: true,
                    updated_at: at(5),
                    ..todo.clone()
                },
                at(5),
            )
        }
        .by(events::Actor::Person {
            subject: "248289761001".to_owned(),
            name: "Ada Lovelace".to_owned(),
        }),
        // Written before events said who made the change.
        event(EventType::Deleted, todo, at(9)),
    ];
    for event in &written {
        sqlx::query("insert into outbox (event_id, subject, payload) values ($1, $2, $3::json)")
            .bind(event.id)
            .bind(event.subject())
            .bind(String::from_utf8(event.to_json()).unwrap())
            .execute(&pool)
            .await
            .unwrap();
    }

    MIGRATOR.run(&pool).await.unwrap();

    let expected: Vec<String> = written
        .iter()
        .map(|event| String::from_utf8(event.to_json()).unwrap())
        .collect();
    assert_eq!(outbox_payloads(&pool).await, expected);
}
