//! promtool on the alerting rules and the compose Prometheus configuration.
//!
//! The PrometheusRule in `kustomize/components/monitoring/` is the one copy
//! of Docket's alerts. promtool reads plain rules files, so each rendered
//! PrometheusRule's `spec` is written to
//! `target/manifests/promtool/<name>.rules.yaml`, beside copies of the unit
//! tests in `kustomize/components/monitoring/tests/` (which load
//! `rule_files: [docket.rules.yaml]`).

use std::path::Path;

use anyhow::{Context, bail};

use crate::render::{Renders, str_at};
use crate::tools::Tools;

const COMPONENT: &str = "component/monitoring";
const TESTS: &str = "kustomize/components/monitoring/tests";

pub fn check(root: &Path, tools: &Tools, renders: &Renders, work: &Path) -> anyhow::Result<()> {
    let dir = work.join("promtool");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;

    let mut rule_files = Vec::new();
    for rule in renders
        .get(COMPONENT)?
        .docs
        .iter()
        .filter(|d| str_at(d, "/kind") == "PrometheusRule")
    {
        let spec = rule.get("spec").context("PrometheusRule without spec")?;
        let name = format!("{}.rules.yaml", str_at(rule, "/metadata/name"));
        std::fs::write(dir.join(&name), serde_yaml_ng::to_string(spec)?)?;
        rule_files.push(name);
    }
    if rule_files.is_empty() {
        bail!("{COMPONENT} renders no PrometheusRule");
    }
    let mut cmd = tools.command("promtool");
    cmd.current_dir(&dir)
        .args(["check", "rules"])
        .args(&rule_files);
    tools.run(cmd, "promtool check rules")?;

    let mut tests = Vec::new();
    for entry in std::fs::read_dir(root.join(TESTS)).with_context(|| format!("reading {TESTS}"))? {
        let path = entry?.path();
        if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".test.yaml"))
        {
            std::fs::copy(&path, dir.join(name))?;
            tests.push(name.to_owned());
        }
    }
    if tests.is_empty() {
        bail!("no rule unit tests (*.test.yaml) in {TESTS}");
    }
    tests.sort();
    let mut cmd = tools.command("promtool");
    cmd.current_dir(&dir).args(["test", "rules"]).args(&tests);
    tools.run(cmd, "promtool test rules")?;

    let config = root.join("deploy/prometheus.yml");
    if config.exists() {
        let mut cmd = tools.command("promtool");
        cmd.args(["check", "config"]).arg(&config);
        tools.run(cmd, "promtool check config deploy/prometheus.yml")?;
    }
    Ok(())
}
