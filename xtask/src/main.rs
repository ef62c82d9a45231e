//! Docket's developer commands, run as `cargo xtask <command>`.
//!
//! - `up`: installs what is missing, starts PostgreSQL, nats-server and the
//!   app on free loopback ports, prints the URL, stops everything on Ctrl-C.
//! - `test`: installs what is missing, then runs every check CI runs (`.ci/run`
//!   is exactly this command).
//! - `prepare-sqlx`: regenerates `.sqlx/` after a query changed.
//! - `install`: installs every tool the others need (e.g. to warm a CI image).
//! - `manifests`: validates the deployment tree offline (also part of `test`).
//! - `schemas --from DIR`: refreshes the vendored schemas in
//!   `kustomize/schemas/` from a folder laid out the same way.
//! - `bench`: measures throughput, latency, memory and the event path
//!   against a reference server (`--quick` for a smoke run).
//! - `coverage`: runs the tests instrumented and reports line coverage per
//!   crate, failing below each crate's floor (`--html` for a browsable
//!   report; `test` measures it on its own run of the tests).
//! - `fuzz`: runs every cargo-fuzz target in `fuzz/` for N inputs
//!   (`--runs N`, default 10,000); fails on a crash.
//! - `images`: builds the three images from `docker/services.Dockerfile` with
//!   podman, exports them as OCI layouts (`--stand-ins`: make local
//!   stand-ins for the base images instead of pulling them; `--smoke`: run
//!   the app's image as the staging pod template says, and the E2E suite
//!   against it).
//!
//! - `api-docs`: writes the OpenAPI document and an HTML page rendering it
//!   into `target/api-docs/` (the release workflow publishes them).
//!
//! Automation lives here, in Rust, rather than in shell scripts: one binary,
//! one subcommand per task, each a `run(..) -> anyhow::Result<()>`.

#[cfg(feature = "api-docs")]
mod api_docs;
mod bench;
mod coverage;
mod fuzz;
mod images;
mod install;
mod llvm_tools;
mod prepare_sqlx;
mod stack;
mod tail;
mod test;
mod up;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workspace::Workspace;

/// Docket's developer commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start Docket locally: PostgreSQL, NATS and the app, until Ctrl-C.
    Up(up::Args),
    /// Run every check CI runs: fmt, clippy, the .sqlx check, all tests.
    Test(test::Args),
    /// Regenerate the offline query data in .sqlx/ after changing a query.
    PrepareSqlx,
    /// Install every tool the other commands need, without running them.
    Install,
    /// Validate kustomize/, argocd/, Dockerfiles and workflows with real tools.
    Manifests,
    /// Refresh the vendored schemas in kustomize/schemas/ from a folder laid out the same way.
    Schemas {
        /// The folder to copy from (e.g. an updated copy of the reference schemas).
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Benchmark the release build against a plain axum + sqlx reference.
    Bench(bench::Args),
    /// Run the tests instrumented; report line coverage per crate against its floor.
    Coverage(coverage::Args),
    /// Run every fuzz target in fuzz/ for N inputs; fail on a crash.
    Fuzz(fuzz::Args),
    /// Build the container images from docker/services.Dockerfile with podman.
    Images(images::Args),
    /// Write the OpenAPI document and its HTML rendering into target/api-docs/.
    ApiDocs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workspace = Workspace::new();
    let result = match cli.command {
        Command::Up(args) => up::run(&workspace, args),
        Command::Test(args) => test::run(&workspace, args),
        Command::PrepareSqlx => prepare_sqlx::run(&workspace),
        Command::Install => install::ensure(&workspace, install::ALL),
        Command::Manifests => install::ensure(
            &workspace,
            &[install::Tool::PythonVenv, install::Tool::Prometheus],
        )
        .and_then(|()| manifests::validate(&test_support::workspace_root())),
        Command::Schemas { from } => manifests::refresh_schemas(workspace.root(), &from),
        Command::Bench(args) => bench::run(&workspace, args),
        Command::Coverage(args) => coverage::run(&workspace, &args),
        Command::Fuzz(args) => fuzz::run(&workspace, &args),
        Command::Images(args) => images::run(&workspace, &args),
        Command::ApiDocs => api_docs(&workspace),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nerror: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "api-docs")]
fn api_docs(workspace: &Workspace) -> anyhow::Result<()> {
    api_docs::run(workspace)
}

/// The bench's release build leaves the app (and so `api-docs`) out.
#[cfg(not(feature = "api-docs"))]
fn api_docs(_: &Workspace) -> anyhow::Result<()> {
    anyhow::bail!("this xtask was built without its `api-docs` feature; run `cargo xtask api-docs`")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_documented_invocations_parse() {
        for args in [
            &["xtask", "up"][..],
            &["xtask", "up", "--fresh"],
            &["xtask", "test"],
            &["xtask", "test", "--faults"],
            &["xtask", "prepare-sqlx"],
            &["xtask", "install"],
            &["xtask", "manifests"],
            &["xtask", "schemas", "--from", "/tmp/schemas"],
            &["xtask", "images"],
            &["xtask", "images", "--stand-ins"],
            &["xtask", "bench"],
            &["xtask", "bench", "--quick"],
            &["xtask", "coverage"],
            &["xtask", "coverage", "--html"],
            &["xtask", "fuzz"],
            &["xtask", "fuzz", "--runs", "100"],
            &["xtask", "images", "--stand-ins", "--smoke"],
            &["xtask", "api-docs"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
        assert!(Cli::try_parse_from(["xtask", "up", "--no-such-flag"]).is_err());
    }
}
