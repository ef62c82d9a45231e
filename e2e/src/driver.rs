//! Headless Chromium through the Playwright driver.
//!
//! playwright-rs talks to Playwright's Node.js driver. Its build script would
//! download one from the internet; the workspace builds with
//! `PLAYWRIGHT_SKIP_DRIVER_DOWNLOAD=1` instead and runs the npm package
//! `playwright-core` at the version playwright-rs speaks ([`DRIVER_VERSION`]),
//! installed under `target/tools/playwright`. playwright-rs finds it through
//! `PLAYWRIGHT_NODE_EXE` and `PLAYWRIGHT_CLI_JS`; `.cargo/config.toml`
//! defaults both, and an exported value wins. The browser is the system's
//! Chromium (Debian's `chromium` package), not a downloaded one.

use std::path::{Path, PathBuf};

use playwright_rs::api::LaunchOptions;
use playwright_rs::{Browser, Playwright};

use crate::config::Settings;
use crate::error::Error;

/// The `playwright-core` version playwright-rs 0.20.1 speaks.
pub const DRIVER_VERSION: &str = playwright_rs::PLAYWRIGHT_VERSION;

/// Where `cargo xtask test` installs the driver, relative to the target folder.
const DRIVER_FOLDER: &str = "tools/playwright";

/// Chromium flags: headless in a container (no sandbox as root, no GPU), and
/// no traffic of its own (updates, sync, field trials), since tests may only
/// talk to the app.
const CHROMIUM_ARGS: &[&str] = &[
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
];

/// [`CHROMIUM_ARGS`], and the hosts `E2E_RESOLVE` names mapped to their
/// addresses (every other name still resolves as usual).
fn chromium_args(settings: &Settings) -> Vec<String> {
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|arg| arg.to_string()).collect();
    if !settings.resolve.is_empty() {
        let rules: Vec<String> = settings
            .resolve
            .iter()
            .map(|(host, address)| format!("MAP {host} {address}"))
            .collect();
        args.push(format!("--host-resolver-rules={}", rules.join(", ")));
    }
    args
}

/// A running driver and browser; [`Chromium::close`] stops both.
pub struct Chromium {
    playwright: Playwright,
    browser: Browser,
}

impl Chromium {
    /// Fails, saying what to install, unless the driver and the browser
    /// are where the settings say.
    pub fn check_installed(settings: &Settings) -> Result<(), Error> {
        check_driver()?;
        if !settings.chromium.is_file() {
            return Err(Error::ChromiumMissing(settings.chromium.clone()));
        }
        Ok(())
    }

    /// Checks the driver and browser are installed, then launches both.
    pub async fn launch(settings: &Settings) -> Result<Chromium, Error> {
        Chromium::check_installed(settings)?;
        let playwright = Playwright::launch().await?;
        // The app marks what tests look for with `data-test`, not `data-testid`.
        playwright
            .selectors()
            .set_test_id_attribute("data-test")
            .await?;
        let options = LaunchOptions::new()
            .headless(true)
            .executable_path(settings.chromium.display().to_string())
            .args(chromium_args(settings))
            .timeout(30_000.0);
        let browser = match playwright.chromium().launch_with_options(options).await {
            Ok(browser) => browser,
            Err(error) => {
                let _ = playwright.shutdown().await;
                return Err(error.into());
            }
        };
        Ok(Chromium {
            playwright,
            browser,
        })
    }

    pub fn browser(&self) -> &Browser {
        &self.browser
    }

    /// Closes the browser and stops the driver.
    pub async fn close(self) {
        // Nothing useful can be done about a browser that does not close
        // cleanly at the end of a test; the driver kills it on shutdown.
        let _ = self.browser.close().await;
        let _ = self.playwright.shutdown().await;
    }
}

/// The command that installs the driver where the defaults look for it.
pub fn install_command() -> String {
    format!("npm install --prefix target/tools/playwright playwright-core@{DRIVER_VERSION}")
}

/// Where the driver's `cli.js` is when installed by [`install_command`].
pub fn default_cli_js() -> PathBuf {
    crate::target_dir()
        .join(DRIVER_FOLDER)
        .join("node_modules/playwright-core/cli.js")
}

/// Fails with what to run when the driver variables point nowhere, instead of
/// playwright-rs's generic "driver not found".
fn check_driver() -> Result<(), Error> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(node), Some(cli)) = (var("PLAYWRIGHT_NODE_EXE"), var("PLAYWRIGHT_CLI_JS")) else {
        return Err(Error::DriverUnset {
            default_cli: default_cli_js(),
        });
    };
    let cli = PathBuf::from(cli);
    if !cli.is_file() {
        return Err(Error::DriverMissing {
            path: cli,
            install: install_command(),
        });
    }
    if !node_exists(&node) {
        return Err(Error::NodeMissing(node));
    }
    Ok(())
}

/// A bare name (`node`) is looked up on `PATH`, as the driver's spawn will.
fn node_exists(node: &str) -> bool {
    let path = Path::new(node);
    if path.components().count() > 1 {
        return path.is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(node).is_file()))
        .unwrap_or(false)
}
