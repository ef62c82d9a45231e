//! `cargo xtask test`: every check CI runs, in order, failing fast.
//!
//! 1. install what is missing
//! 2. `cargo fmt --check`
//! 3. clippy with warnings denied (and on xtask without `api-docs`, as the
//!    bench builds it)
//! 4. `.sqlx/` matches the queries
//! 5. [`static_checks`]: checks that need no running services: the
//!    deployment manifests, and cargo-deny (licenses, bans, sources)
//! 6. all tests with nextest, against one private PostgreSQL and NATS (or
//!    `DATABASE_URL` / `NATS_URL` when set), instrumented: the same run
//!    measures line coverage per crate, which must stay above each crate's
//!    floor ([`coverage`])
//! 7. [`end_to_end`]: suites that start their own stack: the browser suite
//!    (`e2e/`), after building every binary it starts, then the fault
//!    scenarios (`faults/`, the tests `#[ignore]`d in a plain nextest run:
//!    each puts a real stack under load, injects a fault and counts)
//! 8. the images: built from the Dockerfiles with podman and run as the
//!    overlays' pod templates say (`cargo xtask images --smoke`; stand-in
//!    bases where the real ones cannot be pulled)
//!
//! A summary of steps and durations ends every run, passing or not.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::coverage;
use crate::fuzz;
use crate::images;
use crate::install::{self, Tool};
use crate::prepare_sqlx;
use crate::stack::TestStack;
use crate::workspace::{Workspace, run_checked as run_command};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run only the fault suite (tests in test binaries named `faults`,
    /// including ignored ones) against the private stack.
    #[arg(long)]
    faults: bool,
}

pub fn run(workspace: &Workspace, args: Args) -> anyhow::Result<()> {
    let mut steps = Steps::default();
    let result = if args.faults {
        fault_suite(workspace, &mut steps)
    } else {
        all_checks(workspace, &mut steps)
    };
    steps.print_summary();
    result
}

