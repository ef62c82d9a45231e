//! The one error type of `gitops`, and the exit code of each failure.
//!
//! Commands return `anyhow::Result`; the failures a caller (CI, a person)
//! must tell apart are raised as a [`GitopsError`] somewhere in the chain and
//! mapped to an exit code by [`exit_code`]:
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | done (also when there was nothing to do) |
//! | 1    | any other failure (git, I/O, a tool that failed) |
//! | 2    | bad command line (clap) |
//! | 3    | unknown environment or image name, malformed image reference or tag |
//! | 4    | the checkout has uncommitted changes |
//! | 5    | promotion refused: the source environment is not verified for its current images |
//! | 6    | missing credentials for the config repository (`GITOPS_TOKEN` / ssh) |
//! | 7    | push rejected (non-fast-forward) after every retry |
//! | 8    | the environment did not pass verification in time (not synced and healthy, not monitored, or not serving the expected commit) |
//! | 9    | the release tag already exists on another commit |
//! | 10   | the manifests failed validation (`gitops verify`) |
//! | 11   | release refused: the source's verified marker is for another application commit (`--expect-commit`) |
//! | 12   | the environment failed verification outright: its rollout was aborted (Argo CD `Degraded`) or Argo CD runs another revision |

use std::path::PathBuf;

/// A failure with its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    #[error("unknown environment `{env}` (known: {})", known.join(", "))]
    UnknownEnv { env: String, known: Vec<String> },
    #[error("unknown image `{name}` in {env} (known: {})", known.join(", "))]
    UnknownImage {
        name: String,
        env: String,
        known: Vec<String>,
    },
    #[error("{what} is not valid: {reason}")]
    InvalidInput { what: String, reason: String },
    #[error(
        "{} has uncommitted changes ({}); commit or discard them first",
        repo.display(),
        paths.join(", ")
    )]
    DirtyCheckout { repo: PathBuf, paths: Vec<String> },
    #[error(
        "{env} is not verified for the images it runs now; run `gitops verify-env --env {env}` \
         first, or pass --force with --reason"
    )]
    NotVerified { env: String },
    #[error("missing credentials for {url}: {hint}")]
    MissingCredentials { url: String, hint: &'static str },
    #[error("push to {remote} was rejected (non-fast-forward) {attempts} times; giving up")]
    PushRejected { remote: String, attempts: u32 },
    #[error("{env} was not ready within {seconds} s: {waiting_for} (last seen: {last})")]
    EnvNotReady {
        env: String,
        waiting_for: String,
        seconds: u64,
        last: String,
    },
    #[error("tag {tag} already exists on another commit ({commit})")]
    TagExists { tag: String, commit: String },
    #[error("the manifests are not valid: {0:#}")]
    InvalidManifests(anyhow::Error),
    #[error(
        "{env} was verified for commit {verified}, not {expected}; refusing to release \
         images that were never verified for the tagged commit"
    )]
    VerifiedOtherCommit {
        env: String,
        expected: String,
        verified: String,
    },
    #[error("{env} failed verification: {reason}")]
    EnvFailed { env: String, reason: String },
}

impl GitopsError {
    /// The documented exit code (see the module table).
    pub fn exit_code(&self) -> u8 {
        match self {
            GitopsError::UnknownEnv { .. }
            | GitopsError::UnknownImage { .. }
            | GitopsError::InvalidInput { .. } => 3,
            GitopsError::DirtyCheckout { .. } => 4,
            GitopsError::NotVerified { .. } => 5,
            GitopsError::MissingCredentials { .. } => 6,
            GitopsError::PushRejected { .. } => 7,
            GitopsError::EnvNotReady { .. } => 8,
            GitopsError::TagExists { .. } => 9,
            GitopsError::InvalidManifests(_) => 10,
            GitopsError::VerifiedOtherCommit { .. } => 11,
            GitopsError::EnvFailed { .. } => 12,
        }
    }
}

/// The exit code for a failed command: the first [`GitopsError`] in the
/// chain decides, anything else is 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<GitopsError>())
        .map_or(1, GitopsError::exit_code)
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn the_code_survives_added_context() {
        let error = Err::<(), _>(GitopsError::NotVerified {
            env: "staging".into(),
        })
        .context("promoting")
        .unwrap_err();
        assert_eq!(exit_code(&error), 5);
        assert_eq!(exit_code(&anyhow::anyhow!("git failed")), 1);
    }
}
