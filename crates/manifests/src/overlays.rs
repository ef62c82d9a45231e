//! Staging and production differ only where intended.
//!
//! Staging is only a rehearsal for production if both run the same objects.
//! The intended differences are: the namespace (and its Namespace object),
//! the Ingress host, the broadcaster's mode and webhook format (what each
//! environment does with events: staging logs them, production posts them
//! to a team chat; and so the hash in its generated ConfigMap's name,
//! wherever that name is referenced), the app's replica
//! bounds, the backup CronJob (with its volume), the image references, and
//! production's engines: NATS as a three-server cluster
//! (`components/nats-cluster`: the StatefulSet's replicas, governing
//! Service, start-up policy, placement, cluster arguments, `POD_NAME` and
//! route port, its route Service, PodDisruptionBudget and NetworkPolicy, and
//! `NATS_STREAM_REPLICAS` in the app's and the broadcaster's ConfigMaps, so
//! their generated names too) and PostgreSQL run by CloudNativePG
//! (`components/cloudnative-pg`: its objects instead of the postgres
//! StatefulSet, Service, ServiceAccount and their two NetworkPolicies).
//! Everything else must be identical after masking exactly those fields, and
//! the masked fields must hold the values each environment is meant to have
//! (the hosts as `kustomize/settings` says, the cluster's arguments naming
//! each of its servers, the streams' replicas equal to the servers).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use serde_json::Value;

use crate::render::{Renders, describe, generated_base_name, items_at, named, str_at};
use crate::settings::Settings;

/// What each environment must say in the fields allowed to differ.
struct Intended {
    overlay: &'static str,
    namespace: &'static str,
    host: String,
    /// The app's `PUBLIC_URL`: https:// and the host.
    public_url: String,
    broadcaster_mode: &'static str,
    /// `WEBHOOK_FORMAT` values this environment may use.
    broadcaster_formats: &'static [&'static str],
    /// nats-server replicas; also the copies every stream must ask for.
    nats_servers: u64,
}

/// Staging logs events, so its format is the base's and goes unused.
const STAGING_FORMATS: &[&str] = &["generic"];
/// Production posts to a team chat, in that chat's own message shape.
const CHAT_FORMATS: &[&str] = &["discord", "slack", "telegram"];

/// The keys of the broadcaster's ConfigMap allowed to differ: what it does
/// with events, and in which shape. Its target (URL, token) comes from the
/// Secret `docket-webhook`, referenced the same way in both.
const BROADCASTER_KEYS: &[&str] = &["BROADCASTER_MODE", "WEBHOOK_FORMAT"];

fn staging(settings: &Settings) -> Intended {
    Intended {
        overlay: "overlay/staging",
        namespace: "docket-staging",
        host: settings.staging_host.clone(),
        public_url: format!("https://{}", settings.staging_host),
        broadcaster_mode: "log",
        broadcaster_formats: STAGING_FORMATS,
        nats_servers: 1,
    }
}

fn production(settings: &Settings) -> Intended {
    Intended {
        overlay: "overlay/production",
        namespace: "docket-production",
        host: settings.production_host.clone(),
        public_url: format!("https://{}", settings.production_host),
        broadcaster_mode: "forward",
        broadcaster_formats: CHAT_FORMATS,
        nats_servers: 3,
    }
}

/// Generated ConfigMaps whose content, and so whose name's hash, differs by
/// intent (the broadcaster's mode; both services' stream replicas; the
/// app's public address). Any
/// other generated name must be the same in both environments.
const HASH_MAY_DIFFER: &[&str] = &["broadcaster", "todo-app"];

/// The setting every service creating a stream reads (`events::STREAM_REPLICAS_VARIABLE`).
const STREAM_REPLICAS: &str = "NATS_STREAM_REPLICAS";
/// The ConfigMaps of the services that create streams, by generator name.
const STREAM_CREATORS: &[&str] = &["todo-app", "broadcaster"];
/// The app's address as browsers see it: its environment's host.
const PUBLIC_URL: &str = "PUBLIC_URL";

