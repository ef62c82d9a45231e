//! podman as this machine (and a GitHub runner) can run it: as root, with
//! the `runc` runtime and explicit ulimits.
//!
//! crun refuses hybrid cgroups (v1 with a v2 mount, as on this machine's
//! kernel) and podman's default rlimits fail with EPERM in such sandboxes,
//! so every podman call reads a `containers.conf` written under
//! `target/images/` that says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

use crate::workspace::{Workspace, describe};

const CONTAINERS_CONF: &str = "\
[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]
[engine]
runtime = \"runc\"
";

/// Runs podman and skopeo with the project's container settings.
#[derive(Debug, Clone)]
pub struct Podman {
    workspace: Workspace,
    conf: PathBuf,
}

impl Podman {
    pub fn new(workspace: &Workspace) -> anyhow::Result<Podman> {
        let dir = images_dir(workspace);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let conf = dir.join("containers.conf");
        std::fs::write(&conf, CONTAINERS_CONF)
            .with_context(|| format!("writing {}", conf.display()))?;
        Ok(Podman {
            workspace: workspace.clone(),
            conf,
        })
    }

    /// `podman logs NAME`, as a shell command line another process runs
    /// (the E2E suite's `E2E_BROADCASTER_LOG`): with this run's
    /// configuration, the container's stderr merged into its stdout.
    pub fn logs_command_line(&self, name: &str) -> String {
        format!(
            "CONTAINERS_CONF='{}' podman logs '{name}' 2>&1",
            self.conf.display()
        )
    }

    /// `podman ARGS…` from the workspace root.
    pub fn command(&self) -> Command {
        let mut command = self.workspace.command("podman");
        command.env("CONTAINERS_CONF", &self.conf);
        command
    }

    /// Runs `podman ARGS…` with its output shown; fails naming `what`.
    pub fn run(&self, args: &[&str], what: &str) -> anyhow::Result<()> {
        let mut command = self.command();
        command.args(args);
        crate::workspace::run_checked(&mut command, what)
    }

    /// Runs `podman ARGS…` and returns its stdout; fails with its stderr.
    pub fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = self.command();
        command.args(args);
        let output = captured(&mut command)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub fn image_exists(&self, reference: &str) -> bool {
        let mut command = self.command();
        command.args(["image", "exists", reference]);
        crate::workspace::succeeds(&mut command)
    }

    /// A label of a local image, if set.
    pub fn label(&self, reference: &str, label: &str) -> anyhow::Result<Option<String>> {
        let value = self.output(&[
            "image",
            "inspect",
            "--format",
            &format!("{{{{index .Labels \"{label}\"}}}}"),
            reference,
        ])?;
        Ok((!value.is_empty() && value != "<no value>").then_some(value))
    }

    /// The image's uncompressed size in bytes, as podman reports it.
    pub fn size(&self, reference: &str) -> anyhow::Result<u64> {
        let size = self.output(&["image", "inspect", "--format", "{{.Size}}", reference])?;
        size.parse()
            .with_context(|| format!("podman reported size {size:?} for {reference}"))
    }

    /// `skopeo copy` of a local image to an OCI layout `dir` (tag `tag`).
    pub fn export_oci(&self, reference: &str, dir: &Path, tag: &str) -> anyhow::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        // skopeo makes the layout's directory but not its parents.
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut command = self.workspace.command("skopeo");
        command
            .env("CONTAINERS_CONF", &self.conf)
            .arg("copy")
            .arg("--quiet")
            .arg(format!("containers-storage:{reference}"))
            .arg(format!("oci:{}:{tag}", dir.display()));
        captured(&mut command).map(drop)
    }
}

/// Where images, stand-in sources and OCI layouts go.
pub fn images_dir(workspace: &Workspace) -> PathBuf {
    workspace.root().join("target/images")
}

/// Runs a command to completion, failing with what it printed.
pub fn captured(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("could not run {}", describe(command)))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            describe(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}
