//! Linters for the hand-written files: yamllint, hadolint, actionlint; plus
//! the two workflow rules actionlint does not enforce (SHA-pinned actions and
//! explicit `permissions:`) and that every Dockerfile copies a binary the
//! workspace builds.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::render::{Renders, parse_documents};
use crate::tools::{Tools, combined, run_checked};

/// Hand-written YAML checked with the repository's `.yamllint.yaml`.
const YAML_PATHS: &[&str] = &[
    "kustomize",
    "argocd",
    ".github",
    "deploy",
    "docker-compose.yml",
    ".yamllint.yaml",
];

pub fn yamllint(root: &Path, tools: &Tools, renders: &Renders) -> anyhow::Result<()> {
    // Relative to the root, where yamllint runs: its `ignore:` patterns
    // match the paths as given.
    let paths: Vec<&str> = YAML_PATHS
        .iter()
        .copied()
        .filter(|p| root.join(p).exists())
        .collect();
    let mut cmd = tools.command("yamllint");
    cmd.current_dir(root)
        .arg("--strict")
        .arg("--config-file")
        .arg(root.join(".yamllint.yaml"))
        .args(&paths);
    tools.run(cmd, "yamllint (hand-written YAML)")?;

    // kubectl's output style (unindented sequences, long lines) is not ours
    // to choose: only real errors count there.
    let mut cmd = tools.command("yamllint");
    cmd.args(["--config-data", "relaxed"])
        .args(renders.0.iter().map(|r| &r.file));
    tools.run(cmd, "yamllint (rendered YAML)")?;
    Ok(())
}

pub fn hadolint(root: &Path, tools: &Tools) -> anyhow::Result<()> {
    let dockerfiles = files_with_suffix(root, "docker", ".Dockerfile")?;
    let mut cmd = tools.command("hadolint");
    cmd.args(&dockerfiles);
    tools.run(cmd, "hadolint")?;
    copied_binaries_are_built(root, &dockerfiles)
}

/// Each Dockerfile builds `--bin NAME` for every `target/release/NAME` it
/// copies, and NAME is a binary target of the workspace.
fn copied_binaries_are_built(root: &Path, dockerfiles: &[PathBuf]) -> anyhow::Result<()> {
    let mut cmd =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root).args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
        "--offline",
    ]);
    let metadata: Value = serde_json::from_slice(&run_checked(cmd, "cargo metadata")?.stdout)?;
    let bins: Vec<&str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| t["name"].as_str())
        .collect();

    let mut errors = Vec::new();
    for file in dockerfiles {
        let text = std::fs::read_to_string(file)?;
        errors.extend(
            unbuilt_copies(&text, &bins)
                .into_iter()
                .map(|error| format!("{}: {error}", file.display())),
        );
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n  "));
    }
    Ok(())
}

/// What is wrong with the binaries a Dockerfile copies out of
/// `target/release`, given the workspace's binary targets.
fn unbuilt_copies(dockerfile: &str, bins: &[&str]) -> Vec<String> {
    let copied: Vec<&str> = dockerfile
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("/src/target/release/"))
        .collect();
    let built: Vec<&str> = dockerfile
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.split_whitespace())
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|pair| pair[0] == "--bin")
        .map(|pair| pair[1])
        .collect();
    let mut errors = Vec::new();
    if copied.is_empty() {
        errors.push("copies no binary from target/release".to_owned());
    }
    for bin in copied {
        if !built.contains(&bin) {
            errors.push(format!(
                "copies {bin} but does not build it with --bin {bin}"
            ));
        }
        if !bins.contains(&bin) {
            errors.push(format!("copies {bin}, which no workspace crate builds"));
        }
    }
    errors
}

pub fn actionlint(root: &Path, tools: &Tools) -> anyhow::Result<()> {
    let workflows = files_with_suffix(root, ".github/workflows", ".yml")?;
    let mut cmd = tools.command("actionlint");
    cmd.current_dir(root).args(&workflows);
    let output = cmd.output().context("starting actionlint")?;
    if !output.status.success() {
        bail!("actionlint:\n{}", combined(&output));
    }

    let mut errors = Vec::new();
    for file in &workflows {
        let text = std::fs::read_to_string(file)?;
        let name = file.display();
        let docs = parse_documents(&text)?;
        if docs.first().and_then(|d| d.get("permissions")).is_none() {
            errors.push(format!(
                "{name}: no top-level `permissions:` (the default token is too broad)"
            ));
        }
        errors.extend(
            unpinned_actions(&text)
                .into_iter()
                .map(|u| format!("{name}: {u} is not pinned by commit SHA")),
        );
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n  "));
    }
    Ok(())
}

/// `uses:` references that are neither local (`./`), `docker://`, nor
/// `owner/repo@<40 hex digits>`.
fn unpinned_actions(workflow: &str) -> Vec<String> {
    workflow
        .lines()
        .filter_map(|line| {
            line.trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses:")
        })
        .map(|rest| {
            rest.split('#')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches(['"', '\''])
        })
        .filter(|uses| !uses.starts_with("./") && !uses.starts_with("docker://"))
        .filter(|uses| {
            let sha = uses.rsplit_once('@').map(|(_, r)| r).unwrap_or_default();
            !(sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .map(str::to_owned)
        .collect()
}

/// The files in `root`'s folder `dir` whose names end in `suffix`, sorted.
/// Finding none is an error: a lint with nothing to read would pass.
fn files_with_suffix(root: &Path, dir: &str, suffix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let folder = root.join(dir);
    if folder.is_dir() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.to_string_lossy().ends_with(suffix) {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        bail!("no {dir}/*{suffix} found");
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dockerfile_copies_only_binaries_it_builds_from_the_workspace() {
        let bins = ["todo-app", "broadcaster"];
        let good = "RUN cargo build --release \\\n    --bin todo-app --bin broadcaster\n\
                    COPY --from=builder /src/target/release/todo-app /bin/\n\
                    COPY --from=builder /src/target/release/broadcaster /bin/\n";
        assert!(unbuilt_copies(good, &bins).is_empty());
        let unbuilt = "RUN cargo build --release --bin todo-app\n\
                       # --bin broadcaster\n\
                       COPY --from=builder /src/target/release/broadcaster /bin/\n";
        assert_eq!(
            unbuilt_copies(unbuilt, &bins),
            ["copies broadcaster but does not build it with --bin broadcaster"]
        );
        let unknown = "RUN cargo build --bin cronjobs\n\
                       COPY --from=builder /src/target/release/cronjobs /bin/\n";
        assert_eq!(
            unbuilt_copies(unknown, &bins),
            ["copies cronjobs, which no workspace crate builds"]
        );
        assert_eq!(
            unbuilt_copies("FROM scratch\n", &bins),
            ["copies no binary from target/release"]
        );
    }

    #[test]
    fn only_sha_pinned_actions_pass() {
        let workflow = "\
steps:
  - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0
  - uses: actions/checkout@v5
  - uses: 'docker/login-action@main'
  - uses: ./.github/actions/local
  - uses: docker://alpine:3
";
        assert_eq!(
            unpinned_actions(workflow),
            ["actions/checkout@v5", "docker/login-action@main"]
        );
    }
}