/// Objects only production has, with the component that brings them.
const PRODUCTION_ONLY: &[(&str, &str)] = &[
    ("CronJob/postgres-backup", "backup"),
    ("PersistentVolumeClaim/postgres-backups", "backup"),
    ("Service/nats-cluster", "nats-cluster"),
    ("PodDisruptionBudget/nats", "nats-cluster"),
    ("NetworkPolicy/nats-cluster-routes", "nats-cluster"),
    ("Cluster/docket-db", "cloudnative-pg"),
    ("ObjectStore/docket-backups", "cloudnative-pg"),
    ("ScheduledBackup/docket-db-daily", "cloudnative-pg"),
    ("PodMonitor/docket-db", "cloudnative-pg"),
    ("NetworkPolicy/docket-db-ingress", "cloudnative-pg"),
    ("NetworkPolicy/docket-db-egress", "cloudnative-pg"),
    ("NetworkPolicy/docket-db-client-egress", "cloudnative-pg"),
];

/// Objects only staging has: the in-cluster database that CloudNativePG
/// replaces in production, with the component that removes them there.
const STAGING_ONLY: &[(&str, &str)] = &[
    ("StatefulSet/postgres", "cloudnative-pg"),
    ("Service/postgres", "cloudnative-pg"),
    ("ServiceAccount/postgres", "cloudnative-pg"),
    ("NetworkPolicy/postgres-ingress", "cloudnative-pg"),
    ("NetworkPolicy/postgres-client-egress", "cloudnative-pg"),
];

/// The nats-server arguments that make a cluster of `servers`, after the
/// base's own (components/nats-cluster/statefulset-patch.yaml): each server
/// named after its pod, and routes to every server by its stable name.
fn cluster_arguments(servers: u64) -> Vec<String> {
    if servers <= 1 {
        return Vec::new();
    }
    let routes: Vec<String> = (0..servers)
        .map(|n| format!("nats://nats-{n}.nats-cluster:6222"))
        .collect();
    vec![
        "--name=$(POD_NAME)".to_owned(),
        "--cluster_name=docket".to_owned(),
        "--cluster=nats://0.0.0.0:6222".to_owned(),
        format!("--routes={}", routes.join(",")),
    ]
}

/// Whether a nats-server argument is one of the cluster's.
fn is_cluster_argument(argument: &str) -> bool {
    ["--name=", "--cluster_name=", "--cluster=", "--routes="]
        .iter()
        .any(|prefix| argument.starts_with(prefix))
}

pub fn check(settings: &Settings, renders: &Renders) -> anyhow::Result<()> {
    let (staging_intended, production_intended) = (staging(settings), production(settings));
    let staging = &renders.get(staging_intended.overlay)?.docs;
    let production = &renders.get(production_intended.overlay)?.docs;
    let mut errors = compare(staging, production);
    let staging_facts = facts(staging);
    let production_facts = facts(production);
    errors.extend(staging_facts.mismatches(&staging_intended));
    errors.extend(production_facts.mismatches(&production_intended));
    if production_facts.min_replicas <= staging_facts.min_replicas {
        errors.push(format!(
            "production should run more app replicas than staging (minReplicas {:?} vs {:?})",
            production_facts.min_replicas, staging_facts.min_replicas
        ));
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n  "));
    }
    Ok(())
}

/// Every unintended difference between the two renders.
fn compare(staging: &[Value], production: &[Value]) -> Vec<String> {
    let index = |docs: &[Value]| -> BTreeMap<String, Value> {
        mask_generated_names(docs)
            .iter()
            .map(|d| {
                let masked = mask(d);
                (describe(&masked), masked)
            })
            .collect()
    };
    let staging = index(staging);
    let production = index(production);
    let mut errors = Vec::new();
    let listed = |list: &[(&str, &str)], key: &str| list.iter().any(|(k, _)| *k == key);

    for key in staging.keys().filter(|k| !production.contains_key(*k)) {
        if !listed(STAGING_ONLY, key) {
            errors.push(format!("{key} is in staging but not in production"));
        }
    }
    for key in production.keys().filter(|k| !staging.contains_key(*k)) {
        if !listed(PRODUCTION_ONLY, key) {
            errors.push(format!("{key} is in production but not in staging"));
        }
    }
    for (expected, component) in PRODUCTION_ONLY {
        if !production.contains_key(*expected) {
            errors.push(format!(
                "{expected} (the {component} component) is missing from production"
            ));
        }
        if staging.contains_key(*expected) {
            errors.push(format!(
                "{expected} (the {component} component) must not be in staging"
            ));
        }
    }
    for (expected, component) in STAGING_ONLY {
        if !staging.contains_key(*expected) {
            errors.push(format!(
                "{expected} is missing from staging (only production replaces it, with the {component} component)"
            ));
        }
        if production.contains_key(*expected) {
            errors.push(format!(
                "{expected} must not be in production (the {component} component replaces it)"
            ));
        }
    }
    for (key, left) in &staging {
        if let Some(right) = production.get(key)
            && let Some(at) = first_difference(left, right, String::new())
        {
            errors.push(format!(
                "{key} differs between staging and production at {at}"
            ));
        }
    }
    errors
}

