//! The checks `gitops verify-env` makes before it records an environment
//! as verified, in this order:
//!
//! 1. [`sync`]: Argo CD has the Application `Synced` at the config commit
//!    that set the environment's images (or a later one with the same
//!    images) and `Healthy`, which for a Rollout means fully promoted;
//! 2. [`monitoring`]: Prometheus scrapes every app pod of the environment,
//!    each reports the expected commit, and requests to them are counted;
//! 3. [`serving`]: the public URL answers the expected commit on a run of
//!    consecutive requests, so no old pod still answers.
//!
//! (The E2E suite, run by CI between this and recording the marker, is the
//! fourth.) Each step polls until it holds, fails at once when waiting
//! cannot help (a rollout aborted, another revision deployed), and gives up
//! at the one shared [`Deadline`].

pub mod monitoring;
pub mod serving;
pub mod sync;

use std::time::Duration;

use tokio::time::Instant;

use crate::error::GitopsError;

/// When verification gives up, and how long to wait between two looks.
#[derive(Debug, Clone)]
pub struct Deadline {
    env: String,
    at: Instant,
    seconds: u64,
    interval: Duration,
}

impl Deadline {
    pub fn new(env: &str, seconds: u64, interval: Duration) -> Deadline {
        Deadline {
            env: env.to_owned(),
            at: Instant::now() + Duration::from_secs(seconds),
            seconds,
            interval,
        }
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Sleeps one interval before the next look; fails with
    /// [`GitopsError::EnvNotReady`] once the deadline has passed, naming
    /// what was awaited and what was seen last.
    pub async fn wait(&self, waiting_for: &str, last: &str) -> Result<(), GitopsError> {
        if self.remaining().is_zero() {
            return Err(GitopsError::EnvNotReady {
                env: self.env.clone(),
                waiting_for: waiting_for.to_owned(),
                seconds: self.seconds,
                last: last.to_owned(),
            });
        }
        tokio::time::sleep(self.interval.min(self.remaining())).await;
        Ok(())
    }

    pub fn failed(&self, reason: String) -> GitopsError {
        GitopsError::EnvFailed {
            env: self.env.clone(),
            reason,
        }
    }
}

/// Prints what a step sees, once per change, so a CI log shows the
/// rollout's progress without repeating the same line every few seconds.
#[derive(Debug, Default)]
pub struct Progress {
    last: Option<String>,
}

impl Progress {
    pub fn report(&mut self, step: &str, line: &str) {
        if self.last.as_deref() != Some(line) {
            println!("{step}: {line}");
            self.last = Some(line.to_owned());
        }
    }
}

/// An HTTP client that opens a new connection for every request. A
/// Kubernetes Service balances connections, not requests: over one
/// kept-alive connection, twenty answers would all come from one pod.
pub fn client_without_keep_alive() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()?)
}

/// `value` as a PromQL string literal.
pub fn promql_string(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

/// The first characters of a commit id, as people quote them.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
