//! Reading the lists costs what they show, not what the table holds: the
//! page's read must not step over rows it does not show, however the
//! table's rows fall between the lists, nor be planned again each time
//! because the table grew.

use app::db::todos;
use app::domain::Shown;

use crate::helpers::{connected_as_the_app, rows_read};

/// Todos written over time, a third of them done, then a run of newer
/// open ones (a busy week nobody ticked off): the newest done todo is
/// behind all of those.
const KEPT: i64 = 30_000;
const NEWER_OPEN: i64 = 10_000;

#[tokio::test]
async fn reading_the_lists_fetches_only_the_rows_shown_when_newer_open_todos_hide_the_done_ones() {
    let (_database, pool) = connected_as_the_app().await;
    // Ids in creation order, as the app makes them (UUIDv7): the n-th
    // todo's id sorts after every earlier one.
    sqlx::query(
        "insert into todos (id, text, done)
         select ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
                'todo ' || n, n <= $1 and n % 3 = 0
         from generate_series(1, $1 + $2) as n",
    )
    .bind(KEPT)
    .bind(NEWER_OPEN)
    .execute(&pool)
    .await
    .unwrap();
    // The planner's statistics, as autovacuum would leave them.
    sqlx::query("analyze todos").execute(&pool).await.unwrap();

    // The rows a statement fetched are counted per transaction until it
    // ends, so the reads and the counts share one. The app's connections
    // keep the statement prepared, and after five reads PostgreSQL may
    // plan it once for any limits (a generic plan), so the read measured
    // is the seventh.
    let mut tx = pool.begin().await.unwrap();
    let shown = Shown::default();
    for _ in 0..6 {
        todos::lists(&mut *tx, shown).await.unwrap();
    }
    let before = rows_read(&mut tx, "todos").await;
    let lists = todos::lists(&mut *tx, shown).await.unwrap();
    let after = rows_read(&mut tx, "todos").await;
    // How the connection planned the seven reads of the lists.
    let (generic, custom): (i64, i64) = sqlx::query_as(
        "select sum(generic_plans)::bigint, sum(custom_plans)::bigint from pg_prepared_statements
         where statement like '%from todos where done order by id desc limit $2%'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);

    let rows_shown = lists.open.len() + lists.done.len();
    assert_eq!(
        (lists.open.len(), lists.done.len()),
        (usize::from(shown.open()), usize::from(shown.done())),
        "both lists full"
    );
    assert_eq!(
        (lists.open_total, lists.done_total),
        ((KEPT - KEPT / 3 + NEWER_OPEN) as u64, (KEPT / 3) as u64)
    );
    assert!(
        custom == 0 && generic > 0,
        "planned again for {custom} of the seven reads ({generic} generic plans)"
    );
    assert!(
        fetched <= rows_shown as i64 && scanned == 0,
        "the read fetched {fetched} rows by index and scanned {scanned} to show {rows_shown}"
    );
}