/// Copies of `docs` in which the generated names listed in
/// [`HASH_MAY_DIFFER`] end in `-<hash>`, as the ConfigMap's own name and
/// wherever a value names it (envFrom, volumes).
fn mask_generated_names(docs: &[Value]) -> Vec<Value> {
    let masked: BTreeMap<String, String> = docs
        .iter()
        .filter(|d| str_at(d, "/kind") == "ConfigMap")
        .filter_map(|d| {
            let name = str_at(d, "/metadata/name");
            let base = generated_base_name(name)?;
            HASH_MAY_DIFFER
                .contains(&base)
                .then(|| (name.to_owned(), format!("{base}-<hash>")))
        })
        .collect();
    docs.iter()
        .map(|doc| {
            let mut doc = doc.clone();
            replace_strings(&mut doc, &masked);
            doc
        })
        .collect()
}

fn replace_strings(value: &mut Value, replacements: &BTreeMap<String, String>) {
    match value {
        Value::String(text) => {
            if let Some(replacement) = replacements.get(text.as_str()) {
                *text = replacement.clone();
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_strings(v, replacements)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_strings(v, replacements)),
        _ => {}
    }
}

/// A copy of `doc` with the intended differences replaced by placeholders.
fn mask(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("namespace");
    }
    let placeholder = |doc: &mut Value, pointer: &str, text: &str| {
        if let Some(value) = doc.pointer_mut(pointer) {
            *value = Value::String(text.to_owned());
        }
    };
    if str_at(&doc, "/kind") == "Namespace" {
        placeholder(&mut doc, "/metadata/name", "<namespace>");
    }
    match describe(&doc).as_str() {
        "Ingress/todo-app" => {
            for rule in array_mut(&mut doc, "/spec/rules") {
                placeholder(rule, "/host", "<host>");
            }
            for tls in array_mut(&mut doc, "/spec/tls") {
                for host in array_mut(tls, "/hosts") {
                    *host = Value::String("<host>".to_owned());
                }
            }
        }
        "ConfigMap/broadcaster" | "ConfigMap/broadcaster-<hash>" => {
            for key in BROADCASTER_KEYS {
                placeholder(&mut doc, &format!("/data/{key}"), "<differs by intent>");
            }
            remove(&mut doc, "/data", STREAM_REPLICAS);
        }
        "ConfigMap/todo-app" | "ConfigMap/todo-app-<hash>" => {
            remove(&mut doc, "/data", STREAM_REPLICAS);
            placeholder(&mut doc, &format!("/data/{PUBLIC_URL}"), "<public url>");
        }
        "StatefulSet/nats" => mask_nats_cluster(&mut doc),
        "HorizontalPodAutoscaler/todo-app" => {
            placeholder(&mut doc, "/spec/minReplicas", "<replicas>");
            placeholder(&mut doc, "/spec/maxReplicas", "<replicas>");
        }
        _ => {}
    }
    strip_image_references(&mut doc);
    doc
}

/// The base's single server with the cluster's settings taken out, as
/// [`facts`] checks them separately: what remains must be the same server.
fn mask_nats_cluster(doc: &mut Value) {
    for pointer in ["/spec/replicas", "/spec/serviceName"] {
        if let Some(value) = doc.pointer_mut(pointer) {
            *value = Value::String("<differs by intent>".to_owned());
        }
    }
    remove(doc, "/spec", "podManagementPolicy");
    remove(doc, "/spec/template/spec", "affinity");
    remove(doc, "/spec/template/spec", "topologySpreadConstraints");
    for container in array_mut(doc, "/spec/template/spec/containers") {
        if str_at(container, "/name") != "nats" {
            continue;
        }
        retain(container, "/args", |arg| {
            !arg.as_str().is_some_and(is_cluster_argument)
        });
        retain(container, "/env", |var| str_at(var, "/name") != "POD_NAME");
        retain(container, "/ports", |port| {
            str_at(port, "/name") != "cluster"
        });
    }
}

