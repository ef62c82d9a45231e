//! Prometheus scraping the smoke test's containers as the monitoring
//! component configures it, and the canary analysis run against it.
//!
//! The rendered overlay's PodMonitor says which pods are scraped (its
//! selector against each pod template's labels), on which named port and
//! path, and which pod labels become series labels (`podTargetLabels`,
//! sanitized as the Prometheus Operator does). Each matching container's
//! published port becomes a target with those labels plus the ones the
//! operator adds (`namespace`, `pod`, `container`, `endpoint`). Argo
//! Rollouts labels the Rollout's pods with `rollouts-pod-template-hash`; no
//! controller runs here, so the smoke test gives the app's container that
//! label itself, and the Rollout's analysis steps (templates and args read
//! from the render, [`gitops::analysis`]) then judge it as the canary.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use gitops::analysis::prometheus::Prometheus as Client;
use gitops::analysis::template::{self, Cluster, Metric};
use gitops::analysis::{self, Phase, Run};
use manifests::render::{Render, describe, items_at, pod_template, str_at};
use serde_json::Value;
use test_support::ScrapeTarget;

/// The label Argo Rollouts gives each pod of a Rollout's ReplicaSet.
const HASH_LABEL: &str = "rollouts-pod-template-hash";
/// The template hash the smoke test's app container stands for.
pub const CANARY_HASH: &str = "smoke";

/// The scraping a PodMonitor describes.
#[derive(Debug, PartialEq, Eq)]
pub struct PodMonitor {
    selector: BTreeMap<String, String>,
    target_labels: Vec<String>,
    port: String,
    path: String,
}

