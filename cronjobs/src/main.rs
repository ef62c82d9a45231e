//! `cronjobs`: parse the command line, set up logging, run one subcommand.
//!
//! A failure ends the process with exit code 1 and one line on stderr that
//! says why (the reason chain joined with `: `), which is what a person reads
//! in `kubectl logs` or a CronJob's failed-job events.

use std::process::ExitCode;

use clap::Parser;
use cronjobs::cli::{Cli, Command};
use telemetry::LogFormat;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let name = cli.command.name();
    match LogFormat::from_env() {
        Ok(format) => telemetry::init(format),
        Err(e) => return fail(name, &anyhow::Error::from(e)),
    }
    let result = match cli.command {
        Command::WikipediaTodo => cronjobs::wikipedia::run().await,
        Command::Listen => cronjobs::listen::run().await,
        Command::NextRequest => cronjobs::next_request::run().await,
        Command::Backup => cronjobs::backup::run_backup().await,
        Command::Restore(args) => cronjobs::backup::run_restore(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(name, &e),
    }
}

fn fail(name: &str, error: &anyhow::Error) -> ExitCode {
    let reason = format!("{error:#}");
    tracing::error!(error = reason, "cronjobs {name} failed");
    eprintln!("cronjobs {name}: {reason}");
    ExitCode::FAILURE
}