/// Removes `key` from the object at `pointer`, if both exist.
fn remove(doc: &mut Value, pointer: &str, key: &str) {
    if let Some(object) = doc.pointer_mut(pointer).and_then(Value::as_object_mut) {
        object.remove(key);
    }
}

/// Keeps the elements of the array at `pointer` that `keep` accepts.
fn retain(doc: &mut Value, pointer: &str, keep: impl Fn(&Value) -> bool) {
    if let Some(items) = doc.pointer_mut(pointer).and_then(Value::as_array_mut) {
        items.retain(keep);
    }
}

fn array_mut<'a>(doc: &'a mut Value, pointer: &str) -> impl Iterator<Item = &'a mut Value> {
    doc.pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// `registry/name:tag` and `registry/name@sha256:…` become `registry/name`
/// in every `image` field: the tag or digest is what promotion changes.
fn strip_image_references(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(image) if key == "image" => *image = image_name(image).to_owned(),
                    _ => strip_image_references(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_image_references),
        _ => {}
    }
}

fn image_name(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].find(':') {
        Some(colon) => &reference[..last_slash + colon],
        None => reference,
    }
}

/// The JSON pointer of the first place two values differ.
fn first_difference(left: &Value, right: &Value, at: String) -> Option<String> {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            keys.into_iter().find_map(|k| match (l.get(k), r.get(k)) {
                (Some(a), Some(b)) => first_difference(a, b, format!("{at}/{k}")),
                _ => Some(format!("{at}/{k}")),
            })
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => l
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, format!("{at}/{i}"))),
        _ if left == right => None,
        _ => Some(if at.is_empty() { "/".to_owned() } else { at }),
    }
}

/// The values of the fields allowed to differ, as one render has them.
#[derive(Debug, Default)]
struct Facts {
    namespaces: BTreeSet<String>,
    hosts: BTreeSet<String>,
    /// The app's `PUBLIC_URL`.
    public_url: Option<String>,
    broadcaster_mode: Option<String>,
    broadcaster_format: Option<String>,
    min_replicas: Option<u64>,
    nats_replicas: Option<u64>,
    /// The nats container's cluster arguments, in order.
    nats_cluster_arguments: Vec<String>,
    /// `NATS_STREAM_REPLICAS` of each stream-creating service's ConfigMap
    /// (`None`: unset, so the default of one copy).
    stream_replicas: BTreeMap<String, Option<String>>,
}

