//! `gitops verify-env`: waits until an environment runs the expected
//! release, fully rolled out and monitored, then records it as verified for
//! the images its overlay names.
//!
//! The checks, in order (see [`crate::verification`]): Argo CD reports the
//! Application `Synced` at the config commit that set these images and
//! `Healthy` (a Rollout is Healthy only once fully promoted; `Degraded`, an
//! aborted rollout, fails at once); Prometheus scrapes every app pod, each
//! on the expected commit, and counts requests to them; `/version` answers
//! the expected commit on a run of consecutive requests. Only then is
//! `verified/<env>.json` written in the config repository checkout and
//! committed. `gitops promote` and `gitops release` trust only that marker.
//! Nothing is written when any check fails or the deadline passes.

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::analysis::prometheus::Prometheus;
use crate::argocd::ArgoCd;
use crate::delivery::{self, Options};
use crate::git::Repo;
use crate::overlay::Overlay;
use crate::verification::{self, Deadline, monitoring, serving, short, sync};
use crate::verified::{self, Verified};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// Base URL of the environment, e.g. https://staging.docket.example.com
    #[arg(long)]
    pub url: String,
    /// The application commit the environment must report (CI: the commit
    /// CI passed for; never defaulted from GITHUB_SHA, which a workflow_run
    /// sets to the branch's newest commit).
    #[arg(long)]
    pub expect_commit: String,
    /// The application version it must report as well, if given.
    #[arg(long)]
    pub expect_version: Option<String>,
    /// Argo CD's API server, e.g. https://argocd.example.com
    #[arg(long, env = "ARGOCD_SERVER")]
    pub argocd_server: String,
    /// A token that may `get` the Application (never printed).
    #[arg(long, env = "ARGOCD_AUTH_TOKEN", hide_env_values = true, value_parser = secret)]
    pub argocd_token: SecretString,
    /// The environment's Argo CD Application [default: docket-ENV]
    #[arg(long)]
    pub app: Option<String>,
    /// Prometheus's base URL, e.g. http://prometheus.monitoring:9090
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus: String,
    /// The Kubernetes namespace of the app's pods [default: the overlay's `namespace:`]
    #[arg(long)]
    pub namespace: Option<String>,
    /// `/version` answers in a row that must all name the expected commit.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub consecutive: u32,
    /// How long to wait for the rollout, in seconds (all checks together).
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Pause between two looks at Argo CD, Prometheus or `/version`, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub interval_ms: u64,
    /// The config repository checkout.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Push the marker commit to origin, with retries.
    #[arg(long)]
    pub push: bool,
}

fn secret(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let repo = Repo::open(&args.repo)?;
    repo.ensure_clean(&[])?;
    // Fail on an unknown environment before waiting for it, and remember
    // which images are being verified: only those may be marked.
    let overlay = Overlay::open(repo.dir(), &args.env)?;
    let waited_for = verified::sorted_images(&overlay)?;
    let namespace = match &args.namespace {
        Some(namespace) => namespace.clone(),
        None => overlay.namespace()?.ok_or_else(|| {
            anyhow::anyhow!(
                "{} sets no namespace: pass --namespace",
                overlay.path.display()
            )
        })?,
    };
    let app = args
        .app
        .clone()
        .unwrap_or_else(|| format!("docket-{}", args.env));
    let target = sync::Target::find(&repo, &args.env, &waited_for)?;
    println!(
        "verifying {} (Argo CD application {app}, namespace {namespace}): config commit {}, \
         application commit {}",
        args.env,
        short(&target.commit),
        args.expect_commit
    );

    let argocd = ArgoCd::new(&args.argocd_server, args.argocd_token.clone())?;
    let prometheus = Prometheus::new(args.prometheus.clone())?;
    let deadline = Deadline::new(
        &args.env,
        args.timeout,
        Duration::from_millis(args.interval_ms),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let seen = runtime.block_on(async {
        sync::wait_until_synced(&argocd, &app, &target, &deadline).await?;
        monitoring::wait_until_monitored(
            &prometheus,
            &monitoring::Expected {
                namespace: &namespace,
                commit: &args.expect_commit,
                url: &args.url,
            },
            &deadline,
        )
        .await?;
        verification::serving::wait_until_only_expected(
            &serving::Expected {
                url: &args.url,
                commit: &args.expect_commit,
                version: args.expect_version.as_deref(),
                consecutive: args.consecutive,
            },
            &deadline,
        )
        .await
    })?;
    println!(
        "{} serves commit {} (version {}), rolled out and monitored",
        args.url, seen.commit, seen.version
    );

    let committed = delivery::deliver(&repo, &Options::commit(args.push), |repo| {
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
        message.push_str(&format!(
            "Argo CD {app}: Synced and Healthy at config commit {}\n\n",
            target.commit
        ));
        for image in &marker.images {
            message.push_str(&format!("{}\n", image.reference()));
        }
        Ok(message)
    })?;
    println!(
        "{}",
        delivery::outcome(committed, "recorded as verified", "already verified")
    );
    Ok(())
}
