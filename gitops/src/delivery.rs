//! Committing a change to a checkout and, when asked, pushing it.
//!
//! Several writers share the config repository (CI for each merge, people
//! releasing), so a push can lose the race. Then the checkout is moved onto
//! the new upstream and the change is made again from scratch (not rebased:
//! the change is a function of the current files, e.g. "staging runs these
//! images"), and pushed again, a bounded number of times.

use crate::error::GitopsError;
use crate::git::{PushOutcome, Repo, check_credentials};

/// Pushes tried before giving up with [`GitopsError::PushRejected`].
pub const ATTEMPTS: u32 = 4;

/// Whether to push, and which tag to create on the result.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub push: bool,
    pub tag: Option<String>,
}

impl Options {
    /// A commit and no tag, pushed when `push` is set.
    pub fn commit(push: bool) -> Self {
        Self { push, tag: None }
    }
}

/// What a command says after [`deliver`]: `done` when it committed,
/// `unchanged` (the state the repository was already in) when not.
pub fn outcome(committed: bool, done: &str, unchanged: &str) -> String {
    if committed {
        done.to_owned()
    } else {
        format!("{unchanged}: nothing to commit")
    }
}

/// Applies `change` (which edits files and returns the commit message),
/// commits if anything changed, tags, and pushes. Returns whether a commit
/// was made.
pub fn deliver(
    repo: &Repo,
    options: &Options,
    mut change: impl FnMut(&Repo) -> anyhow::Result<String>,
) -> anyhow::Result<bool> {
    let branch = repo.branch()?;
    if options.push {
        check_credentials(&repo.origin_url()?)?;
    }
    for _ in 0..ATTEMPTS {
        let message = change(repo)?;
        let committed = repo.commit_all(&message)?;
        let created_tag = match &options.tag {
            Some(tag) => ensure_tag(repo, tag, &message)?,
            None => false,
        };
        if !options.push {
            return Ok(committed);
        }
        match repo.push(&branch, options.tag.as_deref())? {
            PushOutcome::Pushed => return Ok(committed),
            PushOutcome::Rejected => {
                eprintln!("gitops: push to {branch} lost a race; re-applying on the new upstream");
                if let (true, Some(tag)) = (created_tag, &options.tag) {
                    repo.run(&["tag", "--delete", tag])?;
                }
                repo.reset_to_origin(&branch)?;
            }
        }
    }
    Err(GitopsError::PushRejected {
        remote: repo.origin_url()?,
        attempts: ATTEMPTS,
    }
    .into())
}

/// Creates the annotated `tag` on HEAD; fine if it is already there, an
/// error if it names another commit. Returns whether it was created.
fn ensure_tag(repo: &Repo, tag: &str, message: &str) -> anyhow::Result<bool> {
    let existing = repo.output(&[
        "rev-parse",
        "--quiet",
        "--verify",
        &format!("refs/tags/{tag}^{{commit}}"),
    ])?;
    if existing.status.success() {
        let commit = String::from_utf8_lossy(&existing.stdout).trim().to_owned();
        if commit == repo.head()? {
            return Ok(false);
        }
        return Err(GitopsError::TagExists {
            tag: tag.to_owned(),
            commit,
        }
        .into());
    }
    repo.run(&["tag", "--annotate", tag, "--message", message])?;
    Ok(true)
}
