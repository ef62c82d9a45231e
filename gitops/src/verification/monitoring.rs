//! Step 2: Prometheus monitors the environment as it now runs.
//!
//! The app's pods are the series with `namespace` and
//! `app_kubernetes_io_name="todo-app"` (labels the PodMonitor copies from
//! the pod), one per `pod`. The environment counts as monitored when
//! Prometheus scrapes at least one such pod, every one of them is up
//! (`up == 1`), every one reports the expected commit through
//! `todo_app_build_info{commit=…}`, and requests to pods of that commit are
//! counted: this step sends a few ordinary `GET /` through the public URL
//! and waits until `http_requests_total` of those pods has grown past what
//! it was when the pods first looked right. (Probes and scrapes are left
//! out, so only real requests count.)

use std::collections::BTreeMap;

use crate::analysis::prometheus::Prometheus;

use super::{Deadline, Progress, promql_string, short};

/// The app's label value, as the pods carry it.
pub const APP_NAME: &str = "todo-app";
/// Requests sent through the public URL per look.
const REQUESTS_PER_LOOK: usize = 5;
/// Routes of the orchestrator and of monitoring: never counted as traffic.
const OPS_ROUTES: &str = "/healthz|/readyz|/metrics|/version";

/// Where to look and what to expect.
#[derive(Debug)]
pub struct Expected<'a> {
    pub namespace: &'a str,
    pub commit: &'a str,
    /// The environment's public base URL.
    pub url: &'a str,
}

/// What Prometheus said about one pod.
#[derive(Debug, Default)]
struct Pod {
    up: bool,
    commits: Vec<String>,
}

/// One look: the pods and the requests counted for the expected commit.
#[derive(Debug)]
struct Observation {
    pods: BTreeMap<String, Pod>,
    requests: f64,
}

impl Observation {
    /// Why the environment does not count as monitored yet, if it does not.
    fn problem(&self, expected: &Expected<'_>) -> Option<String> {
        if self.pods.is_empty() {
            return Some(format!(
                "Prometheus scrapes no {APP_NAME} pod in namespace {}",
                expected.namespace
            ));
        }
        let down: Vec<&str> = self
            .pods
            .iter()
            .filter(|(_, pod)| !pod.up)
            .map(|(name, _)| name.as_str())
            .collect();
        if !down.is_empty() {
            return Some(format!("not scraped (up == 0): {}", down.join(", ")));
        }
        let others: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, pod)| pod.commits != [expected.commit])
            .map(|(name, pod)| {
                let commits = if pod.commits.is_empty() {
                    "no todo_app_build_info".to_owned()
                } else {
                    pod.commits
                        .iter()
                        .map(|c| format!("commit {}", short(c)))
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                format!("{name} ({commits})")
            })
            .collect();
        if !others.is_empty() {
            return Some(format!(
                "pods not reporting commit {}: {}",
                short(expected.commit),
                others.join(", ")
            ));
        }
        None
    }
}

/// Polls Prometheus until the environment is monitored (see the module
/// documentation).
pub async fn wait_until_monitored(
    prometheus: &Prometheus,
    expected: &Expected<'_>,
    deadline: &Deadline,
) -> anyhow::Result<()> {
    let waiting_for = format!(
        "Prometheus scraping every {APP_NAME} pod in {}, each on commit {}, with requests counted",
        expected.namespace,
        short(expected.commit)
    );
    let client = super::client_without_keep_alive()?;
    let mut progress = Progress::default();
    let mut counted_before: Option<f64> = None;
    loop {
        let last = match observe(prometheus, expected).await {
            Err(error) => format!("{error:#}"),
            Ok(seen) => match seen.problem(expected) {
                Some(problem) => problem,
                None => {
                    let pods = seen.pods.len();
                    match counted_before {
                        Some(before) if seen.requests > before => {
                            progress.report(
                                "prometheus",
                                &format!(
                                    "{pods} pod(s) up on commit {}, {} requests counted",
                                    short(expected.commit),
                                    seen.requests
                                ),
                            );
                            return Ok(());
                        }
                        Some(_) => {}
                        None => counted_before = Some(seen.requests),
                    }
                    send_requests(&client, expected.url).await;
                    format!(
                        "{pods} pod(s) up on commit {}; {} requests counted, waiting for the \
                         ones sent to {} to be counted",
                        short(expected.commit),
                        seen.requests,
                        expected.url
                    )
                }
            },
        };
        progress.report("prometheus", &last);
        deadline.wait(&waiting_for, &last).await?;
    }
}

async fn observe(prometheus: &Prometheus, expected: &Expected<'_>) -> anyhow::Result<Observation> {
    let selector = format!(
        "namespace={}, app_kubernetes_io_name={}",
        promql_string(expected.namespace),
        promql_string(APP_NAME)
    );
    let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
    for sample in prometheus.vector(&format!("up{{{selector}}}")).await? {
        pods.entry(sample.label("pod").to_owned()).or_default().up |= sample.value == 1.0;
    }
    for sample in prometheus
        .vector(&format!("todo_app_build_info{{{selector}}}"))
        .await?
    {
        // Only pods that are scraped now: a build_info series without a
        // matching `up` would be a stale leftover.
        if let Some(pod) = pods.get_mut(sample.label("pod")) {
            pod.commits.push(sample.label("commit").to_owned());
        }
    }
    let requests = prometheus
        .query(&format!(
            "sum(http_requests_total{{{selector}, route!~{ops}}} \
             and on (namespace, pod) todo_app_build_info{{{selector}, commit={commit}}})",
            ops = promql_string(OPS_ROUTES),
            commit = promql_string(expected.commit)
        ))
        .await?
        .into_iter()
        .sum();
    Ok(Observation { pods, requests })
}

/// A few ordinary page loads through the public URL; their answers do not
/// matter here (the E2E suite judges those), only that they are counted.
async fn send_requests(client: &reqwest::Client, url: &str) {
    let page = format!("{}/", url.trim_end_matches('/'));
    for _ in 0..REQUESTS_PER_LOOK {
        let _ = client.get(&page).send().await;
    }
}
