//! Changes written together (`app::changes::Writer`): each is stored with
//! its event exactly once, and one that cannot be stored fails alone.
//!
//! The state has a one-connection pool, so while one statement runs the
//! other changes queue up and are written as batches.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use app::changes::{self, Change, Writer};
use app::db::MIGRATOR;
use app::db::outbox::{self, Edit};
use app::domain::{Actor, Todo, TodoId, TodoText, storage_now};
use app::error::AppError;
use app::generation::Generation;
use app::metrics::Metrics;
use app::state::AppState;
use events::{EventType, TodoEvent, TodoField};
use futures::future::join_all;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_support::{TestDatabase, test_database};
use uuid::Uuid;

/// A migrated database, and a pool of one connection to it.
async fn one_connection() -> (TestDatabase, PgPool) {
    let database = test_database().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&database.url)
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    (database, pool)
}

/// The outbox's events, in the order the relay would publish them.
async fn outbox_events(pool: &PgPool) -> Vec<TodoEvent> {
    let mut conn = pool.acquire().await.unwrap();
    let pending = outbox::oldest(&mut conn, i64::MAX).await.unwrap();
    pending
        .iter()
        .map(|event| TodoEvent::from_json(event.payload.as_bytes()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_share_statements_and_each_is_stored_with_its_event_once() {
    let (_database, pool) = one_connection().await;
    let state = AppState::new(pool.clone(), None);
    let text = TodoText::parse("created beside 199 others").unwrap();

    let created = join_all((0..200).map(|_| {
        let (state, text) = (state.clone(), text.clone());
        tokio::spawn(async move { changes::create(&state.writer, &text, Actor::Anonymous).await })
    }))
    .await;
    let created: HashSet<Uuid> = created
        .into_iter()
        .map(|joined| joined.unwrap().expect("created").id.as_uuid())
        .collect();
    assert_eq!(created.len(), 200);

    let stored: HashSet<Uuid> = sqlx::query_scalar("select id from todos")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, created, "every todo answered as created is stored");
    let events = outbox_events(&pool).await;
    assert_eq!(events.len(), 200, "one event per todo, none twice");
    assert!(events.iter().all(|e| e.event_type == EventType::Created));
    let about: HashSet<Uuid> = events.iter().map(|e| e.todo.id).collect();
    assert_eq!(about, created);

    let batches = &state.metrics.create_batch_size;
    assert_eq!(batches.get_sample_sum(), 200.0, "every create counted once");
    assert!(
        batches.get_sample_count() < 200,
        "creates that queued together shared a statement ({} statements)",
        batches.get_sample_count()
    );
    assert_eq!(state.metrics.todos_created.get(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_cannot_be_stored_fails_alone_not_its_batch() {
    let (_database, pool) = one_connection().await;
    let metrics = Metrics::new();
    let writer = Writer::start(pool.clone(), &metrics, Generation::default());
    let text = TodoText::parse("queued beside a duplicate").unwrap();
    let existing = Todo::new(&text);
    writer
        .make(Change::Create(existing.clone()), Actor::Anonymous)
        .await
        .unwrap();

    // The one connection is busy while all 100 queue, so they are written
    // as a few large batches, the duplicate inside one of them.
    let busy = pool.acquire().await.unwrap();
    let results = tokio::spawn({
        let writer = writer.clone();
        let duplicate = Todo {
            text: "a second todo with the first one's id".into(),
            ..existing.clone()
        };
        async move {
            join_all((0..100).map(|n| {
                let todo = if n == 50 {
                    duplicate.clone()
                } else {
                    Todo::new(&text)
                };
                let (id, writer) = (todo.id, writer.clone());
                async move {
                    (
                        id,
                        writer.make(Change::Create(todo), Actor::Anonymous).await,
                    )
                }
            }))
            .await
        }
    });
    // A writer counts its batch as it takes it, before it waits for the
    // connection: once every create is counted or waiting, all are queued.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.create_batch_size.get_sample_sum() as usize + writer.waiting() < 101 {
        assert!(Instant::now() < deadline, "the creates never queued");
        tokio::task::yield_now().await;
    }
    drop(busy);
    let results = results.await.unwrap();

    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert_eq!(failed.len(), 1, "only the duplicate fails");
    assert_eq!(failed[0].0, existing.id);
    let stored: i64 = sqlx::query_scalar("select count(*) from todos")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 100, "the first todo and the 99 others");
    assert_eq!(outbox_events(&pool).await.len(), 100);
    let original: String = sqlx::query_scalar("select text from todos where id = $1")
        .bind(existing.id.as_uuid())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(original, existing.text, "the duplicate changed nothing");
    assert!(
        metrics.create_batch_size.get_sample_sum()
            > metrics.create_batch_size.get_sample_count() as f64,
        "some creates were written together"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_queued_together_is_stored_with_its_event_and_a_missing_todo_fails_alone()
 {
    let (_database, pool) = one_connection().await;
    let metrics = Metrics::new();
    let writer = Writer::start(pool.clone(), &metrics, Generation::default());
    let text = TodoText::parse("changed beside others").unwrap();
    let mut existing = Vec::new();
    for _ in 0..10 {
        existing.push(
            writer
                .make(Change::Create(Todo::new(&text)), Actor::Anonymous)
                .await
                .unwrap(),
        );
    }
    let missing = Todo::new(&text).id;

    // While the one connection is busy, every kind of change queues up.
    let busy = pool.acquire().await.unwrap();
    let mut changes: Vec<Change> = (0..20).map(|_| Change::Create(Todo::new(&text))).collect();
    changes.extend(existing[..5].iter().map(|todo| Change::Update {
        id: todo.id,
        done: Some(true),
        text: None,
    }));
    changes.extend(existing[5..].iter().map(|todo| Change::Delete(todo.id)));
    changes.push(Change::Update {
        id: missing,
        done: Some(true),
        text: None,
    });
    let results = tokio::spawn({
        let writer = writer.clone();
        async move {
            join_all(
                changes
                    .into_iter()
                    .map(|change| writer.make(change, Actor::Anonymous)),
            )
            .await
        }
    });
    // Each create is counted as its writer takes it, before the wait for
    // the connection; once the 20 are counted or waiting, all are handed in.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.create_batch_size.get_sample_sum() as usize - 10 + writer.waiting() < 20 {
        assert!(Instant::now() < deadline, "the changes never queued");
        tokio::task::yield_now().await;
    }
    drop(busy);
    let results = results.await.unwrap();

    let (succeeded, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(
        succeeded.len(),
        30,
        "20 creates, 5 updates, 5 deletes: {failed:?}"
    );
    assert!(
        matches!(failed.as_slice(), [Err(AppError::TodoNotFound)]),
        "only the missing todo's update fails: {failed:?}"
    );
    let events = outbox_events(&pool).await;
    let count = |kind: EventType| events.iter().filter(|e| e.event_type == kind).count();
    assert_eq!(
        count(EventType::Created),
        30,
        "the first 10 and the 20 queued"
    );
    assert_eq!(count(EventType::Updated), 5);
    assert_eq!(count(EventType::Deleted), 5);
    let left: HashSet<(Uuid, bool)> = sqlx::query_as("select id, done from todos")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(left.len(), 25, "10 - 5 deleted + 20 created");
    for todo in &existing[..5] {
        assert!(
            left.contains(&(todo.id.as_uuid(), true)),
            "updated: {todo:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_todo_changed_three_times_in_one_batch_gets_each_change_in_order_with_its_event() {
    let (_database, pool) = one_connection().await;
    let metrics = Metrics::new();
    let writer = Writer::start(pool.clone(), &metrics, Generation::default());
    let text = TodoText::parse("changed three times").unwrap();
    let todo = writer
        .make(Change::Create(Todo::new(&text)), Actor::Anonymous)
        .await
        .unwrap();

    // Both writers take a create and wait for the one busy connection, so
    // the three changes after them queue up and are taken as one batch.
    let busy = pool.acquire().await.unwrap();
    let mut blockers = Vec::new();
    for taken in 2..=3 {
        let writer = writer.clone();
        let blocker = Todo::new(&text);
        blockers.push(tokio::spawn(async move {
            writer.make(Change::Create(blocker), Actor::Anonymous).await
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while metrics.create_batch_size.get_sample_count() < taken {
            assert!(Instant::now() < deadline, "a writer never took its create");
            tokio::task::yield_now().await;
        }
    }
    let renamed = TodoText::parse("renamed in between").unwrap();
    let changes = vec![
        Change::Update {
            id: todo.id,
            done: Some(true),
            text: None,
        },
        Change::Update {
            id: todo.id,
            done: None,
            text: Some(renamed.clone()),
        },
        Change::Update {
            id: todo.id,
            done: Some(false),
            text: None,
        },
    ];
    let results = tokio::spawn({
        let writer = writer.clone();
        async move {
            join_all(
                changes
                    .into_iter()
                    .map(|change| writer.make(change, Actor::Anonymous)),
            )
            .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer.waiting() < 3 {
        assert!(Instant::now() < deadline, "the changes never queued");
        tokio::task::yield_now().await;
    }
    drop(busy);
    let results = results.await.unwrap();
    for blocker in blockers {
        blocker.await.unwrap().unwrap();
    }

    let answers: Vec<(bool, String)> = results
        .into_iter()
        .map(|result| {
            let todo = result.unwrap();
            (todo.done, todo.text)
        })
        .collect();
    assert_eq!(
        answers,
        [
            (true, text.as_str().to_string()),
            (true, renamed.as_str().to_string()),
            (false, renamed.as_str().to_string()),
        ],
        "each answer is the todo as its own change left it"
    );
    let changed: Vec<_> = outbox_events(&pool)
        .await
        .into_iter()
        .filter(|event| event.event_type == EventType::Updated)
        .map(|event| (event.todo.done, event.changed))
        .collect();
    assert_eq!(
        changed,
        [
            (true, vec![TodoField::Done]),
            (true, vec![TodoField::Text]),
            (false, vec![TodoField::Done]),
        ]
    );
}

#[tokio::test]
async fn events_enter_the_outbox_in_the_order_given() {
    let (_database, pool) = one_connection().await;
    let text = TodoText::parse("in order").unwrap();
    let todos: Vec<Todo> = (0..50).map(|_| Todo::new(&text)).collect();
    // Newest first, so the order is the one given, not the ids' order.
    let new: Vec<(&Todo, &Actor)> = todos.iter().rev().map(|t| (t, &Actor::Anonymous)).collect();
    outbox::create(&pool, &new).await.unwrap();

    let stored: Vec<Uuid> = outbox_events(&pool)
        .await
        .iter()
        .map(|event| event.todo.id)
        .collect();
    let given: Vec<Uuid> = todos.iter().rev().map(|t| t.id.as_uuid()).collect();
    assert_eq!(stored, given, "in the order given");
}

/// Edit statements racing on the same todos, some todos twice in one
/// statement, never deadlock, and each todo's events, in the outbox's
/// order, tell its story: each names the fields its edit changed from what
/// the event before it left, and the last shows the todo as stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_edits_of_the_same_todos_leave_events_that_chain() {
    const RACERS: usize = 8;
    const ROUNDS: usize = 30;
    const TODOS: usize = 10;
    let database = test_database().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(RACERS as u32)
        .connect(&database.url)
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let first = TodoText::parse("raced").unwrap();
    let todos: Vec<Todo> = (0..TODOS).map(|_| Todo::new(&first)).collect();
    let new: Vec<(&Todo, &Actor)> = todos.iter().map(|t| (t, &Actor::Anonymous)).collect();
    outbox::create(&pool, &new).await.unwrap();
    let ids: Vec<TodoId> = todos.iter().map(|t| t.id).collect();

    let racers = (0..RACERS).map(|racer| {
        let (pool, ids) = (pool.clone(), ids.clone());
        tokio::spawn(async move {
            for round in 0..ROUNDS {
                // Every todo, from a different one each time, and the
                // first three again at the end.
                let edits: Vec<Edit> = ids
                    .iter()
                    .cycle()
                    .skip(racer + round)
                    .take(TODOS + 3)
                    .enumerate()
                    .map(|(n, &id)| Edit {
                        id,
                        done: (n % 3 != 2).then_some((racer + round + n) % 2 == 0),
                        text: (n % 4 == 0)
                            .then(|| TodoText::parse(&format!("racer {racer}, round {round}")))
                            .transpose()
                            .unwrap(),
                        by: Actor::Anonymous,
                    })
                    .collect();
                let edited = outbox::edit(&pool, &edits, storage_now()).await.unwrap();
                assert!(edited.iter().all(Option::is_some), "every todo exists");
            }
        })
    });
    for racer in join_all(racers).await {
        racer.unwrap();
    }

    let events = outbox_events(&pool).await;
    let updates = events
        .iter()
        .filter(|event| event.event_type == EventType::Updated);
    assert_eq!(updates.clone().count(), RACERS * ROUNDS * (TODOS + 3));
    for todo in &todos {
        let mut was = (first.as_str().to_owned(), false);
        for event in updates
            .clone()
            .filter(|event| event.todo.id == todo.id.as_uuid())
        {
            let now = (event.todo.text.clone(), event.todo.done);
            let mut changed = Vec::new();
            if now.0 != was.0 {
                changed.push(TodoField::Text);
            }
            if now.1 != was.1 {
                changed.push(TodoField::Done);
            }
            assert_eq!(event.changed, changed, "{was:?} -> {now:?}");
            was = now;
        }
        let stored =
            sqlx::query_as::<_, (String, bool)>("select text, done from todos where id = $1")
                .bind(todo.id.as_uuid())
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(stored, was, "the last event shows the todo as stored");
    }
}
