//! `todo-app`: reads its configuration from the environment and serves until SIGTERM.

use std::process::ExitCode;

use app::faults::Faults;
use app::startup::cancel_on_signal;
use app::{Application, Config};
use service_kit::Env;
use telemetry::LogFormat;
use tokio_util::sync::CancellationToken;

// glibc's allocator spent a tenth of a page request in malloc and free, and
// its per-thread arenas held memory; mimalloc does neither (`cargo xtask bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let format = match LogFormat::from_env() {
        Ok(format) => format,
        Err(e) => return fail(&e),
    };
    telemetry::init(format);
    let config = match Config::read(&Env::process()) {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    // Test-only: see app::faults; without `--test-faults` this is `None`.
    let faults = match Faults::from_args(std::env::args().skip(1), |name| std::env::var(name).ok())
    {
        Ok(faults) => faults,
        Err(e) => return fail(&e),
    };
    let app = match Application::build(config).await {
        Ok(app) => app.with_faults(faults),
        Err(e) => return fail(&*e),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    match app.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&*e),
    }
}

/// Start-up errors go to stderr as one plain line (people read these) and to the log.
fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("todo-app: {error:#}");
    tracing::error!(error = format!("{error:#}"), "todo-app cannot start");
    ExitCode::FAILURE
}
