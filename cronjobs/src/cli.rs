//! The command line. Every setting comes from the environment (see `config`),
//! so the only argument is the file `restore` reads.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cronjobs",
    version,
    about = "Docket's scheduled and on-demand jobs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the todo "Read <url>" for a random Wikipedia article, once.
    WikipediaTodo,
    /// Run `wikipedia-todo` for every request on NATS `jobs.wikipedia-todo`.
    Listen,
    /// Take one request from the JetStream consumer JOBS/wikipedia-todo, run
    /// `wikipedia-todo` for it, acknowledge it, exit (a scaler's Job).
    NextRequest,
    /// Dump DATABASE_URL into BACKUP_DIR, verify it, keep the newest BACKUP_KEEP.
    Backup,
    /// Restore a dump made by `backup` into DATABASE_URL.
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A file written by `cronjobs backup`.
    pub file: PathBuf,
}

impl Command {
    /// The subcommand as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::WikipediaTodo => "wikipedia-todo",
            Command::Listen => "listen",
            Command::NextRequest => "next-request",
            Command::Backup => "backup",
            Command::Restore(_) => "restore",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn restore_needs_a_file() {
        assert!(Cli::try_parse_from(["cronjobs", "restore"]).is_err());
        let cli = Cli::try_parse_from(["cronjobs", "restore", "x.dump"]).unwrap();
        assert_eq!(cli.command.name(), "restore");
    }
}
