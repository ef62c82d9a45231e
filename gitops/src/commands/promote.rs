//! `gitops promote`: gives one environment exactly the images another runs.
//!
//! Copies the source overlay's `images:` entries (tags or digests, and
//! `newName`) to the target overlay and changes nothing else. Refused unless
//! the source is verified for exactly those images (`verified/<from>.json`,
//! written by `gitops verify-env`), or with `--force --reason`, which the
//! commit message records.

use std::path::{Path, PathBuf};

use crate::delivery::{self, Options};
use crate::error::GitopsError;
use crate::git::Repo;
use crate::overlay::Overlay;
use crate::verified;

/// Which environment's images go where, and whether verification may be
/// skipped: shared by `promote` and `release`.
#[derive(Debug, clap::Args)]
pub struct Route {
    #[arg(long, default_value = "staging")]
    pub from: String,
    #[arg(long, default_value = "production")]
    pub to: String,
    /// The config repository checkout.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Go ahead even though the source is not verified (needs --reason).
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why verification is skipped; recorded in the commit message.
    #[arg(long, requires = "force")]
    pub reason: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub route: Route,
    /// Push the commit to origin, retrying when another push got there first.
    #[arg(long)]
    pub push: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let route = &args.route;
    let repo = Repo::open(&route.repo)?;
    repo.ensure_clean(&[])?;
    let committed = delivery::deliver(&repo, &Options::commit(args.push), |repo| {
        let summary = promote(repo.dir(), &route.from, &route.to, route.reason.as_deref())?;
        Ok(format!(
            "{}: promote images from {}\n\n{summary}",
            route.to, route.from
        ))
    })?;
    println!(
        "{}",
        delivery::outcome(committed, "committed", "already promoted")
    );
    Ok(())
}

/// Copies `from`'s images to `to` under `root`; returns the lines for the
/// commit message. `forced` is the reason when verification is skipped.
pub fn promote(root: &Path, from: &str, to: &str, forced: Option<&str>) -> anyhow::Result<String> {
    let source = Overlay::open(root, from)?;
    let mut target = Overlay::open(root, to)?;
    let mut summary = String::new();
    if verified::is_verified(root, &source)? {
        let marker = verified::read(root, from)?.unwrap_or_else(|| unreachable!("checked above"));
        summary.push_str(&format!(
            "Verified in {from}: commit {} (version {}) at {}\n",
            marker.commit, marker.version, marker.url
        ));
    } else if let Some(reason) = forced {
        summary.push_str(&format!(
            "FORCED without verification in {from}: {reason}\n"
        ));
    } else {
        return Err(GitopsError::NotVerified {
            env: from.to_owned(),
        }
        .into());
    }
    let images = source.images()?;
    if target.set_images(&images)? {
        target.save()?;
    }
    summary.push('\n');
    for image in &images {
        summary.push_str(&format!("{}\n", image.reference()));
    }
    Ok(summary)
}
