//! `broadcaster`: telemetry, then configuration, then run; or `broadcaster sink`.

use anyhow::Context;
use broadcaster::cli::{Cli, Command};
use broadcaster::{Application, Config};
use clap::Parser;
use service_kit::Env;

// glibc's allocator took about a tenth of the machine's CPU while the
// broadcaster delivered a backlog (`cargo xtask bench --events-only`), as it
// did in the app (see there).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Sink(args)) = cli.command {
        return broadcaster::sink::run(args).await;
    }

    telemetry::init(telemetry::LogFormat::from_env()?);
    let config = Config::read(&Env::process()).context("invalid configuration")?;
    let application = Application::build(config).await.context("cannot start")?;
    application.run_until_stopped().await
}
