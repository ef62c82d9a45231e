//! `cargo xtask fuzz [--runs N]`: every cargo-fuzz target in `fuzz/`, N
//! inputs each (default 10,000); fails if any target crashes.
//!
//! The targets cover every parser of outside input: todo text, the browser
//! routes' form bodies, the JSON API's bodies, the list's query string, event
//! payloads and their rendering in each webhook format, and the
//! broadcaster's signing secret and configuration (see `fuzz/Cargo.toml`).
//!
//! cargo-fuzz passes nightly-only flags (`-Zsanitizer=address`); the stable
//! toolchain accepts them with `RUSTC_BOOTSTRAP=1` and refuses them without
//! ("the option `Z` is only accepted on the nightly compiler"). Targets are
//! built as cargo-fuzz does by default: optimised, with debug assertions and
//! overflow checks, under AddressSanitizer (Docket forbids `unsafe`, but its
//! dependencies use it). Panics, failed assertions, a per-input timeout (a
//! hang) and runaway memory are crashes. Crashing inputs are kept in
//! `fuzz/artifacts/<target>/`; the corpus grows in `target/fuzz/corpus/`,
//! starting from the committed seeds in `fuzz/seeds/<target>/` (valid events
//! and queries, which random bytes would take long to find).

use std::path::Path;
use std::time::Instant;

use anyhow::bail;

use crate::install::{self, Tool};
use crate::workspace::{Workspace, run_checked};

/// Every target in `fuzz/Cargo.toml`.
pub const TARGETS: &[&str] = &[
    "todo_text",
    "form_body",
    "api_json",
    "list_query",
    "event_payload",
    "webhook_config",
];

/// Seconds one input may take before libFuzzer reports a hang.
const INPUT_TIMEOUT_SECS: u32 = 10;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Inputs per target.
    #[arg(long, default_value_t = 10_000)]
    pub runs: u64,
}

pub fn run(workspace: &Workspace, args: &Args) -> anyhow::Result<()> {
    install::ensure(workspace, &[Tool::CargoFuzz])?;
    run_checked(&mut cargo_fuzz(workspace, "build"), "cargo fuzz build")?;
    let mut crashed = Vec::new();
    for target in TARGETS {
        let started = Instant::now();
        let corpus = workspace.root().join("target/fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut command = cargo_fuzz(workspace, "run");
        command.arg(target).arg(&corpus);
        // Read-only seeds: new inputs go to the first corpus folder only.
        let seeds = workspace.root().join("fuzz/seeds").join(target);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        command.args([
            "--".to_owned(),
            format!("-runs={}", args.runs),
            format!("-timeout={INPUT_TIMEOUT_SECS}"),
            "-rss_limit_mb=2048".to_owned(),
            "-print_final_stats=1".to_owned(),
        ]);
        let result = run_checked(&mut command, &format!("fuzz target `{target}`"));
        println!(
            "fuzz target `{target}`: {} runs in {:.1} s: {}",
            args.runs,
            started.elapsed().as_secs_f64(),
            if result.is_ok() {
                "no crash"
            } else {
                "CRASHED"
            }
        );
        if result.is_err() {
            crashed.push(*target);
        }
    }
    if !crashed.is_empty() {
        bail!(
            "fuzz targets crashed: {} (the inputs are in {})",
            crashed.join(", "),
            Path::new("fuzz/artifacts").display()
        );
    }
    Ok(())
}

/// `cargo fuzz <subcommand>` on `fuzz/`, built into `target/fuzz` with
/// debug assertions and overflow checks on, under AddressSanitizer.
fn cargo_fuzz(workspace: &Workspace, subcommand: &str) -> std::process::Command {
    let mut command = workspace.cargo();
    command
        .args(["fuzz", subcommand, "--fuzz-dir", "fuzz", "--target-dir"])
        .arg(workspace.root().join("target/fuzz"))
        .args(["--release", "--debug-assertions", "--sanitizer", "address"])
        .env("RUSTC_BOOTSTRAP", "1")
        .env("SQLX_OFFLINE", "true");
    command
}