impl PodMonitor {
    /// The render's one PodMonitor, with its one endpoint.
    pub fn read(docs: &[Value]) -> anyhow::Result<PodMonitor> {
        let mut monitors = docs
            .iter()
            .filter(|doc| str_at(doc, "/kind") == "PodMonitor");
        let monitor = monitors.next().context("the render has no PodMonitor")?;
        if let Some(other) = monitors.next() {
            bail!(
                "the render has more than one PodMonitor ({})",
                describe(other)
            );
        }
        let name = describe(monitor);
        if monitor.pointer("/spec/selector/matchExpressions").is_some() {
            bail!("{name}: spec.selector.matchExpressions is not supported here");
        }
        let selector = monitor
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .with_context(|| format!("{name}: no spec.selector.matchLabels"))?
            .iter()
            .map(|(key, value)| {
                Ok((
                    key.clone(),
                    value.as_str().context("a label value")?.to_owned(),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let target_labels = items_at(monitor, "/spec/podTargetLabels")
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let endpoints: Vec<&Value> = items_at(monitor, "/spec/podMetricsEndpoints").collect();
        let [endpoint] = endpoints[..] else {
            bail!("{name}: exactly one podMetricsEndpoints entry is supported here");
        };
        for key in endpoint
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, _)| key)
        {
            if !matches!(key.as_str(), "port" | "path" | "interval") {
                bail!("{name}: podMetricsEndpoints[0].{key} is not supported here");
            }
        }
        let port = str_at(endpoint, "/port");
        if port.is_empty() {
            bail!("{name}: podMetricsEndpoints[0] names no port");
        }
        let path = match str_at(endpoint, "/path") {
            "" => "/metrics",
            path => path,
        };
        Ok(PodMonitor {
            selector,
            target_labels,
            port: port.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The port name scraped.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// The target for `container` of `workload` (published on `host_port`),
    /// or `None` when the PodMonitor does not select its pods. `extra` are
    /// labels the pod gets at run time (the Rollout's template hash).
    pub fn target(
        &self,
        workload: &Value,
        container: &str,
        host_port: u16,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Option<ScrapeTarget>> {
        let name = describe(workload);
        let template = pod_template(workload).with_context(|| format!("{name} runs no pods"))?;
        let mut labels: BTreeMap<String, String> = template
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
            .collect();
        labels.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let selected = self
            .selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value));
        if !selected {
            return Ok(None);
        }
        let mut series = vec![
            (
                "namespace".to_owned(),
                str_at(workload, "/metadata/namespace").to_owned(),
            ),
            ("pod".to_owned(), format!("{container}-smoke")),
            ("container".to_owned(), container.to_owned()),
            ("endpoint".to_owned(), self.port.clone()),
        ];
        series.extend(self.target_labels.iter().filter_map(|label| {
            labels
                .get(label)
                .map(|value| (sanitized(label), value.clone()))
        }));
        Ok(Some(ScrapeTarget {
            port: host_port,
            path: self.path.clone(),
            labels: series,
        }))
    }
}

/// A Kubernetes label name as a Prometheus label name: every character
/// outside `[a-zA-Z0-9_]` becomes `_`.
fn sanitized(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The label Argo Rollouts would give the Rollout's pods, for
/// [`PodMonitor::target`].
pub fn canary_label() -> [(&'static str, &'static str); 1] {
    [(HASH_LABEL, CANARY_HASH)]
}

/// Runs every analysis step of the render's Rollout against `prometheus`
/// with the app container as the canary, the templates' interval
/// compressed to `interval`; returns each step's run.
pub async fn analyse(
    render: &Render,
    prometheus: &Client,
    interval: Duration,
) -> anyhow::Result<Vec<Run>> {
    let yaml = std::fs::read_to_string(&render.file)
        .with_context(|| format!("reading {}", render.file.display()))?;
    let rollout = render
        .docs
        .iter()
        .find(|doc| str_at(doc, "/kind") == "Rollout")
        .context("the render has no Rollout")?;
    let cluster = Cluster {
        namespace: str_at(rollout, "/metadata/namespace").to_owned(),
        stable_hash: "stable".to_owned(),
        canary_hash: CANARY_HASH.to_owned(),
    };
    let templates = template::templates(&yaml)?;
    let steps = template::rollout_steps(&yaml, &cluster)?;
    if steps.is_empty() {
        bail!("the Rollout has no analysis step");
    }
    let mut runs = Vec::new();
    for step in &steps {
        let mut metrics: Vec<Metric> = Vec::new();
        for name in &step.templates {
            let template = templates
                .get(name)
                .with_context(|| format!("the render has no AnalysisTemplate {name}"))?;
            metrics.extend(template::metrics(template, &step.args)?);
        }
        runs.push(analysis::run(prometheus, &metrics, interval).await?);
    }
    Ok(runs)
}

/// One line for the report: each step's phase and each metric's last value.
pub fn summary(runs: &[Run]) -> String {
    runs.iter()
        .map(|run| {
            let metrics: Vec<String> = run
                .metrics
                .iter()
                .map(|metric| {
                    let last = metric
                        .measurements
                        .last()
                        .and_then(|(values, _)| values.first())
                        .map_or("no value".to_owned(), |value| format!("{value:.3}"));
                    let short = metric.name.rsplit('/').next().unwrap_or(&metric.name);
                    format!("{short} {last}")
                })
                .collect();
            format!("{:?} ({})", run.phase, metrics.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether every run passed.
pub fn passed(runs: &[Run]) -> bool {
    runs.iter().all(|run| run.phase == Phase::Successful)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn monitor() -> Value {
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": "docket", "namespace": "docket-staging"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/part-of": "docket",
                "docket.dev/scraped": "true"}},
            "podTargetLabels": ["app.kubernetes.io/name", "rollouts-pod-template-hash"],
            "podMetricsEndpoints": [{"port": "admin", "path": "/metrics", "interval": "30s"}]
        }})
    }

    fn rollout(scraped: bool) -> Value {
        let mut labels = json!({"app.kubernetes.io/name": "todo-app",
            "app.kubernetes.io/part-of": "docket"});
        if scraped {
            labels["docket.dev/scraped"] = json!("true");
        }
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "todo-app", "namespace": "docket-staging"},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {}}}})
    }

    #[test]
    fn a_selected_pod_is_scraped_with_the_labels_the_operator_gives_it() {
        let monitor = PodMonitor::read(&[monitor()]).unwrap();
        let target = monitor
            .target(&rollout(true), "todo-app", 40000, &canary_label())
            .unwrap()
            .expect("selected");
        assert_eq!(target.port, 40000);
        assert_eq!(target.path, "/metrics");
        let labels: BTreeMap<_, _> = target.labels.into_iter().collect();
        assert_eq!(labels["namespace"], "docket-staging");
        assert_eq!(labels["container"], "todo-app");
        assert_eq!(labels["endpoint"], "admin");
        assert_eq!(labels["app_kubernetes_io_name"], "todo-app");
        assert_eq!(labels["rollouts_pod_template_hash"], CANARY_HASH);
        assert!(
            !labels.contains_key("app_kubernetes_io_part_of"),
            "{labels:?}"
        );

        assert!(
            monitor
                .target(&rollout(false), "todo-app", 40000, &[])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_podmonitor_setting_that_is_not_reproduced_is_refused_by_name() {
        let mut doc = monitor();
        doc["spec"]["podMetricsEndpoints"][0]["relabelings"] = json!([]);
        let error = PodMonitor::read(&[doc]).unwrap_err();
        assert!(error.to_string().contains("relabelings"), "{error}");
    }
}
