//! The data the scenarios run on: `rows` todos written straight into the
//! table (a million through the API would take longer than the bench), the
//! same rows in the reference server's table, and the state each run is put
//! back to.
//!
//! Seeded ids are UUIDv7 stamped a day in the past, one millisecond apart,
//! as if the todos had been created over time; everything a run creates is
//! newer, so putting the table back is deleting what is newer than the
//! newest seed.

use anyhow::{Context, bail};
use sqlx::PgPool;
use uuid::{NoContext, Timestamp, Uuid};

/// Rows per insert statement while seeding.
const CHUNK: u64 = 50_000;
/// Todos the toggle scenario flips, spread evenly over the seeded ones.
const TOGGLED: u64 = 50;
/// Each third seeded todo is done, as a list kept for a while would be.
const DONE_EVERY: u64 = 3;
/// The reference server's table: the shape of Docket's (columns, checks,
/// indexes) without its triggers, so its inserts are bare inserts.
pub const REFERENCE_TABLE: &str = "reference_todos";

/// What the scenarios need to know of the seeded rows.
pub struct Seeds {
    pub rows: u64,
    /// Ids the toggle scenario flips.
    pub toggled: Vec<Uuid>,
    /// The newest seeded id: anything newer was made by a run.
    pub newest: Uuid,
}

/// Empties both tables and fills them with `rows` todos.
pub async fn seed(pool: &PgPool, rows: u64) -> anyhow::Result<Seeds> {
    println!("seeding {rows} todos");
    sqlx::raw_sql(&format!(
        "create table if not exists {REFERENCE_TABLE} (like todos including all);
         truncate todos, {REFERENCE_TABLE}"
    ))
    .execute(pool)
    .await
    .context("emptying the tables")?;
    let start = Uuid::now_v7()
        .get_timestamp()
        .context("a v7 id has a timestamp")?
        .to_unix()
        .0
        - 86_400;
    // The n-th seed is n milliseconds after the start.
    let id = |n: u64| {
        Uuid::new_v7(Timestamp::from_unix(
            NoContext,
            start + n / 1000,
            (n % 1000) as u32 * 1_000_000,
        ))
    };
    let step = (rows / TOGGLED).max(1);
    let mut toggled = Vec::new();
    let mut newest = Uuid::nil();
    let mut first = 0;
    while first < rows {
        let last = (first + CHUNK).min(rows);
        // v7 ids carry random bits: each is made once, and kept if needed.
        let ids: Vec<Uuid> = (first..last).map(id).collect();
        for (n, id) in (first..last).zip(&ids) {
            if n % step == 0 && toggled.len() < TOGGLED as usize {
                toggled.push(*id);
            }
        }
        newest = ids.last().copied().unwrap_or(newest);
        let texts: Vec<String> = (first..last)
            .map(|n| format!("Seeded todo {n}: water the plants, then call the bank"))
            .collect();
        let dones: Vec<bool> = (first..last).map(|n| n % DONE_EVERY == 0).collect();
        sqlx::query(
            "insert into todos (id, text, done)
             select * from unnest($1::uuid[], $2::text[], $3::bool[])",
        )
        .bind(&ids)
        .bind(&texts)
        .bind(&dones)
        .execute(pool)
        .await
        .context("seeding todos")?;
        first = last;
    }
    sqlx::raw_sql(&format!(
        "insert into {REFERENCE_TABLE} select * from todos"
    ))
    .execute(pool)
    .await
    .context("seeding the reference's table")?;
    // `todo_counts` too: the earlier size's writes left it full of dead rows.
    vacuum(pool).await?;
    settle(pool).await?;
    let seeds = Seeds {
        rows,
        toggled,
        newest,
    };
    let (stored, toggled): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where id = any($1)) from todos where id <= $2",
    )
    .bind(&seeds.toggled)
    .bind(seeds.newest)
    .fetch_one(pool)
    .await
    .context("checking the seeded todos")?;
    if stored as u64 != rows || toggled as usize != seeds.toggled.len() {
        bail!(
            "seeded {stored} of {rows} todos up to the newest, {toggled} of {} to toggle",
            seeds.toggled.len()
        );
    }
    Ok(seeds)
}

/// Puts both tables back to the seeded rows (the toggled todos' `done` may
/// differ, which no scenario depends on).
pub async fn reset(pool: &PgPool, seeds: &Seeds) -> anyhow::Result<()> {
    for table in ["todos", REFERENCE_TABLE] {
        sqlx::query(&format!("delete from {table} where id > $1"))
            .bind(seeds.newest)
            .execute(pool)
            .await
            .with_context(|| format!("resetting {table}"))?;
    }
    vacuum(pool).await
}

/// Clears the dead rows the last run left, so the next measurement starts
/// from the same tables and not amid autovacuum's work on them:
/// `todo_counts` takes an update per change, and a page read after 300,000
/// toggles took 0.57 ms to sum it against 0.16 ms before them and 0.23 ms
/// after a vacuum (PostgreSQL 15, a million todos).
pub async fn vacuum(pool: &PgPool) -> anyhow::Result<()> {
    // Alone and over the simple protocol: VACUUM cannot run in a
    // transaction, nor be prepared.
    sqlx::raw_sql(&format!(
        "vacuum analyze todos, outbox, todo_counts, {REFERENCE_TABLE}"
    ))
    .execute(pool)
    .await
    .context("vacuuming")?;
    Ok(())
}

/// Writes out what seeding left in memory before the first run. A million
/// todos, twice, left about 1.2 GiB of dirty pages, which the kernel wrote
/// back 10 to 15 s into the runs that followed, in the middle of a
/// measurement. PostgreSQL's own dirty buffers go to the kernel with a
/// checkpoint, and the kernel's to the disk with `sync`.
async fn settle(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql("checkpoint")
        .execute(pool)
        .await
        .context("checkpointing after seeding")?;
    tokio::task::spawn_blocking(nix::unistd::sync)
        .await
        .context("writing the seeded tables to disk")?;
    Ok(())
}

/// Adds `count` todos for the delete scenario to remove, newer than the
/// seeds (so the next reset removes any it left).
pub async fn deletable(pool: &PgPool, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
    for chunk in ids.chunks(CHUNK as usize) {
        sqlx::query(
            "insert into todos (id, text)
             select id, 'to be deleted' from unnest($1::uuid[]) as id",
        )
        .bind(chunk)
        .execute(pool)
        .await
        .context("adding todos to delete")?;
    }
    sqlx::raw_sql("vacuum analyze todos")
        .execute(pool)
        .await
        .context("vacuuming")?;
    Ok(ids)
}

/// The `next_cursor` of `GET /api/todos` about half way down the list,
/// walked to as a client would, 200 todos a page.
pub async fn deep_cursor(
    client: &reqwest::Client,
    app_url: &str,
    rows: u64,
) -> anyhow::Result<Option<String>> {
    let pages = rows / 2 / 200;
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let mut url = format!("{app_url}/api/todos?limit=200");
        if let Some(cursor) = &cursor {
            url.push_str("&cursor=");
            url.push_str(cursor);
        }
        let page: serde_json::Value = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .context("reading a page of /api/todos")?;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(cursor)
}
