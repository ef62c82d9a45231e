//! The `git` CLI, run in one checkout.
//!
//! The CLI rather than libgit2: it is on every CI runner and developer
//! machine, speaks every transport and credential helper people already
//! use, and its behaviour on a rejected push is the one operators know.
//!
//! Credentials: an `https://` remote needs `GITOPS_TOKEN` (or a credential
//! helper the user configured); the token reaches git through a helper that
//! reads the variable when git asks, so it never appears on a command line.
//! An ssh remote needs an agent (`SSH_AUTH_SOCK`), `GIT_SSH_COMMAND` or a key
//! in `~/.ssh`. Local paths and `file://` need nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

use crate::error::GitopsError;

/// Reads `GITOPS_TOKEN` at the moment git asks for a password.
const TOKEN_HELPER: &str =
    "!f() { echo username=x-access-token; echo \"password=${GITOPS_TOKEN}\"; }; f";

/// A working tree (or a clone being prepared) that commands run in.
#[derive(Debug, Clone)]
pub struct Repo {
    dir: PathBuf,
}

impl Repo {
    pub fn at(dir: impl Into<PathBuf>) -> Repo {
        Repo { dir: dir.into() }
    }

    /// The checkout's top folder; fails if `dir` is not inside one.
    pub fn open(dir: &Path) -> anyhow::Result<Repo> {
        let top = Repo::at(dir)
            .run(&["rev-parse", "--show-toplevel"])
            .with_context(|| format!("{} is not a git checkout", dir.display()))?;
        Ok(Repo::at(top.trim()))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `git -C dir` with a fallback identity (CI runners often have none)
    /// and the token helper when `GITOPS_TOKEN` is set.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir);
        if std::env::var_os("GITOPS_TOKEN").is_some() {
            cmd.args(["-c", &format!("credential.helper={TOKEN_HELPER}")]);
        }
        for (key, fallback) in [
            ("user.name", "gitops"),
            ("user.email", "gitops@docket.invalid"),
        ] {
            if !self.has_config(key) {
                cmd.args(["-c", &format!("{key}={fallback}")]);
            }
        }
        // Never wait for a password prompt: fail, and say which credential is missing.
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        cmd
    }

