//! `gitops verify-env`: waits until an environment serves the expected
//! release, then records it as verified for the images its overlay names.
//!
//! Polls `<url>/version` (the app reports `name`, `version`, `commit`) until
//! `commit` is the expected one (and `version`, when given), within a
//! deadline; then writes `verified/<env>.json` in the config repository
//! checkout and commits it. `gitops promote` trusts only that marker.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::delivery::{self, Options};
use crate::error::GitopsError;
use crate::git::Repo;
use crate::overlay::Overlay;
use crate::verified::{self, Verified};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// Base URL of the environment, e.g. https://staging.docket.example.com
    #[arg(long)]
    pub url: String,
    /// The application commit the environment must report (CI: the pushed SHA).
    #[arg(long, env = "GITHUB_SHA")]
    pub expect_commit: String,
    /// The application version it must report as well, if given.
    #[arg(long)]
    pub expect_version: Option<String>,
    /// How long to wait for the rollout, in seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// The config repository checkout.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Push the marker commit to origin, with retries.
    #[arg(long)]
    pub push: bool,
}

/// What `/version` answers.
#[derive(Debug, Deserialize)]
struct Version {
    version: String,
    commit: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let repo = Repo::open(&args.repo)?;
    repo.ensure_clean(&[])?;
    // Fail on an unknown environment before waiting for it, and remember
    // which images are being verified: only those may be marked.
    let waited_for = verified::sorted_images(&Overlay::open(repo.dir(), &args.env)?)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let seen = runtime.block_on(wait_for_version(&args))?;
    println!(
        "{} serves commit {} (version {})",
        args.url, seen.commit, seen.version
    );

    let committed = delivery::deliver(
        &repo,
        &Options {
            push: args.push,
            tag: None,
        },
        |repo| {
            let overlay = Overlay::open(repo.dir(), &args.env)?;
            // After a lost push race the upstream may point the environment
            // at newer images; the app seen serving is no proof for those.
            if verified::sorted_images(&overlay)? != waited_for {
                anyhow::bail!(
                    "{}'s images changed in the config repository while waiting; \
                     run verify-env again for the new ones",
                    args.env
                );
            }
            let marker = Verified {
                environment: args.env.clone(),
                commit: seen.commit.clone(),
                version: seen.version.clone(),
                url: args.url.clone(),
                images: waited_for.clone(),
            };
            verified::write(repo.dir(), &marker)?;
            let mut message = format!(
                "{}: verified commit {} at {}\n\n",
                args.env, marker.commit, marker.url
            );
            for image in &marker.images {
                message.push_str(&format!("{}\n", image.reference()));
            }
            Ok(message)
        },
    )?;
    println!(
        "{}",
        if committed {
            "recorded as verified"
        } else {
            "already verified: nothing to commit"
        }
    );
    Ok(())
}

async fn wait_for_version(args: &Args) -> anyhow::Result<Version> {
    let url = format!("{}/version", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let expected = match &args.expect_version {
        Some(version) => format!("commit {} version {version}", args.expect_commit),
        None => format!("commit {}", args.expect_commit),
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let last = match fetch(&client, &url).await {
            Ok(seen) => {
                let matches = seen.commit == args.expect_commit
                    && args
                        .expect_version
                        .as_ref()
                        .is_none_or(|v| *v == seen.version);
                if matches {
                    return Ok(seen);
                }
                format!("commit {} version {}", seen.commit, seen.version)
            }
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            return Err(GitopsError::EnvNotReady {
                url,
                expected,
                seconds: args.timeout,
                last,
            }
            .into());
        }
        tokio::time::sleep(Duration::from_secs(2).min(deadline - Instant::now())).await;
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<Version> {
    Ok(client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json::<Version>()
        .await?)
}
