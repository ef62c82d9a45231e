//! `gitops release --tag vX.Y.Z`: promotes staging to production and tags
//! the result, so production's Application (following semver tags) syncs.
//!
//! Tags are `vMAJOR.MINOR.PATCH`: Argo CD resolves the Application's
//! `targetRevision: ">=0.1.0"` with Masterminds semver, which reads a
//! leading `v`; pre-releases are refused here because that constraint
//! would never select them. Running it again with the same tag is a no-op;
//! a tag already on another commit is an error.

use std::path::PathBuf;

use crate::delivery::{self, Options};
use crate::error::GitopsError;
use crate::git::Repo;

use super::promote::promote;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release, `vMAJOR.MINOR.PATCH`.
    #[arg(long)]
    pub tag: String,
    #[arg(long, default_value = "staging")]
    pub from: String,
    #[arg(long, default_value = "production")]
    pub to: String,
    /// The config repository checkout.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Release even though the source is not verified (needs --reason).
    #[arg(long, requires = "reason")]
    pub force: bool,
    #[arg(long, requires = "force")]
    pub reason: Option<String>,
    /// Push the commit and the tag to origin (atomically), with retries.
    #[arg(long)]
    pub push: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    check_tag(&args.tag)?;
    let repo = Repo::open(&args.repo)?;
    repo.ensure_clean(&[])?;
    delivery::deliver(
        &repo,
        &Options {
            push: args.push,
            tag: Some(args.tag.clone()),
        },
        |repo| {
            let summary = promote(repo.dir(), &args.from, &args.to, args.reason.as_deref())?;
            Ok(format!(
                "release {}: {} runs the images of {}\n\n{summary}",
                args.tag, args.to, args.from
            ))
        },
    )?;
    println!("released {}", args.tag);
    Ok(())
}

/// `v` then three dot-separated numbers without leading zeros.
pub fn check_tag(tag: &str) -> Result<(), GitopsError> {
    let numbers: Vec<&str> = tag.strip_prefix('v').unwrap_or("").split('.').collect();
    let valid = numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        });
    if valid {
        Ok(())
    } else {
        Err(GitopsError::InvalidInput {
            what: format!("tag `{tag}`"),
            reason: "expected vMAJOR.MINOR.PATCH, e.g. v1.2.3 (no pre-release: \
                     production's semver constraint would never select it)"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_v_prefixed_versions_are_release_tags() {
        for good in ["v1.2.3", "v0.1.0", "v10.0.20"] {
            check_tag(good).unwrap();
        }
        for bad in [
            "1.2.3",
            "v1.2",
            "v1.2.3-rc.1",
            "v01.2.3",
            "v1.2.x",
            "release",
        ] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}