    fn has_config(&self, key: &str) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["config", "--get", key])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
    }

    /// Runs git; its stdout on success, an error with stderr otherwise.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.output(args)?;
        if !output.status.success() {
            bail!(
                "git {} failed in {}: {}",
                args.join(" "),
                self.dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs git and returns whatever happened.
    pub fn output(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command()
            .args(args)
            .output()
            .with_context(|| format!("running git {} (is git installed?)", args.join(" ")))
    }

    pub fn head(&self) -> anyhow::Result<String> {
        Ok(self.run(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    /// The current branch; fails on a detached HEAD.
    pub fn branch(&self) -> anyhow::Result<String> {
        Ok(self
            .run(&["symbolic-ref", "--short", "HEAD"])
            .context("the checkout is not on a branch")?
            .trim()
            .to_owned())
    }

    /// Fails with [`GitopsError::DirtyCheckout`] if tracked or untracked
    /// files under `paths` (all of the checkout when empty) have changes.
    pub fn ensure_clean(&self, paths: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["status", "--porcelain", "--"];
        args.extend_from_slice(paths);
        let status = self.run(&args)?;
        let dirty: Vec<String> = status
            .lines()
            .map(|line| line.get(3..).unwrap_or(line).to_owned())
            .collect();
        if dirty.is_empty() {
            Ok(())
        } else {
            Err(GitopsError::DirtyCheckout {
                repo: self.dir.clone(),
                paths: dirty,
            }
            .into())
        }
    }

    /// Stages everything and commits it; `false` when there was nothing to commit.
    pub fn commit_all(&self, message: &str) -> anyhow::Result<bool> {
        self.run(&["add", "--all"])?;
        if self
            .output(&["diff", "--cached", "--quiet"])?
            .status
            .success()
        {
            return Ok(false);
        }
        self.run(&["commit", "--quiet", "--message", message])?;
        Ok(true)
    }

    /// The full id of `rev` if it names a commit this checkout has.
    pub fn commit_id(&self, rev: &str) -> anyhow::Result<Option<String>> {
        let output = self.output(&[
            "rev-parse",
            "--quiet",
            "--verify",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ])?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned()))
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> anyhow::Result<bool> {
        let output = self.output(&["merge-base", "--is-ancestor", ancestor, descendant])?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => bail!(
                "git merge-base --is-ancestor {ancestor} {descendant} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }
    }

    /// `path` as commit `rev` has it, or `None` if it has no such file.
    pub fn show(&self, rev: &str, path: &str) -> anyhow::Result<Option<String>> {
        let output = self.output(&["show", &format!("{rev}:{path}")])?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// Whether the checkout has a remote called `origin`.
    pub fn has_origin(&self) -> anyhow::Result<bool> {
        Ok(self
            .output(&["remote", "get-url", "origin"])?
            .status
            .success())
    }

    /// The URL of `origin`.
    pub fn origin_url(&self) -> anyhow::Result<String> {
        Ok(self
            .run(&["remote", "get-url", "origin"])
            .context("the checkout has no `origin` remote to push to")?
            .trim()
            .to_owned())
    }

    /// Pushes HEAD to `origin`'s `branch` (and `tag` if given, atomically).
    pub fn push(&self, branch: &str, tag: Option<&str>) -> anyhow::Result<PushOutcome> {
        let head_ref = format!("HEAD:refs/heads/{branch}");
        let tag_ref = tag.map(|t| format!("refs/tags/{t}:refs/tags/{t}"));
        let mut args = vec![
            "push",
            "--porcelain",
            "--atomic",
            "origin",
            head_ref.as_str(),
        ];
        if let Some(tag_ref) = &tag_ref {
            args.push(tag_ref);
        }
        let output = self.output(&args)?;
        if output.status.success() {
            return Ok(PushOutcome::Pushed);
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // A concurrent writer got there first: "[rejected] (fetch first)",
        // "(non-fast-forward)", or a ref that moved between the handshake
        // and the update ("stale info", "cannot lock ref").
        let raced = [
            "[rejected]",
            "non-fast-forward",
            "fetch first",
            "stale info",
            "cannot lock ref",
        ]
        .iter()
        .any(|needle| text.contains(needle));
        if raced {
            Ok(PushOutcome::Rejected)
        } else {
            bail!("git push to origin failed: {}", text.trim())
        }
    }

    /// Fetches `branch` from origin and moves the checkout onto it, dropping
    /// local commits (they are re-made by the caller).
    pub fn reset_to_origin(&self, branch: &str) -> anyhow::Result<()> {
        self.run(&["fetch", "--quiet", "--tags", "origin", branch])?;
        self.run(&["reset", "--quiet", "--hard", &format!("origin/{branch}")])?;
        Ok(())
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// Someone else pushed first; fetch, re-apply, try again.
    Rejected,
}

/// Fails with [`GitopsError::MissingCredentials`] when pushing to `url`
/// cannot work without a credential that is not there.
pub fn check_credentials(url: &str) -> anyhow::Result<()> {
    let configured_helper = Command::new("git")
        .args(["config", "--get", "credential.helper"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty());
    let missing = |hint| {
        Err(GitopsError::MissingCredentials {
            url: url.to_owned(),
            hint,
        }
        .into())
    };
    if url.starts_with("https://") || url.starts_with("http://") {
        if std::env::var_os("GITOPS_TOKEN").is_none() && !configured_helper {
            return missing("set GITOPS_TOKEN to a token that may push to it");
        }
    } else if is_ssh(url) {
        let home_key = std::env::var_os("HOME").is_some_and(|home| {
            ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .any(|key| Path::new(&home).join(".ssh").join(key).is_file())
        });
        if std::env::var_os("SSH_AUTH_SOCK").is_none()
            && std::env::var_os("GIT_SSH_COMMAND").is_none()
            && !home_key
        {
            return missing(
                "start an ssh agent with a deploy key (SSH_AUTH_SOCK), set GIT_SSH_COMMAND, \
                 or put a key in ~/.ssh",
            );
        }
    }
    Ok(())
}

/// `ssh://…` or scp-like `user@host:path`.
fn is_ssh(url: &str) -> bool {
    url.starts_with("ssh://")
        || (!url.contains("://")
            && url
                .split_once(':')
                .is_some_and(|(host, _)| host.contains('@')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_are_recognised() {
        assert!(is_ssh("git@github.com:docket-dev/docket-config.git"));
        assert!(is_ssh("ssh://git@github.com/docket-dev/docket-config.git"));
        assert!(!is_ssh("https://github.com/docket-dev/docket-config.git"));
        assert!(!is_ssh("/tmp/config.git"));
        assert!(!is_ssh("file:///tmp/config.git"));
    }

    #[test]
    fn local_remotes_need_no_credentials() {
        check_credentials("/tmp/config.git").unwrap();
        check_credentials("file:///tmp/config.git").unwrap();
    }
}
