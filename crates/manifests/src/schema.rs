//! Schema validation of every rendered object.
//!
//! Built-in kinds are checked twice: by `kubernetes-validate --strict` (its
//! bundled schemas cover every built-in kind) and by the strict JSON schemas
//! in `kustomize/schemas/k8s/` where one exists. Custom resources (Argo CD,
//! Argo Rollouts, the Prometheus Operator, …) are checked against the JSON
//! schemas derived from their CRDs in `kustomize/schemas/crd-jsonschema/`.
//! The schemas are vendored (see `kustomize/schemas/README.md`), so the
//! repository and the config repository it is published to validate
//! themselves. An object that no schema covers is an error.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::render::{Renders, describe, str_at};
use crate::tools::{KUBERNETES_VERSION, Tools, combined};

/// Where the vendored schemas live, relative to the repository root.
pub const SCHEMA_DIR: &str = "kustomize/schemas";

/// The vendored schema folder, [`SCHEMA_DIR`] in the checkout.
pub struct Schemas {
    crd: PathBuf,
    k8s: PathBuf,
}

impl Schemas {
    /// Fails loudly when the folder is missing: without it Argo kinds would
    /// go unvalidated, which must never pass silently.
    pub fn locate(root: &Path) -> anyhow::Result<Schemas> {
        let dir = root.join(SCHEMA_DIR);
        let crd = dir.join("crd-jsonschema");
        let k8s = dir.join(format!("k8s/v{KUBERNETES_VERSION}-standalone-strict"));
        for needed in [&crd, &k8s] {
            if !needed.is_dir() {
                bail!(
                    "{} is missing: the custom resources' schemas and the strict \
                     Kubernetes schemas are vendored in {SCHEMA_DIR} (see its README); \
                     the manifests cannot be validated without them",
                    needed.display()
                );
            }
        }
        Ok(Schemas { crd, k8s })
    }

