//! `gitops release --tag vX.Y.Z`: promotes staging to production and tags
//! the result, so production's Application (following semver tags) syncs.
//!
//! Tags are `vMAJOR.MINOR.PATCH`: Argo CD resolves the Application's
//! `targetRevision: ">=0.1.0"` with Masterminds semver, which reads a
//! leading `v`; pre-releases are refused here because that constraint
//! would never select them, and so is a tag the constraint itself excludes
//! (read from `argocd/<to>.yaml` in the checkout). Running it again with the
//! same tag is a no-op; a tag already on another commit is an error.
//!
//! With `--expect-commit SHA` (CI passes the tagged application commit) the
//! release is refused unless the source's marker records exactly that
//! commit for the images it runs now: a tag on one commit must never ship
//! what staging last verified for another.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::delivery::{self, Options};
use crate::error::GitopsError;
use crate::git::Repo;
use crate::overlay::Overlay;
use crate::verified;

use super::promote::{Route, promote};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release, `vMAJOR.MINOR.PATCH`.
    #[arg(long)]
    pub tag: String,
    #[command(flatten)]
    pub route: Route,
    /// The application commit the release is for (CI: the tagged commit);
    /// refused unless the source was verified for exactly that commit.
    #[arg(long)]
    pub expect_commit: Option<String>,
    /// Push the commit and the tag to origin (atomically), with retries.
    #[arg(long)]
    pub push: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let route = &args.route;
    check_tag(&args.tag)?;
    let repo = Repo::open(&route.repo)?;
    repo.ensure_clean(&[])?;
    delivery::deliver(
        &repo,
        &Options {
            push: args.push,
            tag: Some(args.tag.clone()),
        },
        |repo| {
            // Checked on every attempt: after a lost push race the
            // upstream's marker or Application may say something else.
            check_selected(repo.dir(), &route.to, &args.tag)?;
            if let Some(expected) = &args.expect_commit {
                check_verified_for(repo.dir(), &route.from, expected)?;
            }
            let summary = promote(repo.dir(), &route.from, &route.to, route.reason.as_deref())?;
            Ok(format!(
                "release {}: {} runs the images of {}\n\n{summary}",
                args.tag, route.to, route.from
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

/// Refuses unless `env`'s marker records application commit `expected`
/// for the images `env` runs now.
fn check_verified_for(root: &Path, env: &str, expected: &str) -> anyhow::Result<()> {
    let not_verified = || GitopsError::NotVerified {
        env: env.to_owned(),
    };
    let Some(marker) = verified::read(root, env)? else {
        return Err(not_verified().into());
    };
    if marker.commit != expected {
        return Err(GitopsError::VerifiedOtherCommit {
            env: env.to_owned(),
            expected: expected.to_owned(),
            verified: marker.commit,
        }
        .into());
    }
    if !verified::is_verified(root, &Overlay::open(root, env)?)? {
        return Err(not_verified().into());
    }
    Ok(())
}

/// The fields of an Argo CD Application that say which revision it follows.
#[derive(Deserialize)]
struct Application {
    spec: ApplicationSpec,
}

#[derive(Deserialize)]
struct ApplicationSpec {
    source: ApplicationSource,
}

#[derive(Deserialize)]
struct ApplicationSource {
    #[serde(rename = "targetRevision")]
    target_revision: String,
}

/// Refuses `tag` unless `env`'s Application (`argocd/<env>.yaml`) would
/// select it.
fn check_selected(root: &Path, env: &str, tag: &str) -> anyhow::Result<()> {
    let file = format!("argocd/{env}.yaml");
    let text = std::fs::read_to_string(root.join(&file)).with_context(|| {
        format!("reading {file}, the Application that decides which tags {env} follows")
    })?;
    let application: Application =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {file}"))?;
    let constraint = application.spec.source.target_revision;
    let refuse = |reason: String| GitopsError::InvalidInput {
        what: format!("tag `{tag}`"),
        reason,
    };
    match selects(&constraint, tag) {
        Ok(true) => Ok(()),
        Ok(false) => Err(refuse(format!(
            "{env}'s Application selects tags matching `{constraint}` (spec.source.targetRevision \
             in {file}); Argo CD would never deploy this one"
        ))
        .into()),
        Err(why) => Err(refuse(format!(
            "{env}'s Application follows `{constraint}` ({file}), which is not a semver \
             constraint gitops can read ({why}); release tags would not reach {env} through it"
        ))
        .into()),
    }
}

/// Whether the Masterminds semver constraint `constraint` (as Argo CD reads
/// `targetRevision`) selects `tag`. The forms read: `||` between
/// alternatives, comparators separated by commas or spaces, a `v` before
/// versions, and a bare version meaning exactly that version; wildcards,
/// `~` and `^` as Cargo reads them, which agrees with Masterminds for
/// versions without pre-releases. A constraint that is the tag itself (a
/// pin) selects it.
pub fn selects(constraint: &str, tag: &str) -> Result<bool, String> {
    if constraint.trim() == tag {
        return Ok(true);
    }
    let version = semver::Version::parse(tag.trim_start_matches('v')).map_err(|e| e.to_string())?;
    let mut selected = false;
    for alternative in constraint.split("||") {
        let requirement = requirement(alternative)?;
        selected |= requirement.matches(&version);
    }
    Ok(selected)
}

/// One `||` alternative as a Cargo requirement.
fn requirement(alternative: &str) -> Result<semver::VersionReq, String> {
    const OPERATORS: [&str; 8] = [">=", "<=", "!=", ">", "<", "=", "~", "^"];
    let spaced = alternative.replace(',', " ");
    let mut comparators: Vec<String> = Vec::new();
    let mut pending_operator: Option<&str> = None;
    for token in spaced.split_whitespace() {
        if OPERATORS.contains(&token) {
            pending_operator = Some(token);
            continue;
        }
        let joined = format!("{}{token}", pending_operator.take().unwrap_or_default());
        let operator = OPERATORS
            .iter()
            .find(|op| joined.starts_with(**op))
            .copied()
            .unwrap_or_default();
        let version = joined[operator.len()..].trim_start_matches('v');
        // Masterminds reads a bare version as exactly it; Cargo as `^`.
        let operator = match operator {
            "" if version.contains(['*', 'x', 'X']) => "",
            "" => "=",
            operator => operator,
        };
        comparators.push(format!("{operator}{version}"));
    }
    if comparators.is_empty() || pending_operator.is_some() {
        return Err("no version to compare with".into());
    }
    semver::VersionReq::parse(&comparators.join(", ")).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_select_tags_as_argo_cd_would() {
        for (constraint, tag, selected) in [
            (">=0.1.0", "v0.1.0", true),
            (">=0.1.0", "v2.3.4", true),
            (">=0.1.0", "v0.0.9", false),
            (">= 1.2, < 2.0.0", "v1.9.0", true),
            (">=1.2 <2.0.0", "v2.0.0", false),
            ("<1.0.0 || >=3.0.0", "v3.1.0", true),
            ("<1.0.0 || >=3.0.0", "v2.0.0", false),
            ("v1.2.3", "v1.2.3", true),
            ("1.2.3", "v1.2.4", false),
            (">=v1.0.0", "v1.0.0", true),
            ("~1.2", "v1.2.7", true),
            ("1.2.*", "v1.3.0", false),
        ] {
            assert_eq!(selects(constraint, tag), Ok(selected), "{constraint} {tag}");
        }
        for unreadable in ["main", "HEAD", ">=", "!=1.2.3"] {
            assert!(selects(unreadable, "v1.0.0").is_err(), "{unreadable}");
        }
    }

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
