//! `dummysite`: run the controller, or print its CRD.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dummysite::Config;
use service_kit::Env;

/// The DummySite controller: serves in the cluster a copy of each page a
/// DummySite names.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Watch DummySites and reconcile them (the default).
    Run,
    /// Print the CustomResourceDefinition as YAML.
    Crd,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or(Command::Run) {
        Command::Crd => {
            print!("{}", dummysite::crd_yaml());
            Ok(())
        }
        Command::Run => {
            telemetry::init(telemetry::LogFormat::from_env()?);
            let config = Config::read(&Env::process()).context("invalid configuration")?;
            dummysite::run(config).await
        }
    }
}
