//! A change costs the rows it changes, not what its tables hold: the
//! writers' statements and the outbox relay's read `todos` and `outbox`
//! only through their indexes, bounded by the ids they are given, even
//! with plans made on empty tables (the app keeps one plan per statement,
//! made on its first run, while the tables grow).

use app::db::outbox::{self, Edit};
use app::domain::{Actor, Todo, TodoId, TodoText, storage_now};
use sqlx::PgConnection;

use crate::helpers::{connected_as_the_app, rows_read};

/// Todos in the table when the plans are made.
const FEW: usize = 50;
/// Todos added before the changes are measured.
const KEPT: usize = 1_000;
/// Todos changed, and deleted, in the batch measured.
const CHANGED: usize = 3;

#[tokio::test]
async fn a_batch_of_changes_and_the_relay_read_only_the_rows_they_change() {
    let (_database, pool) = connected_as_the_app().await;
    let mut conn = pool.acquire().await.unwrap();
    // A few todos, their events published and removed, and the statistics
    // as autovacuum leaves them: a small team's table, and an outbox the
    // relay keeps empty.
    let few = todos_made(FEW);
    store(&mut conn, &few).await;
    sqlx::query("delete from outbox")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("vacuum analyze todos, outbox")
        .execute(&mut *conn)
        .await
        .unwrap();

    // Every statement runs once on those tables: the plans kept.
    let nobody = [TodoId::new()];
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    edit(&mut tx, &nobody).await;
    delete(&mut tx, &nobody).await;
    outbox::oldest(&mut tx, 128).await.unwrap();
    outbox::remove(&mut tx, &[0]).await.unwrap();
    // The plans stay with the connection.
    tx.rollback().await.unwrap();

    // The tables grow, as the app grows them.
    let kept = todos_made(KEPT);
    store(&mut conn, &kept).await;

    // One relay cycle and one batch of edits and deletes, measured in one
    // transaction (its counters are per transaction).
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    let before = reads(&mut tx).await;
    let pending = outbox::oldest(&mut tx, CHANGED as i64).await.unwrap();
    let seqs: Vec<i64> = pending.iter().map(|event| event.seq).collect();
    outbox::remove(&mut tx, &seqs).await.unwrap();
    let edited: Vec<TodoId> = kept[..CHANGED].iter().map(|t| t.id).collect();
    let edited = edit(&mut tx, &edited).await;
    let doomed: Vec<TodoId> = kept[CHANGED..2 * CHANGED].iter().map(|t| t.id).collect();
    let deleted = delete(&mut tx, &doomed).await;
    let after = reads(&mut tx).await;
    tx.rollback().await.unwrap();

    assert_eq!(
        (pending.len(), edited, deleted),
        (CHANGED, CHANGED, CHANGED)
    );
    let scanned = (after.scanned_todos - before.scanned_todos)
        + (after.scanned_outbox - before.scanned_outbox);
    assert_eq!(
        scanned, 0,
        "the relay and the writers scanned {scanned} rows of their tables"
    );
    // Each todo is fetched at most twice by the statement that changes it
    // (to lock it, and to edit or delete it), whatever the table holds.
    let fetched = after.fetched_todos - before.fetched_todos;
    assert!(
        fetched <= (4 * CHANGED) as i64,
        "the writers fetched {fetched} todos by index to change {} of {KEPT}",
        2 * CHANGED
    );
}

fn todos_made(count: usize) -> Vec<Todo> {
    let text = TodoText::parse("kept").unwrap();
    (0..count)
        .map(|_| Todo::new(&text).made_by(&Actor::Anonymous))
        .collect()
}

/// Stores new todos with their events, as the writers store creates.
async fn store(conn: &mut PgConnection, new: &[Todo]) {
    let created: Vec<(&Todo, &Actor)> = new.iter().map(|t| (t, &Actor::Anonymous)).collect();
    outbox::create(conn, &created).await.unwrap();
}

/// Marks the todos done, each with its event, as the writers store a batch
/// of edits; returns how many there were.
async fn edit(conn: &mut PgConnection, ids: &[TodoId]) -> usize {
    let edits: Vec<Edit> = ids
        .iter()
        .map(|&id| Edit {
            id,
            done: Some(true),
            text: None,
            by: Actor::Anonymous,
        })
        .collect();
    let edited = outbox::edit(conn, &edits, storage_now()).await.unwrap();
    edited.iter().flatten().count()
}

/// Deletes the todos, each with its event, as the writers store a batch
/// of deletes; returns how many there were.
async fn delete(conn: &mut PgConnection, ids: &[TodoId]) -> usize {
    let deletes: Vec<(TodoId, &Actor)> = ids.iter().map(|&id| (id, &Actor::Anonymous)).collect();
    outbox::delete(conn, &deletes, storage_now())
        .await
        .unwrap()
        .len()
}

/// What this transaction has read of `todos` and `outbox`.
struct Reads {
    /// Rows of `todos` fetched through its indexes.
    fetched_todos: i64,
    /// Rows read by scanning the tables.
    scanned_todos: i64,
    scanned_outbox: i64,
}

async fn reads(conn: &mut PgConnection) -> Reads {
    let (fetched_todos, scanned_todos) = rows_read(conn, "todos").await;
    let (_, scanned_outbox) = rows_read(conn, "outbox").await;
    Reads {
        fetched_todos,
        scanned_todos,
        scanned_outbox,
    }
}
