//! The database's connections fit the server.
//!
//! PostgreSQL refuses connections past `max_connections`, and the app finds
//! out under load, mid-rollout, when every replica's pool fills at once. So
//! each overlay that runs the in-cluster database is added up from what it
//! renders:
//!
//! - app pods: the HorizontalPodAutoscaler's `maxReplicas` plus the
//!   Rollout's `maxSurge` on top of it (what a rollout at the maximum runs);
//! - each app pod: `DATABASE_POOL_SIZE` for requests (the container's env,
//!   else the ConfigMaps it reads, else the app's default) plus one
//!   connection for the outbox relay and one for the change listener;
//! - every other workload reading `DATABASE_URL`: the backup CronJob's
//!   `pg_dump` holds one (its `concurrencyPolicy: Forbid` keeps it to one
//!   run); any other client is refused until this module knows its count;
//! - PostgreSQL's `superuser_reserved_connections` (3 unless set), which
//!   ordinary sessions cannot use.
//!
//! `max_connections` must be set explicitly in the postgres StatefulSet's
//! arguments (`-c max_connections=N`): the default (100) is a property of an
//! image, not a decision. An overlay using `components/external-database`
//! has no postgres StatefulSet; the managed server's limit is not in the
//! tree, so that overlay is not checked. With `components/cloudnative-pg`
//! the limit is the CloudNativePG Cluster's `spec.postgresql.parameters`
//! (`max_connections`, set explicitly there too).

use anyhow::{Context, bail};
use serde_json::Value;

use crate::render::{
    Render, Renders, Target, autoscaler_of, config_maps_read, describe, find, items_at, named,
    pod_template, str_at,
};

/// `DATABASE_POOL_SIZE` when nothing sets it (app/src/config.rs).
const APP_DEFAULT_POOL_SIZE: u64 = 8;
/// The relay's and the change listener's connections, per app replica.
const APP_EXTRA_PER_REPLICA: u64 = 2;
/// Argo Rollouts' `maxSurge` when the Rollout does not set it.
const DEFAULT_MAX_SURGE: &str = "25%";
/// PostgreSQL's `superuser_reserved_connections` default.
const DEFAULT_RESERVED: u64 = 3;
/// The workload names the check knows.
const APP: &str = "todo-app";
const POSTGRES: &str = "postgres";
const BACKUP: &str = "postgres-backup";
/// The CloudNativePG Cluster of components/cloudnative-pg.
const CNPG_CLUSTER: &str = "docket-db";

/// One overlay's connection count, with the numbers it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub max_replicas: u64,
    pub surge: u64,
    pub pool_size: u64,
    /// Other database clients: (`Kind/name`, connections).
    pub others: Vec<(String, u64)>,
    pub reserved: u64,
    pub max_connections: u64,
}

impl Budget {
    pub fn needed(&self) -> u64 {
        (self.max_replicas + self.surge) * (self.pool_size + APP_EXTRA_PER_REPLICA)
            + self.others.iter().map(|(_, n)| n).sum::<u64>()
            + self.reserved
    }

    /// Fails with every number when the connections do not fit.
    pub fn check(&self, overlay: &str) -> anyhow::Result<()> {
        let needed = self.needed();
        if needed <= self.max_connections {
            return Ok(());
        }
        let others: String = self
            .others
            .iter()
            .map(|(what, n)| format!(" + {n} ({what})"))
            .collect();
        bail!(
            "{overlay}: the database may be asked for {needed} connections but allows \
             max_connections {}: ({} app replicas at the HPA maximum + {} surge) × \
             (DATABASE_POOL_SIZE {} + {APP_EXTRA_PER_REPLICA}){others} + {} reserved for \
             superusers. Raise max_connections in the postgres StatefulSet's args, or lower \
             DATABASE_POOL_SIZE or maxReplicas",
            self.max_connections,
            self.max_replicas,
            self.surge,
            self.pool_size,
            self.reserved,
        )
    }
}

pub fn check(renders: &Renders) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for render in renders.of(Target::Overlay) {
        match budget(render) {
            Ok(Some(budget)) => {
                if let Err(err) = budget.check(&render.name) {
                    errors.push(format!("{err:#}"));
                }
            }
            Ok(None) => {}
            Err(err) => errors.push(format!("{}: {err:#}", render.name)),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n  "));
    }
    Ok(())
}

