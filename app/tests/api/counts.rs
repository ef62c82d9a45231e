//! The lists' totals are maintained with every change (the `todo_counts`
//! table and its triggers), not counted on each read: they must equal a
//! count of the table whatever mix of writers ran at once.

use app::changes::{Change, Writer};
use app::db::MIGRATOR;
use app::domain::{Actor, Shown, Todo, TodoText};
use app::error::AppError;
use app::generation::Generation;
use app::metrics::Metrics;
use app::reads::Reads;
use futures::future::join_all;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_support::{TestDatabase, test_database};
use uuid::Uuid;

use crate::helpers::migrate_to_before;

async fn migrated(connections: u32) -> (TestDatabase, PgPool) {
    let database = test_database().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect(&database.url)
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    (database, pool)
}

/// (open, done) as the page shows them, and as a count of the table says.
async fn totals(pool: &PgPool) -> ((u64, u64), (u64, u64)) {
    let lists = Reads::new(pool.clone())
        .lists(Shown::default())
        .await
        .unwrap();
    let (open, done): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where not done), count(*) filter (where done) from todos",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (
        (lists.open_total, lists.done_total),
        (open as u64, done as u64),
    )
}

/// A small deterministic generator: the same mix of changes every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_totals_equal_a_count_of_the_table_after_concurrent_creates_toggles_and_deletes() {
    let (_database, pool) = migrated(8).await;
    let metrics = Metrics::new();
    let writer = Writer::start(pool.clone(), &metrics, Generation::default());
    let text = TodoText::parse("counted").unwrap();
    let mut ids = Vec::new();
    for _ in 0..300 {
        ids.push(
            writer
                .make(Change::Create(Todo::new(&text)), Actor::Anonymous)
                .await
                .unwrap()
                .id,
        );
    }

    // Through the writer: toggles, renames, deletes (some of todos already
    // gone) and creates, all handed in at once, so they are written in
    // batches on several connections.
    let mut dice = Dice(0x5eed);
    let mut changes = Vec::new();
    for n in 0..1200 {
        let id = ids[dice.roll(ids.len())];
        changes.push(match n % 6 {
            0 => Change::Create(Todo::new(&text)),
            1 => Change::Delete(id),
            2 => Change::Update {
                id,
                done: Some(dice.roll(2) == 0),
                text: Some(TodoText::parse("renamed and counted").unwrap()),
            },
            _ => Change::Update {
                id,
                done: Some(dice.roll(2) == 0),
                text: None,
            },
        });
    }
    let through_writer = join_all(
        changes
            .into_iter()
            .map(|change| writer.make(change, Actor::Anonymous)),
    );
    // Beside it, statements that move many rows at once, on connections
    // of their own.
    let by_hand = join_all((0..40).map(|n| {
        let pool = pool.clone();
        let some: Vec<Uuid> = ids
            .iter()
            .skip(n % 7)
            .step_by(7)
            .map(|id| id.as_uuid())
            .collect();
        async move {
            // Rows locked in id order, as the app's statements lock them,
            // so these never deadlock with each other or with the app.
            let statement = if n % 2 == 0 {
                "update todos set done = not done where id in
                 (select id from todos where id = any($1) order by id for update)"
            } else {
                "update todos set done = true where id in
                 (select id from todos where id = any($1) order by id for update)"
            };
            sqlx::query(statement).bind(&some).execute(&pool).await
        }
    }));
    let (written, by_hand) = tokio::join!(through_writer, by_hand);
    for result in by_hand {
        result.unwrap();
    }
    let failed: Vec<_> = written
        .iter()
        .filter(|result| !matches!(result, Ok(_) | Err(AppError::TodoNotFound)))
        .collect();
    assert!(
        failed.is_empty(),
        "only changes to deleted todos fail: {failed:?}"
    );

    let (shown, counted) = totals(&pool).await;
    assert_eq!(shown, counted, "(open, done) shown vs counted");
    assert!(
        counted.0 > 0 && counted.1 > 0,
        "both lists hold todos: {counted:?}"
    );
}

#[tokio::test]
async fn todos_stored_before_the_totals_were_maintained_are_counted() {
    let database = test_database().await.unwrap();
    let pool = PgPoolOptions::new().connect(&database.url).await.unwrap();
    // Every migration before the one that maintains the totals.
    migrate_to_before(&pool, 20261205000001).await;
    sqlx::query(
        "insert into todos (id, text, done)
         select gen_random_uuid(), 'from before', n % 3 = 0 from generate_series(1, 30) as n",
    )
    .execute(&pool)
    .await
    .unwrap();

    MIGRATOR.run(&pool).await.unwrap();

    let (shown, counted) = totals(&pool).await;
    assert_eq!(counted, (20, 10));
    assert_eq!(shown, counted);
}

#[tokio::test]
async fn emptying_the_table_empties_the_totals() {
    let (_database, pool) = migrated(2).await;
    let writer = Writer::start(pool.clone(), &Metrics::new(), Generation::default());
    let text = TodoText::parse("soon gone").unwrap();
    for _ in 0..5 {
        writer
            .make(Change::Create(Todo::new(&text)), Actor::Anonymous)
            .await
            .unwrap();
    }
    sqlx::query("truncate todos").execute(&pool).await.unwrap();

    let (shown, counted) = totals(&pool).await;
    assert_eq!(counted, (0, 0));
    assert_eq!(shown, counted);
}
