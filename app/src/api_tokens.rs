//! The API tokens in force, kept current with `API_TOKENS_FILE` so a token
//! can be added or revoked without restarting the app.
//!
//! The file is polled: every [`RELOAD_EVERY`] a task reads it and, when its
//! bytes differ from the last read, parses it again. Kubernetes updates a
//! mounted Secret by writing a new directory and swapping a symlink
//! (`..data`) to it; the path the app opens never changes, so a watch on
//! it (inotify) sees nothing, and the file's mtime can go backwards.
//! Reading the content follows the symlinks to whatever they point at
//! now, costs one small read every few seconds whatever the request rate,
//! and stays off the request path: a check on each request would add a
//! `stat` to every API call and still need the content to be sure.
//!
//! A file that does not parse (or cannot be read, as during a botched
//! edit) leaves the last good set in force and is logged as an error,
//! naming the line, never its text ([`ApiTokens::parse`] never quotes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::domain::{Access, ApiTokens, TokenName};

/// How often the file is read again. Kubernetes itself takes up to a
/// minute or so to update a mounted Secret; this adds little to that.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Where the tokens come from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// `API_TOKEN`: fixed for the life of the process.
    Fixed(ApiTokens),
    /// `API_TOKENS_FILE`: as read at start-up, then kept current.
    File { path: PathBuf, tokens: ApiTokens },
}

/// The tokens in force. Cheap to clone; every clone sees a reload.
#[derive(Clone)]
pub struct CurrentTokens(watch::Receiver<Arc<ApiTokens>>);

impl CurrentTokens {
    /// Tokens that never change.
    pub fn fixed(tokens: ApiTokens) -> Self {
        let (_, receiver) = watch::channel(Arc::new(tokens));
        Self(receiver)
    }

    /// `tokens`, then whatever `path` holds, read every `every`. The task
    /// that reads it runs on the current tokio runtime until the last
    /// clone of the returned value is dropped.
    pub fn watch(path: PathBuf, tokens: ApiTokens, every: Duration) -> Self {
        let (sender, receiver) = watch::channel(Arc::new(tokens));
        tokio::spawn(reload(path, sender, every));
        Self(receiver)
    }

    /// From where the configuration says; `every` only matters for a file.
    pub fn from_source(source: TokenSource, every: Duration) -> Self {
        match source {
            TokenSource::Fixed(tokens) => Self::fixed(tokens),
            TokenSource::File { path, tokens } => Self::watch(path, tokens, every),
        }
    }

    /// The name and access of `presented`, if it is a token in force
    /// (see [`ApiTokens::find`] for why this takes the same time for any).
    pub fn find(&self, presented: &str) -> Option<(TokenName, Access)> {
        self.0
            .borrow()
            .find(presented)
            .map(|(name, access)| (name.clone(), access))
    }
}

async fn reload(path: PathBuf, sender: watch::Sender<Arc<ApiTokens>>, every: Duration) {
    // The bytes read at start-up are not known here, so the first read
    // parses again.
    let mut seen: Option<[u8; 32]> = None;
    let mut unreadable = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = sender.closed() => return,
        }
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                // Once per outage, not every few seconds.
                if !unreadable {
                    tracing::error!(
                        file = %path.display(), error = %e,
                        "cannot read API_TOKENS_FILE; the tokens read before stay in force"
                    );
                    unreadable = true;
                }
                continue;
            }
        };
        unreadable = false;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if seen == Some(digest) {
            continue;
        }
        seen = Some(digest);
        match ApiTokens::parse(&path, &String::from_utf8_lossy(&bytes)) {
            // The first read finds what start-up read, most of the time.
            Ok(tokens) if **sender.borrow() == tokens => {}
            Ok(tokens) => {
                let names: Vec<&str> = tokens.names().map(TokenName::as_str).collect();
                tracing::info!(tokens = ?names, "API tokens changed in API_TOKENS_FILE");
                sender.send_replace(Arc::new(tokens));
            }
            Err(e) => tracing::error!(
                error = %e,
                "API_TOKENS_FILE is invalid; the tokens read before stay in force"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use super::*;

    const OLD: &str = "old-token-0123456789abcdef0123456789ab";
    const NEW: &str = "new-token-0123456789abcdef0123456789ab";

    /// Writes `text` as Kubernetes updates a mounted Secret: into a new
    /// directory, then swaps the `..data` symlink to it.
    fn publish(dir: &Path, version: &str, text: &str) {
        let data = dir.join(version);
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("tokens"), text).unwrap();
        let next = dir.join("..data_tmp");
        symlink(version, &next).unwrap();
        std::fs::rename(&next, dir.join("..data")).unwrap();
    }

    /// Waits up to 5 s for `token` to be found (or not).
    async fn until_found(tokens: &CurrentTokens, token: &str, found: bool) -> bool {
        for _ in 0..500 {
            if tokens.find(token).is_some() == found {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_rotated_file_adds_and_removes_tokens_and_a_bad_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        publish(dir.path(), "..v1", &format!("ci write {OLD}\n"));
        let path = dir.path().join("tokens");
        symlink("..data/tokens", &path).unwrap();
        let first = ApiTokens::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        let tokens = CurrentTokens::watch(path, first, Duration::from_millis(20));
        assert!(tokens.find(OLD).is_some());
        assert!(tokens.find(NEW).is_none());

        publish(
            dir.path(),
            "..v2",
            &format!("ci write {OLD}\nci-next read {NEW}\n"),
        );
        assert!(
            until_found(&tokens, NEW, true).await,
            "the new token is taken"
        );
        let (name, access) = tokens.find(NEW).unwrap();
        assert_eq!((name.as_str(), access), ("ci-next", Access::Read));

        publish(dir.path(), "..v3", &format!("ci-next read {NEW}\n"));
        assert!(
            until_found(&tokens, OLD, false).await,
            "the old token is revoked"
        );

        publish(
            dir.path(),
            "..v4",
            &format!("ci-next read {NEW}\nbroken line\n"),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            tokens.find(NEW).is_some(),
            "a bad file keeps the last good set"
        );

        publish(dir.path(), "..v5", &format!("ci write {OLD}\n"));
        assert!(
            until_found(&tokens, NEW, false).await,
            "a good file is taken again"
        );
        assert!(tokens.find(OLD).is_some());
    }
}
