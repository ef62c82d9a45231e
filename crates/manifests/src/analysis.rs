//! The canary's analysis is wired up, cannot error on a quiet canary, and
//! cannot pass one.
//!
//! Schemas cannot see across objects: a Rollout step naming a template that
//! does not exist, or omitting an argument the template needs, validates fine
//! and only fails in the cluster, mid-rollout. Argo Rollouts also records an
//! Error (and after a few, aborts) when a condition indexes an empty result,
//! which is exactly what a canary without traffic returns; so every Prometheus
//! metric must state both conditions, its failure and inconclusive limits, and
//! guard `result[0]`. And an empty result is no evidence: the success
//! condition must require `len(result) > 0`, so that "no traffic" or "labels
//! that match nothing" is Inconclusive (the rollout waits for a person), never
//! Successful.

use std::collections::BTreeSet;

use anyhow::bail;
use serde_json::Value;

use crate::render::{Render, Renders, Target, describe, items_at, str_at};

pub fn check(renders: &Renders) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    let mut steps_checked = 0;
    for render in renders.of(Target::Base).chain(renders.of(Target::Overlay)) {
        steps_checked += check_render(render, &mut errors);
    }
    if steps_checked == 0 {
        errors.push("no Rollout analysis step found: the canary would never be judged".to_owned());
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n  "));
    }
    Ok(())
}

fn check_render(render: &Render, errors: &mut Vec<String>) -> usize {
    let templates: Vec<&Value> = render
        .docs
        .iter()
        .filter(|d| str_at(d, "/kind") == "AnalysisTemplate")
        .collect();
    for template in &templates {
        check_template(&render.name, template, errors);
    }

    let mut steps_checked = 0;
    for rollout in render
        .docs
        .iter()
        .filter(|d| str_at(d, "/kind") == "Rollout")
    {
        let steps = items_at(rollout, "/spec/strategy/canary/steps");
        for step in steps.filter_map(|s| s.get("analysis")) {
            steps_checked += 1;
            let given: BTreeSet<&str> = names(step, "/args");
            for reference in items_at(step, "/templates") {
                let wanted = str_at(reference, "/templateName");
                let Some(template) = templates
                    .iter()
                    .find(|t| str_at(t, "/metadata/name") == wanted)
                else {
                    errors.push(format!(
                        "{}: {} names AnalysisTemplate {wanted}, which is not rendered",
                        render.name,
                        describe(rollout)
                    ));
                    continue;
                };
                let declared = names(template, "/spec/args");
                for arg in items_at(template, "/spec/args") {
                    let name = str_at(arg, "/name");
                    if arg.get("value").is_none()
                        && arg.get("valueFrom").is_none()
                        && !given.contains(name)
                    {
                        errors.push(format!(
                            "{}: {} does not pass arg `{name}` that {wanted} requires",
                            render.name,
                            describe(rollout)
                        ));
                    }
                }
                for name in given.difference(&declared) {
                    errors.push(format!(
                        "{}: {} passes arg `{name}` that {wanted} does not declare",
                        render.name,
                        describe(rollout)
                    ));
                }
            }
        }
    }
    steps_checked
}

fn check_template(render: &str, template: &Value, errors: &mut Vec<String>) {
    for metric in items_at(template, "/spec/metrics") {
        if metric.pointer("/provider/prometheus").is_none() {
            continue;
        }
        let what = format!(
            "{render}: {} metric {}",
            describe(template),
            str_at(metric, "/name")
        );
        let success = str_at(metric, "/successCondition");
        let failure = str_at(metric, "/failureCondition");
        if success.is_empty() || failure.is_empty() {
            errors.push(format!(
                "{what}: needs both successCondition and failureCondition"
            ));
        }
        for limit in ["failureLimit", "inconclusiveLimit"] {
            if metric.get(limit).is_none() {
                errors.push(format!("{what}: needs an explicit {limit}"));
            }
        }
        let compact: String = success.split_whitespace().collect();
        if !success.is_empty() && !compact.contains("len(result)>0") {
            errors.push(format!(
                "{what}: successCondition must require len(result) > 0: an empty result \
                 (no traffic, or labels that match nothing) is no evidence of health"
            ));
        }
        for (name, condition) in [("successCondition", success), ("failureCondition", failure)] {
            if condition.contains("result[0]")
                && !(condition.contains("len(result)") && condition.contains("isNaN("))
            {
                errors.push(format!(
                    "{what}: {name} indexes result[0] without guarding an empty result \
                     (len(result)) and NaN (isNaN)"
                ));
            }
        }
    }
}

