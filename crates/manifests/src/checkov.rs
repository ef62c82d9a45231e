//! checkov's Kubernetes policies on each rendered overlay and component: no
//! failed check, and every skip justified.
//!
//! checkov runs on the rendered YAML (its `kubernetes` framework) rather than
//! on the kustomize folders, so it sees exactly what Argo CD applies and
//! cannot silently lose results to a missing or wrong `kubectl`. It has no
//! policies for Argo Rollouts, so each Rollout is also handed to it as a
//! Deployment with the same metadata and pod template, and each KEDA
//! ScaledJob as the Job it starts: the app's and the request Jobs' pods get
//! the same scrutiny as every other workload. `BC_SKIP_MAPPING=TRUE` and
//! `--skip-download` keep it offline.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::render::{Renders, Target, items_at, str_at};
use crate::tools::Tools;

pub fn check(tools: &Tools, renders: &Renders, work: &Path) -> anyhow::Result<()> {
    let dir = work.join("checkov");
    std::fs::create_dir_all(&dir)?;
    let mut errors = Vec::new();
    for render in renders
        .of(Target::Overlay)
        .chain(renders.of(Target::Component))
    {
        let mut docs = render.docs.clone();
        docs.extend(render.docs.iter().filter_map(|d| match str_at(d, "/kind") {
            "Rollout" => Some(as_deployment(d)),
            "ScaledJob" => Some(as_job(d)),
            _ => None,
        }));
        let file = dir.join(format!("{}.yaml", render.name.replace('/', "-")));
        std::fs::write(&file, to_yaml_stream(&docs)?)?;

        let mut cmd = tools.command("checkov");
        if render.target == Target::Component {
            // A component's images are names until an overlay gives them a
            // tag or digest; the overlays are checked for that.
            cmd.args(["--skip-check", "CKV_K8S_14"]);
        }
        cmd.arg("--file")
            .arg(&file)
            .args([
                "--framework",
                "kubernetes",
                "--output",
                "json",
                "--quiet",
                "--compact",
                "--skip-download",
            ])
            .env("BC_SKIP_MAPPING", "TRUE");
        // checkov exits 1 when a check fails; the JSON report is the verdict.
        let output = cmd.output().context("starting checkov")?;
        let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "checkov printed no JSON report for {}:\n{}{}",
                render.name,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        summarize(&render.name, &report, &mut errors);
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n  "));
    }
    Ok(())
}

/// Adds to `errors` what is wrong with one checkov report.
fn summarize(name: &str, report: &Value, errors: &mut Vec<String>) {
    let count = |key: &str| {
        report
            .pointer(&format!("/summary/{key}"))
            .and_then(Value::as_u64)
    };
    let (Some(passed), Some(failed), Some(skipped)) =
        (count("passed"), count("failed"), count("skipped"))
    else {
        errors.push(format!(
            "{name}: checkov report has no summary (did it scan anything?): {report}"
        ));
        return;
    };
    println!("manifests: checkov {name}: {passed} passed, {failed} failed, {skipped} skipped");
    if passed == 0 {
        errors.push(format!(
            "{name}: checkov passed no check at all, so it checked nothing"
        ));
    }
    if count("parsing_errors").unwrap_or(0) > 0 {
        errors.push(format!(
            "{name}: checkov could not parse the rendered manifests"
        ));
    }
    for failure in checks(report, "failed_checks") {
        errors.push(format!(
            "{name}: {} {} on {}",
            str_at(failure, "/check_id"),
            str_at(failure, "/check_name"),
            str_at(failure, "/resource")
        ));
    }
    for skip in checks(report, "skipped_checks") {
        let reason = str_at(skip, "/check_result/suppress_comment").trim();
        // checkov fills in this text when an annotation gives no reason.
        if reason.is_empty() || reason == "No comment provided" {
            errors.push(format!(
                "{name}: {} skipped on {} without a reason",
                str_at(skip, "/check_id"),
                str_at(skip, "/resource")
            ));
        }
    }
}

fn checks<'a>(report: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    items_at(report, &format!("/results/{key}"))
}

/// A Deployment carrying a Rollout's metadata and pod template.
fn as_deployment(rollout: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": rollout.get("metadata").cloned().unwrap_or_default(),
        "spec": {
            "replicas": 1,
            "selector": rollout.pointer("/spec/selector").cloned().unwrap_or_default(),
            "template": rollout.pointer("/spec/template").cloned().unwrap_or_default(),
        },
    })
}

/// The Job a KEDA ScaledJob starts: its metadata and job template.
fn as_job(scaled_job: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": scaled_job.get("metadata").cloned().unwrap_or_default(),
        "spec": scaled_job.pointer("/spec/jobTargetRef").cloned().unwrap_or_default(),
    })
}

fn to_yaml_stream(docs: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(doc)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_or_an_unexplained_skip_is_reported() {
        let report = json!({
            "summary": {"passed": 10, "failed": 1, "skipped": 2, "parsing_errors": 0},
            "results": {
                "failed_checks": [{"check_id": "CKV_K8S_8", "check_name": "Liveness Probe Should be Configured", "resource": "Deployment.x.y"}],
                "skipped_checks": [
                    {"check_id": "CKV_K8S_35", "resource": "Deployment.x.y", "check_result": {"suppress_comment": "env by design"}},
                    {"check_id": "CKV_K8S_43", "resource": "Deployment.x.y", "check_result": {"suppress_comment": "No comment provided"}}
                ]
            }
        });
        let mut errors = Vec::new();
        summarize("overlay/x", &report, &mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("CKV_K8S_8"));
        assert!(errors[1].contains("CKV_K8S_43") && errors[1].contains("without a reason"));
    }

    #[test]
    fn a_scaled_job_is_checked_as_the_job_it_starts_with_its_skips() {
        let scaled = json!({
            "kind": "ScaledJob",
            "metadata": {"name": "w", "annotations": {"checkov.io/skip1": "CKV_K8S_35=reason"}},
            "spec": {"jobTargetRef": {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "c"}]}}}}
        });
        let job = as_job(&scaled);
        assert_eq!(str_at(&job, "/kind"), "Job");
        assert_eq!(
            str_at(&job, "/metadata/annotations/checkov.io~1skip1"),
            "CKV_K8S_35=reason"
        );
        assert_eq!(str_at(&job, "/spec/template/spec/containers/0/name"), "c");
        assert_eq!(job.pointer("/spec/backoffLimit"), Some(&json!(0)));
    }

    #[test]
    fn a_report_that_checked_nothing_fails() {
        let mut errors = Vec::new();
        summarize(
            "overlay/x",
            &json!({"summary": {"passed": 0, "failed": 0, "skipped": 0}}),
            &mut errors,
        );
        assert_eq!(errors.len(), 1);
        summarize("overlay/x", &json!({"passed": 0}), &mut errors);
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn a_rollout_is_checked_as_a_deployment_with_its_pod_template() {
        let rollout = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "todo-app", "annotations": {"checkov.io/skip1": "CKV_K8S_35=reason"}},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": []}}}
        });
        let deployment = as_deployment(&rollout);
        assert_eq!(deployment["kind"], "Deployment");
        assert_eq!(deployment["metadata"], rollout["metadata"]);
        assert_eq!(deployment["spec"]["template"], rollout["spec"]["template"]);
    }
}