fn facts(docs: &[Value]) -> Facts {
    let mut facts = Facts::default();
    for doc in docs {
        // A Namespace is cluster-scoped: its name is the namespace it makes.
        let namespace = if str_at(doc, "/kind") == "Namespace" {
            str_at(doc, "/metadata/name")
        } else {
            str_at(doc, "/metadata/namespace")
        };
        facts.namespaces.insert(namespace.to_owned());
        let name = str_at(doc, "/metadata/name");
        let base = generated_base_name(name).unwrap_or(name);
        match format!("{}/{base}", str_at(doc, "/kind")).as_str() {
            "Ingress/todo-app" => {
                let rules = items_at(doc, "/spec/rules");
                facts
                    .hosts
                    .extend(rules.map(|r| str_at(r, "/host").to_owned()));
                let tls_hosts = items_at(doc, "/spec/tls").flat_map(|t| items_at(t, "/hosts"));
                facts
                    .hosts
                    .extend(tls_hosts.filter_map(Value::as_str).map(str::to_owned));
            }
            "ConfigMap/broadcaster" => {
                let data = |key: &str| {
                    doc.pointer(&format!("/data/{key}"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                facts.broadcaster_mode = data("BROADCASTER_MODE");
                facts.broadcaster_format = data("WEBHOOK_FORMAT");
            }
            "ConfigMap/todo-app" => {
                facts.public_url = doc
                    .pointer(&format!("/data/{PUBLIC_URL}"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            "HorizontalPodAutoscaler/todo-app" => {
                facts.min_replicas = doc.pointer("/spec/minReplicas").and_then(Value::as_u64);
            }
            "StatefulSet/nats" => {
                facts.nats_replicas = doc.pointer("/spec/replicas").and_then(Value::as_u64);
                let container = named(doc, "/spec/template/spec/containers", "nats");
                facts.nats_cluster_arguments = container
                    .into_iter()
                    .flat_map(|c| items_at(c, "/args"))
                    .filter_map(Value::as_str)
                    .filter(|arg| is_cluster_argument(arg))
                    .map(str::to_owned)
                    .collect();
            }
            _ => {}
        }
        if str_at(doc, "/kind") == "ConfigMap" && STREAM_CREATORS.contains(&base) {
            let replicas = doc
                .pointer(&format!("/data/{STREAM_REPLICAS}"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            facts.stream_replicas.insert(base.to_owned(), replicas);
        }
    }
    facts
}

impl Facts {
    fn mismatches(&self, intended: &Intended) -> Vec<String> {
        let env = intended.overlay;
        let mut errors = Vec::new();
        if self.namespaces != BTreeSet::from([intended.namespace.to_owned()]) {
            errors.push(format!(
                "{env}: every object belongs in {}, found {:?}",
                intended.namespace, self.namespaces
            ));
        }
        if self.hosts != BTreeSet::from([intended.host.to_owned()]) {
            errors.push(format!(
                "{env}: the Ingress must serve {} only, found {:?}",
                intended.host, self.hosts
            ));
        }
        if self.public_url.as_deref() != Some(intended.public_url.as_str()) {
            errors.push(format!(
                "{env}: the app's {PUBLIC_URL} must be {}, found {:?}",
                intended.public_url, self.public_url
            ));
        }
        if self.broadcaster_mode.as_deref() != Some(intended.broadcaster_mode) {
            errors.push(format!(
                "{env}: BROADCASTER_MODE must be {}, found {:?}",
                intended.broadcaster_mode, self.broadcaster_mode
            ));
        }
        if !self
            .broadcaster_format
            .as_deref()
            .is_some_and(|format| intended.broadcaster_formats.contains(&format))
        {
            errors.push(format!(
                "{env}: WEBHOOK_FORMAT must be one of {:?}, found {:?}",
                intended.broadcaster_formats, self.broadcaster_format
            ));
        }
        // One server in the base; more only with their cluster arguments.
        let servers = intended.nats_servers;
        if self.nats_replicas.unwrap_or(1) != servers {
            errors.push(format!(
                "{env}: the nats StatefulSet must run {servers} server(s), found {:?}",
                self.nats_replicas
            ));
        }
        if self.nats_cluster_arguments != cluster_arguments(servers) {
            errors.push(format!(
                "{env}: nats-server's cluster arguments must be {:?}, found {:?}",
                cluster_arguments(servers),
                self.nats_cluster_arguments
            ));
        }
        // A stream cannot have more copies than there are servers, and
        // fewer would lose acknowledged events with one node.
        for creator in STREAM_CREATORS {
            let replicas = self.stream_replicas.get(*creator);
            let copies = replicas.map(|r| r.as_deref().unwrap_or("1"));
            if copies != Some(servers.to_string().as_str()) {
                errors.push(format!(
                    "{env}: {STREAM_REPLICAS} of ConfigMap {creator} must be {servers} \
                     (one copy per nats-server), found {replicas:?}"
                ));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(
        namespace: &str,
        host: &str,
        (mode, format): (&str, &str),
        min: u64,
        image: &str,
        log: &str,
    ) -> Vec<Value> {
        vec![
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                   "metadata": {"name": "todo-app", "namespace": namespace},
                   "spec": {"tls": [{"hosts": [host]}], "rules": [{"host": host}]}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "broadcaster", "namespace": namespace},
                   "data": {"BROADCASTER_MODE": mode, "WEBHOOK_FORMAT": format,
                            "RUST_LOG": log}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": "todo-app", "namespace": namespace},
                   "spec": {"minReplicas": min, "maxReplicas": min * 2}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "broadcaster", "namespace": namespace},
                   "spec": {"template": {"spec": {"containers": [{"name": "b", "image": image}]}}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "todo-app", "namespace": namespace},
                   "data": {"PORT": "8080", "PUBLIC_URL": format!("https://{host}")}}),
            nats_server(namespace),
        ]
    }

    /// The base's single nats-server, as both environments start from it.
    fn nats_server(namespace: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "nats", "namespace": namespace},
               "spec": {"replicas": 1, "serviceName": "nats",
                   "template": {"spec": {"containers": [{"name": "nats",
                       "args": ["--config=/etc/nats/nats.conf", "--store_dir=/data"],
                       "env": [{"name": "APP_NATS_PASSWORD", "valueFrom": {}}],
                       "ports": [{"name": "client", "containerPort": 4222}]}]}}}})
    }

    const NATS: usize = 5;

    /// What components/nats-cluster makes of it.
    fn cluster(docs: &mut [Value]) {
        let nats = &mut docs[NATS];
        nats["spec"]["replicas"] = json!(3);
        nats["spec"]["serviceName"] = json!("nats-cluster");
        nats["spec"]["podManagementPolicy"] = json!("Parallel");
        let pod = &mut nats["spec"]["template"]["spec"];
        pod["affinity"] = json!({"podAntiAffinity": {}});
        pod["topologySpreadConstraints"] = json!([{"maxSkew": 1}]);
        let container = &mut pod["containers"][0];
        let args = container["args"].as_array_mut().unwrap();
        args.extend(cluster_arguments(3).into_iter().map(Value::from));
        container["env"].as_array_mut().unwrap().insert(
            0,
            json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {}}}),
        );
        container["ports"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"name": "cluster", "containerPort": 6222}));
        docs[1]["data"][STREAM_REPLICAS] = json!("3");
        docs[4]["data"][STREAM_REPLICAS] = json!("3");
    }

    /// An object named `Kind/name`, with nothing else to compare.
    fn object(key: &str, namespace: &str) -> Value {
        let (kind, name) = key.split_once('/').unwrap();
        json!({"apiVersion": "v1", "kind": kind,
               "metadata": {"name": name, "namespace": namespace}})
    }

    fn settings() -> Settings {
        Settings {
            config_repo: "https://git.invalid/config.git".to_owned(),
            staging_host: "staging.docket.example.com".to_owned(),
            production_host: "docket.example.com".to_owned(),
            production_backup_destination: "s3://b/production".to_owned(),
            oidc_issuer: "https://id.example.test".to_owned(),
        }
    }

    fn staging_intended() -> Intended {
        super::staging(&settings())
    }

    fn staging() -> Vec<Value> {
        let mut docs = env(
            "docket-staging",
            "staging.docket.example.com",
            ("log", "generic"),
            2,
            "ghcr.io/o/docket-broadcaster:1.0.0",
            "info",
        );
        docs.extend(
            STAGING_ONLY
                .iter()
                .map(|(key, _)| object(key, "docket-staging")),
        );
        docs
    }

    fn production() -> Vec<Value> {
        let mut docs = env(
            "docket-production",
            "docket.example.com",
            ("forward", "discord"),
            3,
            "ghcr.io/o/docket-broadcaster@sha256:0123",
            "info",
        );
        cluster(&mut docs);
        docs.extend(
            PRODUCTION_ONLY
                .iter()
                .map(|(key, _)| object(key, "docket-production")),
        );
        docs
    }

    #[test]
    fn intended_differences_are_accepted() {
        assert_eq!(compare(&staging(), &production()), Vec::<String>::new());
        assert_eq!(
            facts(&staging()).mismatches(&staging_intended()),
            Vec::<String>::new()
        );
        assert_eq!(
            facts(&production()).mismatches(&super::production(&settings())),
            Vec::<String>::new()
        );
    }

    #[test]
    fn any_other_difference_is_reported_with_its_location() {
        // Beside the chat settings, the broadcaster's other settings
        // (e.g. its webhook timeout) must still match.
        for key in ["RUST_LOG", "WEBHOOK_TIMEOUT"] {
            let mut production = production();
            production[1]["data"][key] = json!("changed");
            assert_eq!(
                compare(&staging(), &production),
                [format!(
                    "ConfigMap/broadcaster differs between staging and production at /data/{key}"
                )]
            );
        }
    }

    #[test]
    fn the_chat_format_set_anywhere_but_the_broadcasters_config_map_is_refused() {
        let mut production = production();
        production[3]["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "WEBHOOK_FORMAT", "value": "slack"}]);
        assert_eq!(
            compare(&staging(), &production),
            [
                "Deployment/broadcaster differs between staging and production at \
              /spec/template/spec/containers/0/env"
            ]
        );
    }

    #[test]
    fn production_must_post_to_a_chat_and_staging_must_not() {
        let format_errors = |docs: &[Value], intended: &Intended| -> Vec<String> {
            let errors = facts(docs).mismatches(intended);
            errors
                .into_iter()
                .filter(|e| e.contains("WEBHOOK_FORMAT"))
                .collect()
        };
        let production_intended = super::production(&settings());
        assert_eq!(
            format_errors(&production(), &production_intended),
            Vec::<String>::new()
        );
        let mut generic = production();
        generic[1]["data"]["WEBHOOK_FORMAT"] = json!("generic");
        assert_eq!(
            format_errors(&generic, &production_intended),
            [
                r#"overlay/production: WEBHOOK_FORMAT must be one of ["discord", "slack", "telegram"], found Some("generic")"#
            ]
        );
        let mut chatty = staging();
        chatty[1]["data"]["WEBHOOK_FORMAT"] = json!("discord");
        assert_eq!(format_errors(&chatty, &staging_intended()).len(), 1);
    }

    #[test]
    fn backup_belongs_to_production_only() {
        let mut production = production();
        production.retain(|d| describe(d) != "PersistentVolumeClaim/postgres-backups");
        let errors = compare(&staging(), &production);
        assert_eq!(
            errors,
            [
                "PersistentVolumeClaim/postgres-backups (the backup component) is missing from production"
            ]
        );

        let mut staging = staging();
        staging.push(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "postgres-backup"}}));
        assert!(
            compare(&staging, &self::production())
                .iter()
                .any(|e| e.contains("must not be in staging"))
        );
    }

    #[test]
    fn cloudnative_pg_replaces_the_statefulset_in_production_only() {
        let mut production = production();
        production.retain(|d| describe(d) != "Cluster/docket-db");
        production.push(object("StatefulSet/postgres", "docket-production"));
        assert_eq!(
            compare(&staging(), &production),
            [
                "Cluster/docket-db (the cloudnative-pg component) is missing from production",
                "StatefulSet/postgres must not be in production (the cloudnative-pg component replaces it)"
            ]
        );

        // Staging keeps the StatefulSet; another object dropped from
        // production is still refused.
        let mut staging = staging();
        staging.retain(|d| describe(d) != "StatefulSet/postgres");
        staging.push(object("Deployment/reporter", "docket-staging"));
        assert_eq!(
            compare(&staging, &self::production()),
            [
                "Deployment/reporter is in staging but not in production",
                "StatefulSet/postgres is missing from staging (only production replaces it, \
                 with the cloudnative-pg component)"
            ]
        );
    }

    #[test]
    fn the_nats_cluster_may_differ_only_in_its_cluster_settings() {
        // Anything else about the servers must still match: their ports,
        // the base's own arguments, their environment.
        for (pointer, value, at) in [
            (
                "/spec/template/spec/containers/0/ports/1/containerPort",
                json!(4223),
                "/spec/template/spec/containers/0/ports/0/containerPort",
            ),
            (
                "/spec/template/spec/containers/0/args/1",
                json!("--store_dir=/elsewhere"),
                "/spec/template/spec/containers/0/args/1",
            ),
            (
                "/spec/template/spec/containers/0/env/1/name",
                json!("APP_PASSWORD"),
                "/spec/template/spec/containers/0/env/0/name",
            ),
        ] {
            let mut production = production();
            *production[NATS].pointer_mut(pointer).unwrap() = value;
            assert_eq!(
                compare(&staging(), &production),
                [format!(
                    "StatefulSet/nats differs between staging and production at {at}"
                )],
                "{pointer}"
            );
        }
        // A setting beside the stream replicas in the app's ConfigMap.
        let mut production = production();
        production[4]["data"]["PORT"] = json!("9090");
        assert_eq!(
            compare(&staging(), &production),
            ["ConfigMap/todo-app differs between staging and production at /data/PORT"]
        );
    }

    #[test]
    fn the_cluster_must_name_every_server_and_streams_must_match_the_servers() {
        let production_intended = super::production(&settings());
        let mut two_routes = production();
        let args = &mut two_routes[NATS]["spec"]["template"]["spec"]["containers"][0]["args"];
        args[5] = json!("--routes=nats://nats-0.nats-cluster:6222,nats://nats-1.nats-cluster:6222");
        let errors = facts(&two_routes).mismatches(&production_intended);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("overlay/production: nats-server's cluster arguments must be"),
            "{errors:?}"
        );

        let mut one_copy = production();
        one_copy[1]["data"]
            .as_object_mut()
            .unwrap()
            .remove(STREAM_REPLICAS);
        assert_eq!(
            facts(&one_copy).mismatches(&production_intended),
            [
                "overlay/production: NATS_STREAM_REPLICAS of ConfigMap broadcaster must be 3 \
                 (one copy per nats-server), found Some(None)"
            ]
        );

        // Staging is one server, with streams of one copy.
        let mut clustered_staging = staging();
        cluster(&mut clustered_staging);
        let errors = facts(&clustered_staging).mismatches(&staging_intended());
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].contains("the nats StatefulSet must run 1 server(s), found Some(3)"),
            "{errors:?}"
        );
    }

    #[test]
    fn wrong_values_in_the_intended_fields_are_reported() {
        let wrong = env(
            "docket-staging",
            "docket.example.com",
            ("forward", "generic"),
            2,
            "x",
            "info",
        );
        assert_eq!(facts(&wrong).mismatches(&staging_intended()).len(), 3);
    }

    #[test]
    fn the_public_url_may_differ_but_must_be_its_own_host() {
        let mut wrong = staging();
        wrong[4]["data"]["PUBLIC_URL"] = json!("https://docket.example.com");
        assert_eq!(compare(&wrong, &production()), Vec::<String>::new());
        assert_eq!(
            facts(&wrong).mismatches(&staging_intended()),
            vec![
                "overlay/staging: the app's PUBLIC_URL must be https://staging.docket.example.com, \
                 found Some(\"https://docket.example.com\")"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn image_names_lose_only_their_tag_or_digest() {
        assert_eq!(
            image_name("ghcr.io/o/docket-app:0.1.0"),
            "ghcr.io/o/docket-app"
        );
        assert_eq!(
            image_name("ghcr.io/o/docket-app@sha256:abc"),
            "ghcr.io/o/docket-app"
        );
        assert_eq!(
            image_name("ghcr.io/o/docket-app:0.1.0@sha256:abc"),
            "ghcr.io/o/docket-app"
        );
        assert_eq!(
            image_name("registry:5000/docket-app"),
            "registry:5000/docket-app"
        );
        assert_eq!(image_name("postgres:17.6-bookworm"), "postgres");
    }

    /// A ConfigMap generated with a content hash, and a Deployment reading it.
    fn generated(namespace: &str, base: &str, hash: &str, value: &str) -> [Value; 2] {
        let name = format!("{base}-{hash}");
        [
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "namespace": namespace},
                   "data": {"BROADCASTER_MODE": value}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": format!("{base}-reader"), "namespace": namespace},
                   "spec": {"template": {"spec": {"containers": [
                       {"name": "c", "envFrom": [{"configMapRef": {"name": name}}]}]}}}}),
        ]
    }

    #[test]
    fn the_broadcaster_configmap_hash_may_differ_with_its_mode() {
        let mut staging = staging();
        staging.extend(generated(
            "docket-staging",
            "broadcaster",
            "hf46hth97f",
            "log",
        ));
        let mut production = production();
        production.extend(generated(
            "docket-production",
            "broadcaster",
            "2k9t7bcbbt",
            "forward",
        ));
        assert_eq!(compare(&staging, &production), Vec::<String>::new());
    }

    #[test]
    fn any_other_generated_name_must_match_where_it_is_referenced_too() {
        let mut staging = staging();
        staging.extend(generated("docket-staging", "cronjobs", "79cct229ck", "x"));
        let mut production = production();
        production.extend(generated(
            "docket-production",
            "cronjobs",
            "5bb4cgm2hh",
            "y",
        ));
        let errors = compare(&staging, &production);
        assert!(
            errors.contains(
                &"ConfigMap/cronjobs-79cct229ck is in staging but not in production".to_owned()
            ),
            "{errors:?}"
        );
        assert!(
            errors.contains(
                &"Deployment/cronjobs-reader differs between staging and production at \
                  /spec/template/spec/containers/0/envFrom/0/configMapRef/name"
                    .to_owned()
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn each_overlay_has_its_own_namespace_object() {
        let namespace = |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let mut staging = staging();
        staging.push(namespace("docket-staging"));
        let mut production = production();
        production.push(namespace("docket-production"));
        assert_eq!(compare(&staging, &production), Vec::<String>::new());
        assert!(facts(&staging).mismatches(&staging_intended()).is_empty());

        staging.push(namespace("default"));
        let errors = facts(&staging).mismatches(&staging_intended());
        assert!(
            errors[0].contains("every object belongs in docket-staging"),
            "{errors:?}"
        );
    }
}
