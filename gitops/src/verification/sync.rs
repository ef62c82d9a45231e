//! Step 1: Argo CD runs the config commit that set these images, and the
//! rollout of it finished.
//!
//! The expected revision is the config-repository commit that set the
//! environment's current images: following `HEAD`'s first parents, the
//! oldest commit of the run whose overlay names exactly these images.
//! Argo CD's `status.sync.revision` is then judged against it:
//!
//! | revision | means | so |
//! |---|---|---|
//! | that commit, or a later one naming the same images | ours (a later publish or marker commit changes nothing that runs) | wait for `Synced` + `Healthy`; `Degraded` fails at once |
//! | an ancestor of it | Argo CD has not seen it yet | wait |
//! | a later commit naming other images, or unrelated | another delivery runs | fail at once when `Synced` there |
//!
//! A revision the checkout does not know is fetched from `origin` once
//! before it is judged: another CI run may have pushed it.

use std::time::Duration;

use anyhow::Context;

use crate::argocd::{ArgoCd, HealthStatusCode, Read, SyncStatusCode};
use crate::git::Repo;
use crate::overlay::{self, Image, OVERLAYS};

use super::{Deadline, Progress, short};

/// How long the first read may take: with `?refresh=normal` Argo CD answers
/// only once the controller has re-read git.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);
const READ_TIMEOUT: Duration = Duration::from_secs(15);
const MIN_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The config commit an environment's images were set in.
#[derive(Debug)]
pub struct Target {
    repo: Repo,
    env: String,
    path: String,
    images: Vec<Image>,
    /// The commit that set them.
    pub commit: String,
}

/// Where Argo CD's revision stands relative to the [`Target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// The target commit, or a later one naming the same images.
    Expected,
    /// An ancestor of the target: Argo CD has not caught up yet.
    Older,
    /// Anything else, and why.
    Other(String),
}

impl Target {
    /// The commit in `repo`'s history that set `images` (sorted) for `env`.
    pub fn find(repo: &Repo, env: &str, images: &[Image]) -> anyhow::Result<Target> {
        let path = format!("{OVERLAYS}/{env}/kustomization.yaml");
        let mut target = Target {
            repo: repo.clone(),
            env: env.to_owned(),
            path,
            images: images.to_vec(),
            commit: String::new(),
        };
        let history = repo.run(&[
            "log",
            "--first-parent",
            "--format=%H",
            "HEAD",
            "--",
            &target.path,
        ])?;
        for commit in history.lines() {
            if target.images_at(commit)?.as_deref() != Some(images) {
                break;
            }
            target.commit = commit.to_owned();
        }
        if target.commit.is_empty() {
            anyhow::bail!(
                "no commit of {} sets {env}'s current images in {}",
                repo.dir().display(),
                target.path
            );
        }
        Ok(target)
    }

    /// The environment's images (sorted) at `rev`, if the overlay exists there.
    fn images_at(&self, rev: &str) -> anyhow::Result<Option<Vec<Image>>> {
        let Some(text) = self.repo.show(rev, &self.path)? else {
            return Ok(None);
        };
        let mut images = overlay::parse_images(&text)
            .with_context(|| format!("parsing {} at {rev}", self.path))?;
        images.sort();
        Ok(Some(images))
    }

    /// Judges Argo CD's `revision`.
    pub fn relation(&self, revision: &str) -> anyhow::Result<Relation> {
        let mut known = self.repo.commit_id(revision)?;
        if known.is_none() && self.repo.has_origin()? {
            // Fetch failures are reported through `Other` below: the
            // revision is then as unknown as before.
            let _ = self.repo.run(&["fetch", "--quiet", "origin"]);
            known = self.repo.commit_id(revision)?;
        }
        let Some(revision) = known else {
            return Ok(Relation::Other(
                "is not a commit of the config repository (another repository or branch?)".into(),
            ));
        };
        if self.repo.is_ancestor(&self.commit, &revision)? {
            return Ok(
                if self.images_at(&revision)?.as_deref() == Some(self.images.as_slice()) {
                    Relation::Expected
                } else {
                    Relation::Other(format!(
                        "is a later commit that gives {} other images (a newer delivery); \
                     verify that one instead",
                        self.env
                    ))
                },
            );
        }
        if self.repo.is_ancestor(&revision, &self.commit)? {
            return Ok(Relation::Older);
        }
        Ok(Relation::Other(format!(
            "is not in the history of {} (the commit that set these images)",
            short(&self.commit)
        )))
    }
}

