//! The workspace the commands act on, and how they run child commands.
//!
//! Every child runs from the workspace root with `target/tools/bin` first on
//! `PATH`, so tools installed there (sqlx-cli) are found without touching the
//! user's environment.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Paths and the environment shared by all commands.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    path: OsString,
}

impl Workspace {
    pub fn new() -> Workspace {
        let root = test_support::workspace_root();
        let tools_bin = root.join("target/tools/bin");
        let inherited = env::var_os("PATH").unwrap_or_default();
        let path = env::join_paths(std::iter::once(tools_bin).chain(env::split_paths(&inherited)))
            .unwrap_or(inherited);
        Workspace { root, path }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where tools installed by `cargo xtask` go (`cargo install --root`).
    pub fn tools_root(&self) -> PathBuf {
        self.root.join("target/tools")
    }

    /// Where `cargo xtask up` keeps its data between runs.
    pub fn stack_dir(&self) -> PathBuf {
        self.root.join("target/stack")
    }

    /// A command run from the root with the tools folder on `PATH`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(&self.root).env("PATH", &self.path);
        command
    }

    /// `cargo`: the one that runs us, so toolchain overrides carry over.
    ///
    /// Without the variables `cargo run` set for xtask itself
    /// (`CARGO_PKG_NAME=xtask`, `CARGO_MANIFEST_DIR`, ...): build scripts
    /// such as ring's rerun when those change, so a nested build that
    /// inherited them would recompile ring and everything above it, and the
    /// next `cargo build` from a shell would compile it all back.
    pub fn cargo(&self) -> Command {
        let mut command = self.command(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        for (key, _) in env::vars_os() {
            if key.to_str().is_some_and(set_by_cargo_run) {
                command.env_remove(key);
            }
        }
        command
    }

    /// `cargo build --workspace --bins --exclude dummysite`: the one build
    /// of the binaries that `test` (for the suites that spawn them) and `up`
    /// share.
    ///
    /// Cargo unifies dependency features over the packages a command
    /// selects, so building only the services (`-p app -p broadcaster`)
    /// gives some dependencies other features than the workspace build and
    /// compiles them again; selecting the same packages reuses every
    /// artifact, and `up` after `test` compiles only what changed. The
    /// DummySite controller is left out: nothing here runs it (it needs a
    /// Kubernetes API server), and its client stack is the slowest part of
    /// the workspace to build.
    pub fn build_binaries(&self) -> Command {
        let mut command = self.cargo();
        command.args(["build", "--workspace", "--bins", "--exclude", "dummysite"]);
        command
    }
}

/// Whether `cargo run` sets this variable for the program it runs.
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
}

/// Runs a command with inherited output; fails naming `what` if it fails.
pub fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<()> {
    println!("$ {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("{what}: could not run {}", describe(command)))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Whether a command runs and exits successfully (output discarded).
pub fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `program arg arg`, for logs.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
