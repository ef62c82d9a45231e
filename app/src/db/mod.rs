//! Queries: small, intent-named functions checked at compile time against
//! the schema (offline data in `.sqlx/`).

pub mod idempotency;
pub mod outbox;
pub mod todos;

/// Migrations embedded in the binary. `run` takes a Postgres advisory lock,
/// so replicas starting together apply them once, one after another.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