fn all_checks(workspace: &Workspace, steps: &mut Steps) -> anyhow::Result<()> {
    // Every tool but wrk (only the bench runs it) and cargo-fuzz (`--faults`).
    let tools: Vec<Tool> = install::ALL
        .iter()
        .copied()
        .filter(|tool| !matches!(tool, Tool::Wrk | Tool::CargoFuzz))
        .collect();
    steps.install(workspace, &tools)?;
    steps.command(
        "fmt",
        workspace.cargo().args(["fmt", "--all", "--check"]),
        "cargo fmt --check (run `cargo fmt --all` to fix)",
    )?;
    steps.command(
        "clippy",
        workspace.cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
        "cargo clippy",
    )?;
    steps.command(
        "clippy, xtask as the bench builds it",
        workspace.cargo().args([
            "clippy",
            "-p",
            "xtask",
            "--no-default-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
        "cargo clippy -p xtask --no-default-features",
    )?;
    steps.run(".sqlx check", || prepare_sqlx::check(workspace))?;
    static_checks(workspace, steps)?;

    let stack = steps.run("start PostgreSQL and NATS", TestStack::from_env_or_start)?;
    steps.run("tests, instrumented (cargo llvm-cov nextest)", || {
        coverage::run_tests(workspace, &stack)
    })?;
    steps.run("line coverage per crate, against its floor", || {
        coverage::report(workspace)
    })?;
    end_to_end(workspace, steps)?;
    // The smoke test starts its own servers for the containers.
    drop(stack);
    steps.run("images and their smoke test (podman)", || {
        images::run(
            workspace,
            &images::Args {
                stand_ins: false,
                smoke: true,
            },
        )
    })?;
    Ok(())
}

/// Checks that need no running services, one `steps.run` each.
fn static_checks(workspace: &Workspace, steps: &mut Steps) -> anyhow::Result<()> {
    steps.run("deployment manifests", || {
        manifests::validate(&test_support::workspace_root())
    })?;
    // Advisories are left out: their database is a GitHub repository, which
    // this machine and CI's cannot reach. The security workflow, on GitHub's
    // runners, checks them (`cargo deny check advisories ...`).
    steps.command(
        "cargo deny (licenses, bans, sources)",
        workspace.cargo().args([
            "deny",
            "--locked",
            "check",
            "--hide-inclusion-graph",
            "licenses",
            "bans",
            "sources",
        ]),
        "cargo deny check licenses bans sources (policy: deny.toml)",
    )?;
    Ok(())
}

/// Suites that start their own stack (the browser E2E suite, the default
/// part of the fault suite).
fn end_to_end(workspace: &Workspace, steps: &mut Steps) -> anyhow::Result<()> {
    // The E2E stack runs the real binaries (todo-app, broadcaster), which
    // `nextest -p e2e` alone would not build.
    steps.command(
        "build binaries",
        workspace.build_binaries().arg("--locked"),
        "cargo build --workspace --bins --exclude dummysite",
    )?;
    steps.run("browser E2E suite (nextest)", || {
        let mut command = workspace.cargo();
        command
            .args(["nextest", "run", "-p", "e2e", "--locked", "--no-fail-fast"])
            .env("SQLX_OFFLINE", "true")
            .envs(install::playwright_env(workspace)?);
        run_command(&mut command, "cargo nextest run -p e2e")
    })?;
    steps.command(
        "fault scenarios (nextest)",
        &mut fault_scenarios(workspace),
        "cargo nextest run (fault scenarios)",
    )?;
    Ok(())
}

/// The fault scenarios: the ignored tests of the `faults` binary. Each
/// starts its own stack, so no `DATABASE_URL` or `NATS_URL` is passed.
fn fault_scenarios(workspace: &Workspace) -> Command {
    let mut command = workspace.cargo();
    command
        .args([
            "nextest",
            "run",
            "-p",
            "faults",
            "--locked",
            "--no-fail-fast",
            "--run-ignored",
            "ignored-only",
        ])
        .env("SQLX_OFFLINE", "true");
    command
}

/// `--faults`: the fault and abuse suite. Its tests live in test binaries
/// named `faults` and may be `#[ignore]`d so the default run skips them.
/// The fuzz targets run here too, not in the default run: their
/// AddressSanitizer build of the whole dependency tree took 12 CPU-minutes
/// (21 min wall on a busy 2-core machine) from cold, for 20 s of fuzzing.
fn fault_suite(workspace: &Workspace, steps: &mut Steps) -> anyhow::Result<()> {
    let tools = [
        Tool::Postgres,
        Tool::NatsServer,
        Tool::Nextest,
        Tool::CargoFuzz,
    ];
    steps.install(workspace, &tools)?;
    // The scenarios spawn the real binaries, which nextest alone would not build.
    steps.command(
        "build binaries",
        workspace
            .build_binaries()
            .arg("--locked")
            .env("SQLX_OFFLINE", "true"),
        "cargo build --workspace --bins --exclude dummysite",
    )?;
    let stack = steps.run("start PostgreSQL and NATS", TestStack::from_env_or_start)?;
    steps.command(
        "fault suite (nextest)",
        nextest(workspace, &stack).args([
            "--run-ignored",
            "all",
            "--no-tests",
            "warn",
            "-E",
            "binary(faults)",
        ]),
        "cargo nextest run (fault suite)",
    )?;
    let fuzz_args = fuzz::Args { runs: 10_000 };
    steps.run("fuzz targets (10,000 runs each)", || {
        fuzz::run(workspace, &fuzz_args)
    })
}

/// `cargo nextest run` over the whole workspace, pointed at the stack, with
/// offline query data; it runs every test even after one fails, so the
/// summary lists all failures.
fn nextest(workspace: &Workspace, stack: &TestStack) -> Command {
    let mut command = workspace.cargo();
    command
        .args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ])
        .env("DATABASE_URL", &stack.database_url)
        .env("NATS_URL", &stack.nats_url)
        .env("SQLX_OFFLINE", "true");
    command
}

/// The steps run so far, for the summary.
#[derive(Debug, Default)]
struct Steps {
    done: Vec<(String, Duration, bool)>,
}

impl Steps {
    /// Runs one named step; its failure names it.
    fn run<T>(
        &mut self,
        name: &str,
        step: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        println!("\n==> {name}");
        let started = Instant::now();
        let result = step();
        self.done
            .push((name.to_string(), started.elapsed(), result.is_ok()));
        result.with_context(|| format!("step `{name}` failed"))
    }

    /// Runs one named step that is one command; `what` names the command
    /// in its failure.
    fn command(&mut self, name: &str, command: &mut Command, what: &str) -> anyhow::Result<()> {
        self.run(name, || run_command(command, what))
    }

    /// The first step of every run: install what is missing.
    fn install(&mut self, workspace: &Workspace, tools: &[Tool]) -> anyhow::Result<()> {
        self.run("install missing tools", || {
            install::ensure(workspace, tools)
        })
    }

    fn print_summary(&self) {
        println!("\nsummary:");
        for (name, took, ok) in &self.done {
            let mark = if *ok { "ok    " } else { "FAILED" };
            println!("  {mark} {name:<32} {:>7.1}s", took.as_secs_f64());
        }
        let total: Duration = self.done.iter().map(|(_, took, _)| *took).sum();
        println!("  total {:>40.1}s", total.as_secs_f64());
    }
}
