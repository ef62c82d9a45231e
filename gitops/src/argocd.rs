//! The one Argo CD call `gitops verify-env` makes: reading an Application.
//!
//! `GET {server}/api/v1/applications/{name}` with `Authorization: Bearer
//! <token>` (Argo CD's `ApplicationService.Get`, the same path in v2.x and
//! v3.x). Only the fields read are modelled: `status.sync.status` and
//! `status.sync.revision` (the config-repository commit Argo CD compared
//! against), and `status.health.status`. With `?refresh=normal` the server
//! first makes the controller re-read git and answers once that is done,
//! so the answer is not minutes old.
//!
//! Argo CD answers 403, not 404, for an Application that does not exist
//! (since v2.6.7, so that names do not leak); both mean "fix the name or
//! the token's RBAC", never "wait".

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::GitopsError;

/// An Argo CD API server and a token for it.
#[derive(Debug, Clone)]
pub struct ArgoCd {
    server: String,
    token: SecretString,
    client: reqwest::Client,
}

/// The parts of an `Application` that say where and how it runs.
#[derive(Debug, Clone, Deserialize)]
pub struct Application {
    #[serde(default)]
    pub status: ApplicationStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApplicationStatus {
    #[serde(default)]
    pub sync: SyncStatus,
    #[serde(default)]
    pub health: HealthStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SyncStatus {
    #[serde(default)]
    pub status: SyncStatusCode,
    /// The config-repository commit the live state was compared with.
    #[serde(default)]
    pub revision: Option<String>,
}

/// `status.sync.status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SyncStatusCode {
    Synced,
    OutOfSync,
    #[default]
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HealthStatus {
    #[serde(default)]
    pub status: HealthStatusCode,
    #[serde(default)]
    pub message: Option<String>,
}

/// `status.health.status`. A Rollout counts as `Healthy` only once fully
/// promoted; `Suspended` while paused at a canary step; `Degraded` once
/// aborted (a failed analysis).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum HealthStatusCode {
    Healthy,
    Progressing,
    Suspended,
    Degraded,
    Missing,
    #[default]
    #[serde(other)]
    Unknown,
}

impl fmt::Display for SyncStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for HealthStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a read gave: the Application, or why it could not be read this
/// time (a network error, a 5xx: worth another try).
#[derive(Debug)]
pub enum Read {
    Application(Box<Application>),
    Unavailable(String),
}

impl ArgoCd {
    /// `server` is the base URL, e.g. `https://argocd.example.com`.
    pub fn new(server: &str, token: SecretString) -> anyhow::Result<ArgoCd> {
        Ok(ArgoCd {
            server: server.trim_end_matches('/').to_owned(),
            token,
            client: reqwest::Client::builder().build()?,
        })
    }

    /// Reads `name`; with `refresh`, asks Argo CD to re-read git first
    /// (which the server waits for, hence the caller's `timeout`). A refused
    /// token or an unknown name fails; anything else that goes wrong is
    /// [`Read::Unavailable`].
    pub async fn application(
        &self,
        name: &str,
        refresh: bool,
        timeout: Duration,
    ) -> anyhow::Result<Read> {
        let url = format!("{}/api/v1/applications/{name}", self.server);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
            .map_err(|_| GitopsError::InvalidInput {
            what: "the Argo CD token".into(),
            reason: "it contains characters an HTTP header cannot carry".into(),
        })?;
        // Kept out of debug output and HTTP/2 header tables.
        bearer.set_sensitive(true);
        let mut request = self
            .client
            .get(&url)
            .header(AUTHORIZATION, bearer)
            .timeout(timeout);
        if refresh {
            request = request.query(&[("refresh", "normal")]);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Ok(Read::Unavailable(format!("GET {url}: {error}"))),
        };
        match response.status() {
            StatusCode::UNAUTHORIZED => Err(GitopsError::MissingCredentials {
                url: self.server.clone(),
                hint: "Argo CD refused the token (401): set ARGOCD_AUTH_TOKEN (or \
                       --argocd-token) to a valid token",
            }
            .into()),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Err(anyhow::anyhow!(
                "Argo CD answered {} for application `{name}`: no such application, or \
                 the token's account may not `get` it (RBAC)",
                response.status()
            )),
            status if status.is_success() => {
                let application = response
                    .json::<Application>()
                    .await
                    .with_context(|| format!("reading Argo CD's answer for `{name}`"))?;
                Ok(Read::Application(Box::new(application)))
            }
            status => Ok(Read::Unavailable(format!("GET {url}: {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_shape_parses_and_unknown_states_are_unknown() {
        let app: Application = serde_json::from_str(
            r#"{"metadata": {"name": "docket-staging"},
                "spec": {"source": {"targetRevision": "main"}},
                "status": {"sync": {"status": "Synced", "revision": "abc"},
                           "health": {"status": "Degraded", "message": "aborted"}}}"#,
        )
        .unwrap();
        assert_eq!(app.status.sync.status, SyncStatusCode::Synced);
        assert_eq!(app.status.sync.revision.as_deref(), Some("abc"));
        assert_eq!(app.status.health.status, HealthStatusCode::Degraded);

        let fresh: Application = serde_json::from_str(
            r#"{"metadata": {"name": "x"}, "status": {"health": {"status": "Hibernating"}}}"#,
        )
        .unwrap();
        assert_eq!(fresh.status.health.status, HealthStatusCode::Unknown);
        assert_eq!(fresh.status.sync.status, SyncStatusCode::Unknown);
        assert_eq!(fresh.status.sync.revision, None);
    }
}