    /// The JSON schema file for an object's kind, if the folder has one.
    fn file_for(&self, doc: &Value) -> Option<PathBuf> {
        let (group, version) = group_version(str_at(doc, "/apiVersion"));
        let kind = str_at(doc, "/kind").to_lowercase();
        let label = group.split('.').next().unwrap_or_default();
        let path = if !is_builtin(group) {
            self.crd.join(format!("{kind}-{label}-{version}.json"))
        } else if group.is_empty() {
            self.k8s.join(format!("{kind}-{version}.json"))
        } else {
            self.k8s.join(format!("{kind}-{label}-{version}.json"))
        };
        path.is_file().then_some(path)
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// Built-in API groups: the core group and the `*.k8s.io`-less groups
/// Kubernetes itself serves, plus `*.k8s.io`.
fn is_builtin(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

pub fn validate(tools: &Tools, schemas: &Schemas, renders: &Renders) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    let mut validators: HashMap<PathBuf, jsonschema::Validator> = HashMap::new();
    let mut validated = 0;

    for render in &renders.0 {
        let passed = kubernetes_validate(tools, &render.file, &mut errors)?;
        for doc in &render.docs {
            let what = format!("{}: {}", render.name, describe(doc));
            let (group, _) = group_version(str_at(doc, "/apiVersion"));
            let kind = str_at(doc, "/kind");
            let mut covered = false;

            if is_builtin(group) {
                let key = format!("{}/{}", kind.to_lowercase(), str_at(doc, "/metadata/name"));
                if passed.contains(&key) {
                    covered = true;
                } else {
                    errors.push(format!(
                        "{what}: kubernetes-validate did not report it as valid"
                    ));
                }
            }
            if let Some(file) = schemas.file_for(doc) {
                if !validators.contains_key(&file) {
                    validators.insert(file.clone(), compile(&file)?);
                }
                let validator = &validators[&file];
                for error in validator.iter_errors(doc) {
                    errors.push(format!("{what}: {error} (at {})", error.instance_path()));
                }
                covered = true;
            }
            if !covered {
                errors.push(format!("{what}: no schema covers {group}/{kind}"));
            }
            validated += 1;
        }
    }

    if !errors.is_empty() {
        bail!(
            "{} schema error(s):\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    println!("manifests: {validated} rendered objects valid");
    Ok(())
}

fn compile(file: &Path) -> anyhow::Result<jsonschema::Validator> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut schema: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    ecma_patterns(&mut schema);
    // The vendored schemas were checked with Draft 7 (see their README).
    jsonschema::draft7::new(&schema)
        .map_err(|err| anyhow::anyhow!("compiling {}: {err}", file.display()))
}

/// CRD patterns are Go RE2, JSON Schema's are ECMA-262. The one RE2 form
/// the vendored schemas use that ECMA lacks is a leading case-insensitive
/// flag, `^(?i)…` (the Prometheus Operator's `partial_response_strategy`):
/// it becomes the same pattern with each letter as a two-case class, so the
/// vendored files stay byte for byte what upstream ships.
fn ecma_patterns(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(pattern) if key == "pattern" => {
                        if let Some(rest) = pattern.strip_prefix("^(?i)") {
                            *pattern = format!("^{}", both_cases(rest));
                        }
                    }
                    _ => ecma_patterns(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(ecma_patterns),
        _ => {}
    }
}

/// `abort` → `[aA][bB][oO][rR][tT]`, leaving escapes and classes alone.
fn both_cases(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            c if c.is_ascii_alphabetic() && !in_class => {
                out.push('[');
                out.push(c.to_ascii_lowercase());
                out.push(c.to_ascii_uppercase());
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// Runs `kubernetes-validate --strict` on one rendered file; records its
/// errors and returns the `kind/name` of every object it reported as passed.
fn kubernetes_validate(
    tools: &Tools,
    file: &Path,
    errors: &mut Vec<String>,
) -> anyhow::Result<BTreeSet<String>> {
    let mut cmd = tools.command("kubernetes-validate");
    cmd.args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .arg(file);
    let output = cmd.output().context("starting kubernetes-validate")?;
    let text = combined(&output);
    let mut passed = BTreeSet::new();
    for line in text.lines() {
        // "INFO <file> passed for resource <kind>/<name> against version 1.34"
        if let Some(rest) = line.split(" passed for resource ").nth(1) {
            if let Some(resource) = rest.split_whitespace().next() {
                passed.insert(resource.to_owned());
            }
        } else if line.starts_with("ERROR") {
            errors.push(line.to_owned());
        }
    }
    if !output.status.success() && !text.lines().any(|l| l.starts_with("ERROR")) {
        errors.push(format!(
            "kubernetes-validate failed on {}: {text}",
            file.display()
        ));
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_schema_folder_is_a_loud_error() {
        let err = Schemas::locate(Path::new("/nonexistent/docket/main"))
            .err()
            .expect("no schemas there")
            .to_string();
        assert!(err.contains(SCHEMA_DIR), "{err}");
        assert!(err.contains("cannot be validated"), "{err}");
    }

    #[test]
    fn schema_files_are_found_by_group_kind_and_version() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let schemas = Schemas::locate(&root).expect("the vendored schemas");
        let file = |api_version: &str, kind: &str| {
            schemas
                .file_for(&json!({"apiVersion": api_version, "kind": kind}))
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        };
        for (api_version, kind, expected) in [
            (
                "argoproj.io/v1alpha1",
                "Rollout",
                Some("rollout-argoproj-v1alpha1.json"),
            ),
            ("apps/v1", "Deployment", Some("deployment-apps-v1.json")),
            ("v1", "Service", Some("service-v1.json")),
            (
                "networking.k8s.io/v1",
                "NetworkPolicy",
                Some("networkpolicy-networking-v1.json"),
            ),
            (
                "monitoring.coreos.com/v1",
                "PodMonitor",
                Some("podmonitor-monitoring-v1.json"),
            ),
            ("example.com/v1", "Widget", None),
        ] {
            assert_eq!(
                file(api_version, kind).as_deref(),
                expected,
                "{kind} in {api_version}"
            );
        }
    }

    #[test]
    fn a_leading_case_insensitive_flag_becomes_two_case_letters() {
        let mut schema = json!({"properties": {"s": {"pattern": "^(?i)(abort|warn)?$"}}});
        ecma_patterns(&mut schema);
        let pattern = schema["properties"]["s"]["pattern"].as_str().unwrap();
        assert_eq!(pattern, "^([aA][bB][oO][rR][tT]|[wW][aA][rR][nN])?$");
        assert_eq!(both_cases(r"\d[a-z]x"), r"\d[a-z][xX]");
        let validator = jsonschema::draft7::new(&schema).unwrap();
        for good in ["abort", "WARN", "Warn", ""] {
            assert!(validator.is_valid(&json!({"s": good})), "{good}");
        }
        assert!(!validator.is_valid(&json!({"s": "abort!"})));
    }

    #[test]
    fn every_vendored_schema_compiles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let schemas = Schemas::locate(&root).unwrap();
        for dir in [&schemas.crd, &schemas.k8s] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let file = entry.unwrap().path();
                compile(&file).unwrap();
            }
        }
    }

    #[test]
    fn only_kubernetes_own_groups_count_as_built_in() {
        assert!(is_builtin(""));
        assert!(is_builtin("apps"));
        assert!(is_builtin("networking.k8s.io"));
        assert!(!is_builtin("argoproj.io"));
        assert!(!is_builtin("monitoring.coreos.com"));
    }
}
