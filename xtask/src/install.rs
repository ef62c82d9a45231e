//! Installs the tools the commands need, when they are missing.
//!
//! A newcomer's machine has Rust and nothing else. As root (CI, containers)
//! missing Debian packages are installed with apt-get; otherwise the exact
//! command is printed and the run stops, since sudo is the user's call.
//! Cargo tools install without root.
//!
//! [`REQUIREMENTS`] is the one list of what can be installed and how; a
//! command asks for the [`Tool`]s it needs.

use anyhow::bail;

use crate::workspace::{Workspace, run_checked, succeeds};

/// Something a command needs on the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Postgres,
    NatsServer,
    Nextest,
    SqlxCli,
}

/// Every tool, for `cargo xtask install`.
pub const ALL: &[Tool] = &[
    Tool::Postgres,
    Tool::NatsServer,
    Tool::Nextest,
    Tool::SqlxCli,
];

/// How a tool is installed.
enum Install {
    /// Debian packages.
    Apt(&'static [&'static str]),
    /// `cargo install <args>`; `{tools}` stands for `target/tools` (the
    /// `--root` for tools kept inside the workspace).
    Cargo(&'static [&'static str]),
}

struct Requirement {
    tool: Tool,
    /// For messages.
    name: &'static str,
    present: fn(&Workspace) -> bool,
    install: Install,
}

/// Every installable tool. Later needs (chromium, prometheus, playwright-core
/// from npm, a Python venv) are added here as entries, with an `Install`
/// variant for npm/pip when they come.
const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        tool: Tool::Postgres,
        name: "PostgreSQL server",
        present: |_| test_support::postgres_bin_dir().is_some(),
        install: Install::Apt(&["postgresql"]),
    },
    Requirement {
        tool: Tool::NatsServer,
        name: "nats-server",
        present: |_| test_support::nats_server_path().is_some(),
        install: Install::Apt(&["nats-server"]),
    },
    Requirement {
        tool: Tool::Nextest,
        name: "cargo-nextest",
        present: |workspace| succeeds(workspace.cargo().args(["nextest", "--version"])),
        install: Install::Cargo(&["cargo-nextest", "--locked"]),
    },
    Requirement {
        tool: Tool::SqlxCli,
        name: "sqlx-cli 0.8",
        present: sqlx_cli_present,
        install: Install::Cargo(&[
            "sqlx-cli",
            "--version",
            "~0.8",
            "--no-default-features",
            "--features",
            "postgres,rustls",
            "--locked",
            "--root",
            "{tools}",
        ]),
    },
];

/// Installs whichever of `tools` is missing.
pub fn ensure(workspace: &Workspace, tools: &[Tool]) -> anyhow::Result<()> {
    let missing: Vec<&Requirement> = REQUIREMENTS
        .iter()
        .filter(|requirement| tools.contains(&requirement.tool))
        .filter(|requirement| !(requirement.present)(workspace))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "missing: {}",
        missing
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    );

    let packages: Vec<&str> = missing
        .iter()
        .filter_map(|requirement| match requirement.install {
            Install::Apt(packages) => Some(packages),
            Install::Cargo(_) => None,
        })
        .flatten()
        .copied()
        .collect();
    if !packages.is_empty() {
        apt_install(workspace, &packages)?;
    }

    for requirement in &missing {
        if let Install::Cargo(args) = requirement.install {
            let tools_root = workspace.tools_root();
            let mut command = workspace.cargo();
            command.arg("install");
            for arg in args {
                if *arg == "{tools}" {
                    command.arg(&tools_root);
                } else {
                    command.arg(arg);
                }
            }
            run_checked(&mut command, &format!("installing {}", requirement.name))?;
        }
    }

    let still_missing: Vec<&str> = missing
        .iter()
        .filter(|requirement| !(requirement.present)(workspace))
        .map(|requirement| requirement.name)
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "still missing after installing: {}",
            still_missing.join(", ")
        );
    }
    Ok(())
}

fn apt_install(workspace: &Workspace, packages: &[&str]) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("{}", sudo_hint(packages));
    }
    run_checked(
        workspace
            .command("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update",
    )?;
    run_checked(
        workspace
            .command("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {}", packages.join(" ")),
    )
}

/// What a user without root is told to run.
fn sudo_hint(packages: &[&str]) -> String {
    format!(
        "these Debian packages are missing: {}. Install them with\n\n    \
         sudo apt-get update && sudo apt-get install -y --no-install-recommends {}\n\n\
         and run this command again",
        packages.join(", "),
        packages.join(" ")
    )
}

/// sqlx-cli 0.8 (matching the sqlx the workspace uses, so `.sqlx/` files
/// agree), in `target/tools/bin` or anywhere on `PATH`.
fn sqlx_cli_present(workspace: &Workspace) -> bool {
    match workspace.cargo().args(["sqlx", "--version"]).output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).contains(" 0.8.")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_without_root_are_given_the_exact_command() {
        let hint = sudo_hint(&["postgresql", "nats-server"]);
        assert!(hint.contains(
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends postgresql nats-server"
        ));
    }

    #[test]
    fn every_tool_has_exactly_one_requirement() {
        for tool in ALL {
            let entries = REQUIREMENTS.iter().filter(|r| r.tool == *tool).count();
            assert_eq!(entries, 1, "{tool:?}");
        }
    }
}
