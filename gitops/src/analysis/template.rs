//! AnalysisTemplates and the Rollout's analysis steps, read from YAML, with
//! args resolved and substituted as Argo Rollouts would.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use manifests::render::parse_documents;
use serde_json::Value;

use super::condition::Expr;

/// Where the pods of a canary run, for resolving a step's `valueFrom` args.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub namespace: String,
    pub stable_hash: String,
    pub canary_hash: String,
}

/// One Prometheus metric of a template, ready to run.
#[derive(Debug, Clone)]
pub struct Metric {
    pub template: String,
    pub name: String,
    /// The query with every `{{args.*}}` substituted.
    pub query: String,
    pub success: Option<Expr>,
    pub failure: Option<Expr>,
    /// Measurements to take (`count`, default 1).
    pub count: u64,
    /// Failed measurements tolerated (`failureLimit`, default 0).
    pub failure_limit: u64,
    /// Inconclusive measurements tolerated (`inconclusiveLimit`, default 0).
    pub inconclusive_limit: u64,
}

/// An `analysis` step of a Rollout: template names and resolved args.
#[derive(Debug, Clone)]
pub struct Step {
    pub templates: Vec<String>,
    pub args: BTreeMap<String, String>,
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The elements of the array at a JSON pointer (none when absent).
fn items_at<'a>(doc: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> + use<'a> {
    doc.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The `AnalysisTemplate` objects of a YAML stream, by name.
pub fn templates(yaml: &str) -> anyhow::Result<BTreeMap<String, Value>> {
    Ok(parse_documents(yaml)?
        .into_iter()
        .filter(|d| str_at(d, "/kind") == "AnalysisTemplate")
        .map(|d| (str_at(&d, "/metadata/name").to_owned(), d))
        .collect())
}

/// The analysis steps of the first `Rollout` in a YAML stream, with args
/// resolved for `cluster`: `fieldRef: metadata.namespace` is the namespace,
/// `podTemplateHashValue: Latest`/`Stable` the canary's/stable's hash.
pub fn rollout_steps(yaml: &str, cluster: &Cluster) -> anyhow::Result<Vec<Step>> {
    let rollout = parse_documents(yaml)?
        .into_iter()
        .find(|d| str_at(d, "/kind") == "Rollout")
        .context("no Rollout in the YAML")?;
    let steps = rollout
        .pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .context("the Rollout has no canary steps")?;
    let mut out = Vec::new();
    for step in steps.iter().filter_map(|s| s.get("analysis")) {
        let templates = items_at(step, "/templates")
            .map(|t| str_at(t, "/templateName").to_owned())
            .collect();
        let mut args = BTreeMap::new();
        for arg in items_at(step, "/args") {
            let name = str_at(arg, "/name").to_owned();
            let value = if let Some(value) = arg.get("value").and_then(Value::as_str) {
                value.to_owned()
            } else if let Some(path) = arg.pointer("/valueFrom/fieldRef/fieldPath") {
                match path.as_str() {
                    Some("metadata.namespace") => cluster.namespace.clone(),
                    other => bail!("arg {name}: fieldRef {other:?} is not supported here"),
                }
            } else if let Some(which) = arg.pointer("/valueFrom/podTemplateHashValue") {
                match which.as_str() {
                    Some("Latest") => cluster.canary_hash.clone(),
                    Some("Stable") => cluster.stable_hash.clone(),
                    other => bail!("arg {name}: podTemplateHashValue {other:?}"),
                }
            } else {
                bail!("arg {name}: neither value nor a supported valueFrom");
            };
            args.insert(name, value);
        }
        out.push(Step { templates, args });
    }
    Ok(out)
}

/// The Prometheus metrics of `template` with `given` args (defaults from the
/// template's own `args` fill the rest; a missing arg is an error).
pub fn metrics(template: &Value, given: &BTreeMap<String, String>) -> anyhow::Result<Vec<Metric>> {
    let name = str_at(template, "/metadata/name").to_owned();
    let mut args = BTreeMap::new();
    for arg in items_at(template, "/spec/args") {
        let arg_name = str_at(arg, "/name");
        let value = given
            .get(arg_name)
            .cloned()
            .or_else(|| arg.get("value").and_then(Value::as_str).map(str::to_owned))
            .with_context(|| format!("{name}: arg {arg_name} is not given and has no default"))?;
        args.insert(arg_name.to_owned(), value);
    }
    let condition = |metric: &Value, key: &str| -> anyhow::Result<Option<Expr>> {
        match metric.get(key).and_then(Value::as_str) {
            Some(text) if !text.trim().is_empty() => Ok(Some(
                Expr::parse(text).with_context(|| format!("{name}: {key}"))?,
            )),
            _ => Ok(None),
        }
    };
    let mut out = Vec::new();
    for metric in items_at(template, "/spec/metrics") {
        let Some(query) = metric
            .pointer("/provider/prometheus/query")
            .and_then(Value::as_str)
        else {
            continue;
        };
        out.push(Metric {
            template: name.clone(),
            name: str_at(metric, "/name").to_owned(),
            query: substitute(query, &args)?,
            success: condition(metric, "successCondition")?,
            failure: condition(metric, "failureCondition")?,
            count: metric.get("count").and_then(Value::as_u64).unwrap_or(1),
            failure_limit: metric
                .get("failureLimit")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            inconclusive_limit: metric
                .get("inconclusiveLimit")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        });
    }
    Ok(out)
}

/// Replaces `{{args.NAME}}` (spaces allowed inside the braces).
fn substitute(text: &str, args: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").context("unclosed {{ in a query")? + start;
        let key = rest[start + 2..end].trim();
        let arg = key
            .strip_prefix("args.")
            .with_context(|| format!("unsupported placeholder {{{{{key}}}}}"))?;
        out.push_str(
            args.get(arg)
                .with_context(|| format!("no value for {{{{args.{arg}}}}}"))?,
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_substituted_and_unknown_ones_refused() {
        let args = BTreeMap::from([("namespace".to_owned(), "docket".to_owned())]);
        assert_eq!(
            substitute(
                "up{namespace=\"{{args.namespace}}\", x=\"{{ args.namespace }}\"}",
                &args
            )
            .unwrap(),
            "up{namespace=\"docket\", x=\"docket\"}"
        );
        assert!(substitute("{{args.canary-hash}}", &args).is_err());
        assert!(substitute("{{workflow.name}}", &args).is_err());
    }
}