fn names<'a>(doc: &'a Value, pointer: &str) -> BTreeSet<&'a str> {
    items_at(doc, pointer).map(|a| str_at(a, "/name")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(docs: Vec<Value>) -> Render {
        Render {
            name: "base".to_owned(),
            target: Target::Base,
            file: "unused".into(),
            docs,
        }
    }

    fn template(success: &str) -> Value {
        json!({
            "kind": "AnalysisTemplate",
            "metadata": {"name": "error-ratio"},
            "spec": {
                "args": [{"name": "namespace"}, {"name": "address", "value": "http://p:9090"}],
                "metrics": [{
                    "name": "m", "failureLimit": 1, "inconclusiveLimit": 0,
                    "successCondition": success,
                    "failureCondition": "len(result) > 0 && !isNaN(result[0]) && result[0] > 0.05",
                    "provider": {"prometheus": {"query": "q"}}
                }]
            }
        })
    }

    fn rollout(args: Value) -> Value {
        json!({
            "kind": "Rollout", "metadata": {"name": "todo-app"},
            "spec": {"strategy": {"canary": {"steps": [
                {"setWeight": 20},
                {"analysis": {"templates": [{"templateName": "error-ratio"}], "args": args}}
            ]}}}
        })
    }

    /// What checking a render of `docs` reports.
    fn errors_of(docs: Vec<Value>) -> Vec<String> {
        let mut errors = Vec::new();
        check_render(&render(docs), &mut errors);
        errors
    }

    /// The one error checking a render of `docs` reports; fails the test
    /// if there is not exactly one.
    fn only_error(docs: Vec<Value>) -> String {
        let errors = errors_of(docs);
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    const GUARDED: &str = "len(result) > 0 && !isNaN(result[0]) && result[0] <= 0.05";

    #[test]
    fn a_wired_and_guarded_analysis_passes() {
        let mut errors = Vec::new();
        let steps = check_render(
            &render(vec![
                template(GUARDED),
                rollout(json!([{"name": "namespace", "value": "x"}])),
            ]),
            &mut errors,
        );
        assert_eq!((steps, errors), (1, Vec::<String>::new()));
    }

    #[test]
    fn a_condition_indexing_an_empty_result_is_rejected() {
        let errors = errors_of(vec![template("result[0] <= 0.05")]);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("without guarding an empty result")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_success_condition_that_passes_an_empty_result_is_rejected() {
        let passes_on_nothing = "len(result) == 0 || isNaN(result[0]) || result[0] <= 0.05";
        let error = only_error(vec![template(passes_on_nothing)]);
        assert!(error.contains("must require len(result) > 0"), "{error}");
    }

    #[test]
    fn the_limits_must_be_explicit() {
        let mut bare = template(GUARDED);
        let metric = bare.pointer_mut("/spec/metrics/0").unwrap();
        metric.as_object_mut().unwrap().remove("inconclusiveLimit");
        let error = only_error(vec![bare]);
        assert!(error.contains("explicit inconclusiveLimit"), "{error}");
    }

    #[test]
    fn missing_templates_and_mismatched_args_are_reported() {
        let errors = errors_of(vec![
            template(GUARDED),
            rollout(json!([{"name": "namespaze", "value": "x"}])),
        ]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("does not pass arg `namespace`"));
        assert!(errors[1].contains("passes arg `namespaze`"));

        let errors = errors_of(vec![rollout(json!([]))]);
        assert!(errors[0].contains("names AnalysisTemplate error-ratio, which is not rendered"));
    }
}
