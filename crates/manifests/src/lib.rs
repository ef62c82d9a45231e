//! Proves the deployment tree offline with real tools: the checks behind
//! `cargo xtask manifests` (a step of `cargo xtask test`) and `gitops verify`.
//! One copy, two callers: CI and a pre-commit hook run exactly the same checks.
//!
//! No cluster runs in CI, so every file under `kustomize/`, `argocd/`,
//! `docker/`, `.github/` and `deploy/` is checked by rendering and validating
//! it with the tools a cluster and a reviewer would trust:
//!
//! 1. `kubectl kustomize` renders the base, both overlays, each component (on
//!    top of the base) and `argocd/`.
//! 2. Every rendered object validates against a schema: built-in kinds with
//!    `kubernetes-validate --strict` and the vendored strict JSON schemas,
//!    custom resources (Argo CD, Argo Rollouts, the Prometheus Operator, …)
//!    against their CRD schemas, all vendored in `kustomize/schemas/`. A kind
//!    with no schema fails.
//! 3. The Rollout's analysis steps name templates that exist, with the args
//!    those templates declare.
//! 4. checkov on the rendered overlays: 0 failed checks, every skip carries a
//!    reason.
//! 5. yamllint, hadolint, actionlint (with shellcheck), `promtool check rules`
//!    plus the rule unit tests, `promtool check config`.
//! 6. Staging and production differ only where intended.
//! 7. The database's connections fit its `max_connections` in every overlay.
//! 8. The canary's weights are the share of pods the cluster runs.
//! 9. Objects that name each other agree: the Rollout's Istio VirtualService,
//!    routes and subsets; a KEDA trigger's stream and consumer.
//!
//! The Python tools live in a venv under `target/tools/venv`, created and
//! filled from pinned versions on first use; see [`tools`].

mod analysis;
mod canary;
mod checkov;
mod connections;
mod lint;
mod overlays;
pub mod pod;
mod references;
pub mod render;
mod rules;
mod schema;
pub mod settings;
pub mod tools;
#[cfg(test)]
mod tree_tests;
mod vendored;

pub use schema::SCHEMA_DIR;
pub use vendored::refresh_schemas;

use std::path::Path;

use anyhow::{Context, bail};

/// Runs every check of the deployment tree under `root` (the workspace root),
/// installing the tools it needs on first use. Fails with the first problem
/// found by each check, after running all of them.
pub fn validate(root: &Path) -> anyhow::Result<()> {
    let schemas = schema::Schemas::locate(root)?;
    let settings = settings::Settings::load(root)?;
    let tools = tools::Tools::ensure(root).context("installing the manifest tools")?;
    let work = root.join("target/manifests");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let renders = render::render_all(root, &tools, &work)?;

    // Independent checks: run them all and report every failure together, so
    // one run shows everything that needs fixing.
    let mut failures = Vec::new();
    let mut check = |name: &str, result: anyhow::Result<()>| match result {
        Ok(()) => println!("manifests: {name}: ok"),
        Err(err) => {
            println!("manifests: {name}: FAILED");
            failures.push(format!("{name}: {err:#}"));
        }
    };
    check("schemas", schema::validate(&tools, &schemas, &renders));
    check("analysis templates", analysis::check(&renders));
    check("checkov", checkov::check(&tools, &renders, &work));
    check("yamllint", lint::yamllint(root, &tools, &renders));
    check("hadolint", lint::hadolint(root, &tools));
    check("actionlint", lint::actionlint(root, &tools));
    check("promtool", rules::check(root, &tools, &renders, &work));
    check(
        "overlays differ only where intended",
        overlays::check(&settings, &renders),
    );
    check("database connections", connections::check(&renders));
    check("canary weights", canary::check(&renders));
    check("cross-object references", references::check(&renders));

    if failures.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} manifest check(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        )
    }
}
