//! `.sqlx/`: the offline query data that lets the app build without a
//! database. `cargo xtask prepare-sqlx` regenerates it; `cargo xtask test`
//! checks it is current.
//!
//! Both run the migrations on a fresh database first, so the data describes
//! exactly the schema in `app/migrations`.

use std::process::Command;

use anyhow::Context;
use test_support::TestDatabase;

use crate::install::{self, Tool};
use crate::workspace::{Workspace, run_checked};

/// `cargo xtask prepare-sqlx`.
pub fn run(workspace: &Workspace) -> anyhow::Result<()> {
    install::ensure(workspace, &[Tool::Postgres, Tool::SqlxCli])?;
    let database = migrated_database(workspace)?;
    run_checked(
        &mut sqlx_prepare(workspace, &database, &[]),
        "cargo sqlx prepare",
    )?;
    println!("\n.sqlx/ is up to date; commit it with the query change.");
    Ok(())
}

/// Fails when `.sqlx/` does not match the queries in the code.
pub fn check(workspace: &Workspace) -> anyhow::Result<()> {
    let database = migrated_database(workspace)?;
    run_checked(
        &mut sqlx_prepare(workspace, &database, &["--check"]),
        "cargo sqlx prepare --check (if it failed, run `cargo xtask prepare-sqlx` and commit .sqlx/)",
    )
}

/// `cargo sqlx prepare --workspace [extra] -- --all-targets -p app` against
/// `database`.
///
/// Only the app's crate has query macros; checking it alone spares
/// building the rest of the workspace a third time. A macro added in
/// another crate is still caught: without its data in `.sqlx/`, that
/// crate's offline build (clippy, the tests) fails.
///
/// It builds in its own target folder, `target/sqlx`: when sqlx-cli cannot
/// force the query crates to recompile (it touches their sources) it falls
/// back to `cargo clean`, which must not wipe the shared `target/` (with
/// `up`'s data in `target/stack` and the tools in `target/tools`).
fn sqlx_prepare(workspace: &Workspace, database: &TestDatabase, extra: &[&str]) -> Command {
    let mut command = workspace.cargo();
    command
        .args(["sqlx", "prepare", "--workspace"])
        .args(extra)
        .args(["--", "--all-targets", "-p", "app"])
        .env("CARGO_TARGET_DIR", workspace.root().join("target/sqlx"))
        .env("DATABASE_URL", &database.url)
        // Overrides `.cargo/config.toml`: the macros must ask the database.
        .env("SQLX_OFFLINE", "false");
    command
}

/// A new database (in a private cluster unless `DATABASE_URL` is set) with
/// the app's migrations applied.
fn migrated_database(workspace: &Workspace) -> anyhow::Result<TestDatabase> {
    let runtime = tokio::runtime::Runtime::new().context("failed to start a tokio runtime")?;
    let database = runtime.block_on(test_support::test_database())?;
    run_checked(
        workspace
            .command("sqlx")
            .args(["migrate", "run", "--source", "app/migrations"])
            // Through the environment rather than `--database-url`, so a
            // password in a user-supplied URL is not echoed into logs.
            .env("DATABASE_URL", &database.url),
        "sqlx migrate run",
    )?;
    Ok(database)
}
