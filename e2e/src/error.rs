//! What can stop the suite before a story runs: configuration and tooling.
//!
//! Each message says what to do about it, since the person reading it is
//! usually setting up a machine or a CI job, not debugging the harness.

use std::path::PathBuf;

/// The one error type of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name} is not valid: {reason}")]
    InvalidVariable { name: &'static str, reason: String },

    #[error("{name} is required when E2E_BASE_URL is set ({why})")]
    MissingVariable {
        name: &'static str,
        why: &'static str,
    },

    #[error(
        "PLAYWRIGHT_NODE_EXE and PLAYWRIGHT_CLI_JS are not set. Run the suite through cargo \
         (.cargo/config.toml sets both) or export them:\n\n    \
         export PLAYWRIGHT_NODE_EXE=$(command -v node)\n    \
         export PLAYWRIGHT_CLI_JS={default_cli}\n"
    )]
    DriverUnset { default_cli: PathBuf },

    #[error(
        "the Playwright driver is missing ({path} does not exist). Install it with\n\n    \
         {install}\n\n(`cargo xtask test` does this when it is missing)"
    )]
    DriverMissing { path: PathBuf, install: String },

    #[error(
        "Node.js `{0}` (PLAYWRIGHT_NODE_EXE) was not found; install it with \
         `apt-get install -y nodejs npm` or point PLAYWRIGHT_NODE_EXE at a node binary"
    )]
    NodeMissing(String),

    #[error(
        "Chromium is missing ({0} does not exist); install it with \
         `apt-get install -y chromium` or point E2E_CHROMIUM at a Chromium binary"
    )]
    ChromiumMissing(PathBuf),

    #[error("Playwright: {0}")]
    Playwright(#[from] playwright_rs::Error),
}
