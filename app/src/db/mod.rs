//! Queries: small, intent-named functions checked at compile time against
//! the schema (offline data in `.sqlx/`).

use sqlx::postgres::PgConnectOptions;

pub mod idempotency;
pub mod outbox;
pub mod todos;

/// Migrations embedded in the binary. `run` takes a Postgres advisory lock,
/// so replicas starting together apply them once, one after another.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `database` as the app connects to it (its pool and the outbox relay's
/// connection): each statement the app
/// prepares is planned once per connection and the plan kept
/// (`plan_cache_mode = force_generic_plan`). Left to choose, PostgreSQL
/// re-plans a statement whose kept plan it costs above a fresh one, and a
/// kept plan's `limit $1` is costed as a tenth of the table: once the table
/// held a million todos, every read of the lists was planned again, the
/// planning three times the read (0.12 ms against 0.04 ms), and the page
/// read uncached ran 30 % slower. Every statement here is written so that
/// one plan serves all its parameters.
///
/// And no statement reads a table by walking its heap (`enable_seqscan =
/// off`): each has an index on what it looks for, and a kept plan does not
/// see a table's file grow. The outbox's statistics say it is empty however
/// many rows the relay has removed since vacuum last ran (under load, about
/// 500 pages of them a second), so the relay's reads and removals, planned
/// as a scan of a small table, read all of those pages every time; the
/// writers' locking and edits of todos alike, on a table planned when it was
/// small. Without those scans, toggles at 64 connections ran at 0.83× the
/// reference's insert instead of 0.62× (`cargo xtask bench`, 10 s runs).
pub fn connect_options(database: &PgConnectOptions) -> PgConnectOptions {
    database.clone().options([
        ("plan_cache_mode", "force_generic_plan"),
        ("enable_seqscan", "off"),
    ])
}
