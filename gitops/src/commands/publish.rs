//! `gitops publish`: makes the config repository say what this repository's
//! `kustomize/` and `argocd/` say.
//!
//! The config repository's tree becomes exactly those two folders, a README
//! saying where they come from, and the `verified/` markers it already had,
//! as one commit whose message names the source commit. Each overlay keeps
//! the image references the config repository already has (promotion owns
//! them), unless `--take-images`. Nothing is committed or pushed when
//! nothing changed. A lost push race is retried from a fresh fetch.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tempfile::TempDir;

use crate::delivery::ATTEMPTS;
use crate::error::GitopsError;
use crate::git::{PushOutcome, Repo, check_credentials};
use crate::overlay::{self, Overlay};
use crate::verified;

/// The folders published, relative to both repositories' roots.
const PUBLISHED: &[&str] = &["kustomize", "argocd"];

const README: &str = "\
# Docket deployment configuration

Generated: do not edit by hand. `gitops publish` copies `kustomize/` and
`argocd/` from the Docket application repository here; each publish commit
names the source commit. Change them there.

What changes here directly, always through the `gitops` CLI:

- `kustomize/overlays/<env>/kustomization.yaml`, only its `images:` entry
  (`gitops set-image`, `gitops promote`, `gitops release`);
- `verified/<env>.json`, the images an environment was seen serving
  (`gitops verify-env`), which `gitops promote` requires.

Argo CD syncs staging from `main` and production from the highest
`vX.Y.Z` tag. To roll back, revert the offending commit here.
";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config repository: a URL (https needs GITOPS_TOKEN) or a path.
    #[arg(long)]
    pub config_repo: String,
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The application checkout to publish from.
    #[arg(long, default_value = ".")]
    pub source: PathBuf,
    /// Use the source's image references instead of keeping the config
    /// repository's (e.g. to reset an environment).
    #[arg(long)]
    pub take_images: bool,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// A commit was pushed.
    Commit(String),
    /// The config repository already matched.
    NothingChanged,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match publish(&args, &mut |_| Ok(()))? {
        Published::Commit(commit) => println!("published as {commit}"),
        Published::NothingChanged => {
            println!("the config repository is up to date: nothing pushed")
        }
    }
    Ok(())
}

/// Publishes; `before_push(attempt)` runs right before each push (tests use
/// it to push concurrently and prove the retry).
pub fn publish(
    args: &Args,
    before_push: &mut dyn FnMut(u32) -> anyhow::Result<()>,
) -> anyhow::Result<Published> {
    let source = Repo::open(&args.source)?;
    source.ensure_clean(PUBLISHED)?;
    let source_commit = source.head()?;
    check_credentials(&args.config_repo)?;

    let work = TempDir::new().context("creating a folder for the config repository clone")?;
    let clone = Repo::at(work.path().join("config"));
    Repo::at(work.path()).run(&[
        "clone",
        "--quiet",
        "--no-checkout",
        &args.config_repo,
        "config",
    ])?;

    for attempt in 1..=ATTEMPTS {
        checkout(&clone, &args.branch)?;
        replace_tree(source.dir(), clone.dir(), args.take_images)?;
        let message = format!(
            "publish kustomize/ and argocd/ from {source_commit}\n\nSource commit: {source_commit}\n"
        );
        if !clone.commit_all(&message)? {
            return Ok(Published::NothingChanged);
        }
        before_push(attempt)?;
        match clone.push(&args.branch, None)? {
            PushOutcome::Pushed => return Ok(Published::Commit(clone.head()?)),
            PushOutcome::Rejected => {
                eprintln!(
                    "gitops: publish lost a push race (attempt {attempt}); fetching and re-applying"
                );
            }
        }
    }
    Err(GitopsError::PushRejected {
        remote: args.config_repo.clone(),
        attempts: ATTEMPTS,
    }
    .into())
}

/// Moves the clone onto origin's `branch`, or onto a new empty branch when
/// the config repository does not have it yet.
fn checkout(clone: &Repo, branch: &str) -> anyhow::Result<()> {
    clone.run(&["fetch", "--quiet", "origin"])?;
    let remote = format!("refs/remotes/origin/{branch}");
    if clone
        .output(&["rev-parse", "--quiet", "--verify", &remote])?
        .status
        .success()
    {
        clone.run(&["checkout", "--quiet", "--force", "-B", branch, &remote])?;
        clone.run(&["clean", "--quiet", "-d", "--force", "-x"])?;
    } else {
        clone.run(&["checkout", "--quiet", "--orphan", branch])?;
        let _ = clone.output(&["rm", "-r", "--quiet", "--cached", "--ignore-unmatch", "."])?;
    }
    Ok(())
}

/// Makes the clone's tree the source's published folders plus the README
/// and the existing `verified/` markers, keeping each overlay's images.
fn replace_tree(source: &Path, clone: &Path, take_images: bool) -> anyhow::Result<()> {
    let kept_images: Vec<(String, Vec<overlay::Image>)> =
        if take_images || !clone.join(overlay::OVERLAYS).is_dir() {
            Vec::new()
        } else {
            overlay::environments(clone)?
                .into_iter()
                .map(|env| Ok((env.clone(), Overlay::open(clone, &env)?.images()?)))
                .collect::<anyhow::Result<_>>()?
        };

    for entry in std::fs::read_dir(clone)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" || name == verified::DIR {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    for folder in PUBLISHED {
        copy_dir(&source.join(folder), &clone.join(folder))
            .with_context(|| format!("copying {folder}/"))?;
    }
    std::fs::write(clone.join("README.md"), README)?;

    let environments = overlay::environments(clone)?;
    for (env, images) in kept_images {
        if environments.contains(&env) && !images.is_empty() {
            let mut overlay = Overlay::open(clone, &env)?;
            if overlay.set_images(&images)? {
                overlay.save()?;
            }
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