/// The budget of one render, or `None` when it runs no in-cluster database.
pub fn budget(render: &Render) -> anyhow::Result<Option<Budget>> {
    let docs = &render.docs;
    let (max_connections, reserved) = if let Some(postgres) = find(docs, "StatefulSet", POSTGRES) {
        let args: Vec<&str> = items_at(postgres, "/spec/template/spec/containers/0/args")
            .filter_map(Value::as_str)
            .collect();
        let max_connections = server_setting(&args, "max_connections")?.context(
            "the postgres StatefulSet does not set max_connections (`args: [-c, max_connections=N]`)",
        )?;
        let reserved =
            server_setting(&args, "superuser_reserved_connections")?.unwrap_or(DEFAULT_RESERVED);
        (max_connections, reserved)
    } else if let Some(cluster) = find(docs, "Cluster", CNPG_CLUSTER) {
        let parameter = |name: &str| -> anyhow::Result<Option<u64>> {
            cluster
                .pointer(&format!("/spec/postgresql/parameters/{name}"))
                .and_then(Value::as_str)
                .map(|raw| {
                    raw.trim().parse().with_context(|| {
                        format!("the Cluster's parameter {name}={raw} is not a number")
                    })
                })
                .transpose()
        };
        let max_connections = parameter("max_connections")?.context(
            "the CloudNativePG Cluster does not set max_connections (spec.postgresql.parameters)",
        )?;
        (
            max_connections,
            parameter("superuser_reserved_connections")?.unwrap_or(DEFAULT_RESERVED),
        )
    } else {
        return Ok(None);
    };

    let rollout = find(docs, "Rollout", APP).context("no Rollout todo-app")?;
    let max_replicas = autoscaler_of(docs, APP)
        .and_then(|hpa| hpa.pointer("/spec/maxReplicas"))
        .or_else(|| rollout.pointer("/spec/replicas"))
        .map_or(Some(1), Value::as_u64)
        .context("the HPA's maxReplicas (or the Rollout's replicas) is not a number")?;
    let max_surge = rollout.pointer("/spec/strategy/canary/maxSurge");
    let surge = surge(max_surge, max_replicas)?;
    let app = named(rollout, "/spec/template/spec/containers", APP)
        .context("the Rollout has no container todo-app")?;
    let pool_size = pool_size(app, docs)?;

    let mut others = Vec::new();
    for doc in docs {
        let name = str_at(doc, "/metadata/name");
        if matches!(
            (str_at(doc, "/kind"), name),
            ("Rollout", APP) | ("StatefulSet", POSTGRES)
        ) {
            continue;
        }
        let reads_database = pod_template(doc)
            .into_iter()
            .flat_map(|t| items_at(t, "/spec/containers"))
            .any(|c| named(c, "/env", "DATABASE_URL").is_some());
        if !reads_database {
            continue;
        }
        if str_at(doc, "/kind") == "CronJob" && name == BACKUP {
            // One pg_dump session; `concurrencyPolicy: Forbid` keeps it to one run.
            others.push((describe(doc), 1));
        } else {
            bail!(
                "{} reads DATABASE_URL, and connections.rs does not know how many \
                 connections it opens: add it to the database budget",
                describe(doc)
            );
        }
    }

    Ok(Some(Budget {
        max_replicas,
        surge,
        pool_size,
        others,
        reserved,
        max_connections,
    }))
}

/// `name=N` from postgres' `-c name=N` / `--name=N` arguments.
fn server_setting(args: &[&str], name: &str) -> anyhow::Result<Option<u64>> {
    let mut value = None;
    let mut after_c = false;
    for arg in args {
        let setting = if after_c {
            Some(*arg)
        } else {
            arg.strip_prefix("--").or_else(|| arg.strip_prefix("-c"))
        };
        after_c = *arg == "-c";
        if let Some((key, raw)) = setting.and_then(|s| s.split_once('='))
            && key.trim() == name
        {
            value = Some(
                raw.trim()
                    .parse()
                    .with_context(|| format!("postgres argument {name}={raw} is not a number"))?,
            );
        }
    }
    Ok(value)
}

