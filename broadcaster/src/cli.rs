//! The command line: no subcommand runs the service, `sink` the receiver.

use clap::{Parser, Subcommand};

use crate::sink::SinkArgs;

/// Docket broadcaster. Without a subcommand, runs the service configured
/// from the environment (see the README's configuration table).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A local webhook receiver that verifies signatures and prints each message.
    Sink(SinkArgs),
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
    fn parses_the_sink_subcommand() {
        let cli = Cli::try_parse_from([
            "broadcaster",
            "sink",
            "--port",
            "9100",
            "--secret",
            "whsec_x",
        ])
        .unwrap();
        let Some(Command::Sink(args)) = cli.command else {
            panic!("expected sink")
        };
        assert_eq!(args.port, 9100);
    }
}
