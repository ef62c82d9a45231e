//! `gitops set-image`: points one environment at new image references.
//!
//! Edits only the `images:` entry of `kustomize/overlays/<env>/kustomization.yaml`
//! in a checkout (this repository or the config repository), commits the
//! change as one commit naming the images, and pushes it with `--push`.
//! Setting what is already set does nothing.

use std::path::PathBuf;

use anyhow::Context;

use crate::delivery::{self, Options};
use crate::error::GitopsError;
use crate::git::Repo;
use crate::overlay::{Image, ImageRef, Overlay};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (a folder under kustomize/overlays).
    #[arg(long)]
    pub env: String,
    /// NAME=REFERENCE, e.g. app=ghcr.io/OWNER/docket-app@sha256:…; NAME is
    /// the short name (app, broadcaster, cronjobs) or the entry's full name.
    #[arg(long = "image", value_name = "NAME=REFERENCE", required = true)]
    pub images: Vec<String>,
    /// The checkout to edit.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Only edit the file: no commit (and no clean-checkout check).
    #[arg(long, conflicts_with = "push")]
    pub no_commit: bool,
    /// Push the commit to origin, retrying when another push got there first.
    #[arg(long)]
    pub push: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let repo = Repo::open(&args.repo)?;
    let requests = parse_requests(&args.images)?;
    if args.no_commit {
        let changed = apply(&repo, &args.env, &requests)?;
        println!("{}", if changed { "edited" } else { "already set" });
        return Ok(());
    }
    repo.ensure_clean(&[])?;
    let committed = delivery::deliver(&repo, &Options::commit(args.push), |repo| {
        apply(repo, &args.env, &requests)?;
        Ok(message(&args.env, &requests))
    })?;
    println!(
        "{}",
        delivery::outcome(committed, "committed", "already set")
    );
    Ok(())
}

/// `NAME=REFERENCE` pairs, parsed.
fn parse_requests(images: &[String]) -> anyhow::Result<Vec<(String, ImageRef)>> {
    images
        .iter()
        .map(|pair| {
            let (name, reference) =
                pair.split_once('=')
                    .ok_or_else(|| GitopsError::InvalidInput {
                        what: format!("--image {pair}"),
                        reason: "expected NAME=REFERENCE".into(),
                    })?;
            Ok((name.to_owned(), ImageRef::parse(reference)?))
        })
        .collect()
}

/// Edits the overlay in `repo`; whether the file changed.
fn apply(repo: &Repo, env: &str, requests: &[(String, ImageRef)]) -> anyhow::Result<bool> {
    let mut overlay = Overlay::open(repo.dir(), env)?;
    let wanted: Vec<Image> = requests
        .iter()
        .map(|(name, reference)| {
            let entry = overlay.resolve(name)?;
            Ok(Image::pointing_at(&entry.name, reference))
        })
        .collect::<anyhow::Result<_>>()?;
    let changed = overlay.set_images(&wanted)?;
    if changed {
        overlay.save().context("saving the overlay")?;
    }
    Ok(changed)
}

fn message(env: &str, requests: &[(String, ImageRef)]) -> String {
    let mut message = format!(
        "{env}: set images {}\n",
        requests
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    message.push('\n');
    for (name, reference) in requests {
        let r = Image::pointing_at(&reference.repository, reference).reference();
        message.push_str(&format!("{name}: {r}\n"));
    }
    message
}