/// Extra pods a rollout may add at `replicas`: an absolute `maxSurge`, or a
/// percentage rounded up, as Argo Rollouts rounds it.
fn surge(max_surge: Option<&Value>, replicas: u64) -> anyhow::Result<u64> {
    let default = Value::String(DEFAULT_MAX_SURGE.to_owned());
    match max_surge.unwrap_or(&default) {
        Value::Number(n) => n.as_u64().context("maxSurge is not a whole number"),
        Value::String(text) => {
            let percent: u64 = text
                .strip_suffix('%')
                .with_context(|| format!("maxSurge {text:?} is neither a number nor a percentage"))?
                .parse()
                .with_context(|| format!("maxSurge {text:?} is not a whole percentage"))?;
            Ok((replicas * percent).div_ceil(100))
        }
        other => bail!("maxSurge {other} is neither a number nor a percentage"),
    }
}

/// The app container's `DATABASE_POOL_SIZE`: its own env wins over the
/// ConfigMaps it reads (later `envFrom` entries win over earlier ones, as in
/// Kubernetes), and the app's default applies when none sets it.
fn pool_size(app: &Value, docs: &[Value]) -> anyhow::Result<u64> {
    const VARIABLE: &str = "DATABASE_POOL_SIZE";
    let mut raw = None;
    for name in config_maps_read(app) {
        let config_map = find(docs, "ConfigMap", name)
            .with_context(|| format!("the app reads ConfigMap {name}, which is not rendered"))?;
        if let Some(value) = config_map.pointer(&format!("/data/{VARIABLE}")) {
            raw = value.as_str();
        }
    }
    if let Some(entry) = named(app, "/env", VARIABLE) {
        raw = Some(
            entry
                .get("value")
                .and_then(Value::as_str)
                .with_context(|| format!("{VARIABLE} must be a literal value to be counted"))?,
        );
    }
    match raw {
        Some(text) => text
            .parse()
            .with_context(|| format!("{VARIABLE} {text:?} is not a number")),
        None => Ok(APP_DEFAULT_POOL_SIZE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(pool: Option<&str>, max_connections: &str, max_replicas: u64) -> Render {
        let mut config = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "todo-app-79cct229ck"}, "data": {"PORT": "8080"}});
        if let Some(pool) = pool {
            config["data"]["DATABASE_POOL_SIZE"] = json!(pool);
        }
        Render {
            name: "overlay/production".to_owned(),
            target: Target::Overlay,
            file: "unused".into(),
            docs: vec![
                config,
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                    "metadata": {"name": "todo-app"},
                    "spec": {"strategy": {"canary": {"maxSurge": "25%"}},
                        "template": {"spec": {"containers": [{"name": "todo-app",
                            "envFrom": [{"configMapRef": {"name": "todo-app-79cct229ck"}}],
                            "env": [{"name": "DATABASE_URL", "valueFrom": {}}]}]}}}}),
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "todo-app"},
                    "spec": {"scaleTargetRef": {"kind": "Rollout", "name": "todo-app"},
                        "maxReplicas": max_replicas}}),
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "metadata": {"name": "postgres"},
                    "spec": {"template": {"spec": {"containers": [{"name": "postgres",
                        "args": ["-c", max_connections]}]}}}}),
                json!({"apiVersion": "batch/v1", "kind": "CronJob",
                    "metadata": {"name": "postgres-backup"},
                    "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                        {"name": "backup", "env": [{"name": "DATABASE_URL", "valueFrom": {}}]}]}}}}}}),
            ],
        }
    }

    #[test]
    fn the_budget_counts_replicas_surge_pools_the_backup_and_the_reserve() {
        let budget = budget(&render(Some("4"), "max_connections=120", 12))
            .unwrap()
            .unwrap();
        assert_eq!(
            budget,
            Budget {
                max_replicas: 12,
                surge: 3,
                pool_size: 4,
                others: vec![("CronJob/postgres-backup".to_owned(), 1)],
                reserved: 3,
                max_connections: 120,
            }
        );
        // (12 + 3) × (4 + 2) + 1 + 3
        assert_eq!(budget.needed(), 94);
        budget.check("overlay/production").unwrap();
    }

    #[test]
    fn an_overfull_database_fails_naming_every_number() {
        // The app's default pool of 8: (10 + 3) × 10 + 1 + 3 = 134 > 100.
        let budget = budget(&render(None, "max_connections=100", 10))
            .unwrap()
            .unwrap();
        let err = budget.check("overlay/production").unwrap_err().to_string();
        assert_eq!(
            err,
            "overlay/production: the database may be asked for 134 connections but allows \
             max_connections 100: (10 app replicas at the HPA maximum + 3 surge) × \
             (DATABASE_POOL_SIZE 8 + 2) + 1 (CronJob/postgres-backup) + 3 reserved for \
             superusers. Raise max_connections in the postgres StatefulSet's args, or lower \
             DATABASE_POOL_SIZE or maxReplicas"
        );
    }

    #[test]
    fn max_connections_must_be_set_explicitly() {
        let err = budget(&render(Some("4"), "shared_buffers=128MB", 4))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not set max_connections"), "{err}");
    }

    #[test]
    fn an_unknown_database_client_is_refused_until_counted() {
        let mut render = render(Some("4"), "max_connections=120", 4);
        render
            .docs
            .push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "reporter"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "r", "env": [{"name": "DATABASE_URL", "value": "postgres://x"}]}]}}}}));
        let err = budget(&render).unwrap_err().to_string();
        assert!(
            err.starts_with("Deployment/reporter reads DATABASE_URL"),
            "{err}"
        );
    }

    #[test]
    fn an_overlay_without_the_in_cluster_database_is_not_counted() {
        let mut render = render(Some("4"), "max_connections=1", 4);
        render.docs.retain(|d| str_at(d, "/kind") != "StatefulSet");
        assert_eq!(budget(&render).unwrap(), None);
    }

    #[test]
    fn a_cloudnative_pg_cluster_is_counted_by_its_parameters() {
        let mut render = render(Some("4"), "max_connections=1", 12);
        render.docs.retain(|d| str_at(d, "/kind") != "StatefulSet");
        render.docs.push(
            json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "docket-db"},
            "spec": {"postgresql": {"parameters": {"max_connections": "90"}}}}),
        );
        let counted = budget(&render).unwrap().unwrap();
        assert_eq!((counted.max_connections, counted.reserved), (90, 3));
        // (12 + 3) × (4 + 2) + 1 + 3 = 94 > 90
        assert!(counted.check("overlay/production").is_err());

        render.docs.last_mut().unwrap()["spec"]["postgresql"]["parameters"] = json!({});
        let err = budget(&render).unwrap_err().to_string();
        assert!(
            err.contains("Cluster does not set max_connections"),
            "{err}"
        );
    }

    #[test]
    fn server_settings_are_read_in_both_argument_forms() {
        assert_eq!(
            server_setting(&["-c", "max_connections=50"], "max_connections").unwrap(),
            Some(50)
        );
        assert_eq!(
            server_setting(&["--max_connections=60"], "max_connections").unwrap(),
            Some(60)
        );
        assert_eq!(
            server_setting(
                &["-cmax_connections=70", "-c", "work_mem=4MB"],
                "max_connections"
            )
            .unwrap(),
            Some(70)
        );
        assert_eq!(
            server_setting(&["-c", "work_mem=4MB"], "max_connections").unwrap(),
            None
        );
        assert!(server_setting(&["-c", "max_connections=lots"], "max_connections").is_err());
    }

    #[test]
    fn surge_rounds_a_percentage_up_and_takes_a_count_as_is() {
        assert_eq!(surge(Some(&json!("25%")), 12).unwrap(), 3);
        assert_eq!(surge(Some(&json!("25%")), 10).unwrap(), 3);
        assert_eq!(surge(Some(&json!(2)), 10).unwrap(), 2);
        assert_eq!(surge(None, 4).unwrap(), 1);
        assert!(surge(Some(&json!("a lot")), 4).is_err());
    }

    #[test]
    fn the_container_env_wins_over_its_configmaps() {
        let mut render = render(Some("4"), "max_connections=120", 4);
        render.docs[1]["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "DATABASE_POOL_SIZE", "value": "6"}));
        assert_eq!(budget(&render).unwrap().unwrap().pool_size, 6);
    }
}
