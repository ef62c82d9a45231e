//! Step 3: the public URL answers the expected commit, and only it.
//!
//! One answer proves little: during a canary the Service sends some
//! connections to the new pods and most to the old ones. So `/version` must
//! report the expected commit (and version, when given) on a run of
//! consecutive requests, each on a new connection; any other answer starts
//! the run again after one interval.

use serde::Deserialize;

use super::{Deadline, Progress, short};

/// What `/version` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    pub version: String,
    pub commit: String,
}

/// What must be served, and for how many requests in a row.
#[derive(Debug)]
pub struct Expected<'a> {
    pub url: &'a str,
    pub commit: &'a str,
    pub version: Option<&'a str>,
    pub consecutive: u32,
}

impl Expected<'_> {
    fn matches(&self, seen: &Version) -> bool {
        seen.commit == self.commit && self.version.is_none_or(|v| v == seen.version)
    }

    fn describe(&self) -> String {
        match self.version {
            Some(version) => format!("commit {} version {version}", self.commit),
            None => format!("commit {}", self.commit),
        }
    }
}

/// Polls until `consecutive` answers in a row match; returns the last.
pub async fn wait_until_only_expected(
    expected: &Expected<'_>,
    deadline: &Deadline,
) -> anyhow::Result<Version> {
    let url = format!("{}/version", expected.url.trim_end_matches('/'));
    let client = super::client_without_keep_alive()?;
    let waiting_for = format!(
        "{url} answering {} on {} requests in a row",
        expected.describe(),
        expected.consecutive
    );
    let mut progress = Progress::default();
    loop {
        let mut run = 0;
        let last = loop {
            match fetch(&client, &url).await {
                Ok(seen) if expected.matches(&seen) => {
                    run += 1;
                    if run >= expected.consecutive {
                        progress.report(
                            "serving",
                            &format!("{run} answers in a row from commit {}", short(&seen.commit)),
                        );
                        return Ok(seen);
                    }
                }
                Ok(seen) => {
                    break format!(
                        "commit {} version {} after {run} matching answer(s)",
                        seen.commit, seen.version
                    );
                }
                Err(error) => break format!("{error:#} after {run} matching answer(s)"),
            }
        };
        progress.report("serving", &last);
        deadline.wait(&waiting_for, &last).await?;
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