/// What one look at the Application decided.
#[derive(Debug)]
enum Verdict {
    Done,
    Wait(String),
    Fail(String),
}

/// Polls the Application `app` until it is `Synced` at `target` and
/// `Healthy`.
pub async fn wait_until_synced(
    argocd: &ArgoCd,
    app: &str,
    target: &Target,
    deadline: &Deadline,
) -> anyhow::Result<()> {
    let waiting_for = format!(
        "Argo CD application {app} Synced at config commit {} (or a later one with the \
         same images) and Healthy",
        short(&target.commit)
    );
    let mut progress = Progress::default();
    let mut refreshed = false;
    let mut seen: Option<String> = None;
    loop {
        let timeout = if refreshed {
            READ_TIMEOUT
        } else {
            REFRESH_TIMEOUT
        };
        // Near the deadline a read still gets a few seconds: one cut short
        // by the deadline itself would hide the last state actually seen.
        let timeout = timeout.min(deadline.remaining()).max(MIN_READ_TIMEOUT);
        let read = argocd.application(app, !refreshed, timeout).await?;
        let last = match read {
            Read::Unavailable(reason) => match &seen {
                Some(state) => format!("{reason}; before that: {state}"),
                None => reason,
            },
            Read::Application(application) => {
                refreshed = true;
                match judge(&application.status, target)? {
                    Verdict::Done => {
                        progress.report("argocd", &format!("{app} Synced and Healthy"));
                        return Ok(());
                    }
                    Verdict::Fail(reason) => return Err(deadline.failed(reason).into()),
                    Verdict::Wait(state) => {
                        seen = Some(state.clone());
                        state
                    }
                }
            }
        };
        progress.report("argocd", &last);
        deadline.wait(&waiting_for, &last).await?;
    }
}

fn judge(status: &crate::argocd::ApplicationStatus, target: &Target) -> anyhow::Result<Verdict> {
    let revision = status.sync.revision.as_deref().unwrap_or_default();
    let health = status.health.status;
    let mut state = format!(
        "{} at {}, health {health}",
        status.sync.status,
        if revision.is_empty() {
            "no revision yet"
        } else {
            short(revision)
        }
    );
    if let Some(message) = status.health.message.as_deref().filter(|m| !m.is_empty()) {
        state.push_str(&format!(" ({message})"));
    }
    if status.sync.status != SyncStatusCode::Synced || revision.is_empty() {
        return Ok(Verdict::Wait(state));
    }
    Ok(match (target.relation(revision)?, health) {
        (Relation::Expected, HealthStatusCode::Healthy) => Verdict::Done,
        (Relation::Expected, HealthStatusCode::Degraded) => Verdict::Fail(format!(
            "Argo CD reports {state}: the rollout was aborted (a failed analysis?), \
             so these images are not what runs"
        )),
        (Relation::Expected, HealthStatusCode::Suspended) => Verdict::Wait(format!(
            "{state}: a Rollout paused at a canary step (it waits for the pause, or for a \
             manual promotion)"
        )),
        (Relation::Expected, HealthStatusCode::Missing) => {
            Verdict::Wait(format!("{state}: the resources are not created yet"))
        }
        (Relation::Expected, _) => Verdict::Wait(state),
        (Relation::Older, _) => Verdict::Wait(format!(
            "{state}: an older config commit; Argo CD has not synced {} yet",
            short(&target.commit)
        )),
        (Relation::Other(why), _) => Verdict::Fail(format!(
            "Argo CD is Synced at another revision: {revision} {why}"
        )),
    })
}
