//! The pod templates of a rendered overlay, read into types: what a container
//! runtime needs to run each container the way the kubelet would (image,
//! command and args, the environment with ConfigMaps and Secrets resolved,
//! user, read-only root, capabilities, limits, ports, probes, mounts).
//!
//! Every field of a pod template is either read here or refused by name
//! (`deny_unknown_fields`): a field this reader silently skipped would make a
//! container run differently from the cluster while looking the same.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::render::{describe, pod_template, str_at};

/// A workload of a render and its pod template's spec.
#[derive(Debug)]
pub struct Workload {
    /// `Kind/name`, as messages name objects.
    pub name: String,
    pub pod: PodSpec,
}

/// Every workload (Deployment, StatefulSet, Rollout, Job, CronJob) in `docs`.
pub fn workloads(docs: &[Value]) -> anyhow::Result<Vec<Workload>> {
    docs.iter()
        .filter_map(|doc| pod_template(doc).map(|template| (describe(doc), template)))
        .map(|(name, template)| {
            let spec = template.get("spec").cloned().unwrap_or(Value::Null);
            let pod = serde_path_to_error::deserialize(spec)
                .map_err(|error| anyhow::anyhow!("{name}: pod template spec.{error}"))?;
            Ok(Workload { name, pod })
        })
        .collect()
}

/// The data of every ConfigMap in `docs`, by name.
pub fn config_maps(docs: &[Value]) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    docs.iter()
        .filter(|doc| str_at(doc, "/kind") == "ConfigMap")
        .map(|doc| {
            let data = doc.get("data").cloned().unwrap_or(Value::Null);
            let data: Option<BTreeMap<String, String>> =
                serde_json::from_value(data).with_context(|| format!("{}: data", describe(doc)))?;
            Ok((
                str_at(doc, "/metadata/name").to_owned(),
                data.unwrap_or_default(),
            ))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    pub containers: Vec<Container>,
    #[serde(default)]
    pub security_context: PodSecurity,
    pub service_account_name: Option<String>,
    pub automount_service_account_token: Option<bool>,
    /// Seconds between SIGTERM and SIGKILL (Kubernetes' default: 30).
    pub termination_grace_period_seconds: Option<u64>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    pub restart_policy: Option<String>,
    /// Where the scheduler may place the pod (the clustered NATS servers
    /// keep off each other's nodes). Kept as written: placement decides
    /// the node, not how a container on it runs.
    pub affinity: Option<Value>,
    #[serde(default)]
    pub topology_spread_constraints: Vec<Value>,
}

impl PodSpec {
    pub fn container(&self, name: &str) -> anyhow::Result<&Container> {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("no container {name}"))
    }

    pub fn volume(&self, name: &str) -> anyhow::Result<&VolumeSource> {
        self.volumes
            .iter()
            .find(|v| v.name == name)
            .map(|v| &v.source)
            .with_context(|| format!("a mount names volume {name}, which the pod does not have"))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurity {
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub run_as_non_root: Option<bool>,
    pub fs_group: Option<u32>,
    pub seccomp_profile: Option<SeccompProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub image_pull_policy: Option<String>,
    /// Replaces the image's ENTRYPOINT when set.
    #[serde(default)]
    pub command: Vec<String>,
    /// Replaces the image's CMD when set.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub env_from: Vec<EnvFrom>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub security_context: ContainerSecurity,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub lifecycle: Option<Lifecycle>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

impl Container {
    /// The environment the container starts with: the ConfigMaps of
    /// `envFrom` in order (later ones win), then `env` (which wins over
    /// them), Secrets' values from `secret(name, key)`. A missing ConfigMap,
    /// or a missing Secret key that is not `optional`, is an error, as it
    /// keeps the pod from starting in the cluster.
    pub fn environment(
        &self,
        config_maps: &BTreeMap<String, BTreeMap<String, String>>,
        secret: impl Fn(&str, &str) -> Option<String>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut environment = BTreeMap::new();
        for source in &self.env_from {
            let name = &source.config_map_ref.name;
            let data = config_maps.get(name).with_context(|| {
                format!("{}: envFrom ConfigMap {name} is not rendered", self.name)
            })?;
            environment.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for variable in &self.env {
            match &variable.value {
                EnvValue::Literal(value) => {
                    environment.insert(variable.name.clone(), value.clone());
                }
                EnvValue::Secret(reference) => match secret(&reference.name, &reference.key) {
                    Some(value) => {
                        environment.insert(variable.name.clone(), value);
                    }
                    None if reference.optional => {}
                    None => bail!(
                        "{}: {} needs key {} of Secret {}, which has no stand-in value",
                        self.name,
                        variable.name,
                        reference.key,
                        reference.name
                    ),
                },
                // The pod's own name, say, exists only once the kubelet
                // runs the pod: a stand-in would run a different container.
                EnvValue::Field(path) => bail!(
                    "{}: {} is the pod's field {path}, which only the kubelet knows",
                    self.name,
                    variable.name
                ),
            }
        }
        Ok(environment)
    }

    /// The container port a probe's named or numbered port means.
    pub fn port(&self, port: &PortRef) -> anyhow::Result<u16> {
        match port {
            PortRef::Number(number) => Ok(*number),
            PortRef::Name(name) => self
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port)
                .with_context(|| format!("{}: no port named {name}", self.name)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "RawEnvVar")]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Literal(String),
    Secret(SecretKeyRef),
    /// A field of the pod (downward API), by its path (`metadata.name`).
    Field(String),
}

impl Container {
    /// Whether the container reads a field of its pod (downward API), which
    /// [`Container::environment`] cannot give it.
    pub fn reads_pod_fields(&self) -> bool {
        self.env
            .iter()
            .any(|variable| matches!(variable.value, EnvValue::Field(_)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEnvVar {
    name: String,
    value: Option<String>,
    value_from: Option<EnvSource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvSource {
    secret_key_ref: Option<SecretKeyRef>,
    field_ref: Option<FieldRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FieldRef {
    field_path: String,
    /// The API version `field_path` is read in (Kubernetes' default: `v1`).
    #[expect(dead_code, reason = "read so that it is not refused; only v1 exists")]
    api_version: Option<String>,
}

impl TryFrom<RawEnvVar> for EnvVar {
    type Error = String;

    fn try_from(raw: RawEnvVar) -> Result<Self, Self::Error> {
        let value = match (raw.value, raw.value_from) {
            (Some(value), None) => EnvValue::Literal(value),
            (None, Some(source)) => match (source.secret_key_ref, source.field_ref) {
                (Some(reference), None) => EnvValue::Secret(reference),
                (None, Some(field)) => EnvValue::Field(field.field_path),
                _ => {
                    return Err(format!(
                        "env {}: valueFrom needs exactly one of secretKeyRef and fieldRef",
                        raw.name
                    ));
                }
            },
            // Kubernetes sets an empty string when neither is given.
            (None, None) => EnvValue::Literal(String::new()),
            (Some(_), Some(_)) => {
                return Err(format!("env {}: both value and valueFrom", raw.name));
            }
        };
        Ok(EnvVar {
            name: raw.name,
            value,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFrom {
    pub config_map_ref: ConfigMapRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapRef {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    pub name: Option<String>,
    pub container_port: u16,
    pub protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub limits: Quantities,
    #[serde(default)]
    pub requests: Quantities,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantities {
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
}

/// CPU in thousandths of a core (`500m`, `1`, `0.25`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Cpu {
    pub millicores: u64,
}

impl TryFrom<Value> for Cpu {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        let text = quantity_text(&value)?;
        let millicores = match text.strip_suffix('m') {
            Some(milli) => milli.parse::<u64>().ok(),
            None => text
                .parse::<f64>()
                .ok()
                .filter(|cores| cores.is_finite() && *cores >= 0.0)
                .map(|cores| (cores * 1000.0).round() as u64),
        };
        millicores
            .map(|millicores| Cpu { millicores })
            .ok_or_else(|| format!("CPU quantity {text:?} is not `N`, `N.N` or `Nm`"))
    }
}

/// Memory in bytes (`256Mi`, `1Gi`, `128M`, `1000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Memory {
    pub bytes: u64,
}

impl TryFrom<Value> for Memory {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        const UNITS: [(&str, u64); 8] = [
            ("Ki", 1 << 10),
            ("Mi", 1 << 20),
            ("Gi", 1 << 30),
            ("Ti", 1 << 40),
            ("k", 1_000),
            ("M", 1_000_000),
            ("G", 1_000_000_000),
            ("T", 1_000_000_000_000),
        ];
        let text = quantity_text(&value)?;
        let (number, unit) = UNITS
            .iter()
            .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n, *unit)))
            .unwrap_or((text.as_str(), 1));
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .map(|bytes| Memory { bytes })
            .ok_or_else(|| format!("memory quantity {text:?} is not a whole number with a unit"))
    }
}

/// Quantities are strings or numbers in YAML.
fn quantity_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(format!(
            "a quantity must be a string or a number, not {other}"
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSecurity {
    pub allow_privilege_escalation: Option<bool>,
    pub privileged: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub run_as_non_root: Option<bool>,
    #[serde(default)]
    pub capabilities: Capabilities,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub drop: Vec<String>,
    #[serde(default)]
    pub add: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "RawProbe")]
pub struct Probe {
    pub action: ProbeAction,
    pub period_seconds: u64,
    pub timeout_seconds: u64,
    pub failure_threshold: u64,
    pub initial_delay_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    HttpGet { path: String, port: PortRef },
    Exec { command: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProbe {
    http_get: Option<HttpGet>,
    exec: Option<Exec>,
    period_seconds: Option<u64>,
    timeout_seconds: Option<u64>,
    failure_threshold: Option<u64>,
    initial_delay_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpGet {
    #[serde(default = "root_path")]
    path: String,
    port: PortRef,
}

fn root_path() -> String {
    "/".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exec {
    command: Vec<String>,
}

impl TryFrom<RawProbe> for Probe {
    type Error = &'static str;

    /// Kubernetes' defaults: every 10 s, 1 s timeout, 3 failures.
    fn try_from(raw: RawProbe) -> Result<Self, Self::Error> {
        let action = match (raw.http_get, raw.exec) {
            (Some(http), None) => ProbeAction::HttpGet {
                path: http.path,
                port: http.port,
            },
            (None, Some(exec)) => ProbeAction::Exec {
                command: exec.command,
            },
            _ => return Err("a probe needs exactly one of httpGet and exec"),
        };
        Ok(Probe {
            action,
            period_seconds: raw.period_seconds.unwrap_or(10),
            timeout_seconds: raw.timeout_seconds.unwrap_or(1),
            failure_threshold: raw.failure_threshold.unwrap_or(3),
            initial_delay_seconds: raw.initial_delay_seconds.unwrap_or(0),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lifecycle {
    pub pre_stop: Option<PreStop>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreStop {
    pub sleep: Sleep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    pub seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "RawVolume")]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A scratch directory; `size_limit` bounds it.
    EmptyDir { size_limit: Option<Memory> },
    /// A ConfigMap's keys as files.
    ConfigMap { name: String },
    /// A claim on durable storage.
    PersistentVolumeClaim { claim_name: String },
    /// A Secret's keys as files: each of `items` (key, file name), read
    /// with `default_mode` (octal, as written; the kubelet's 0644 when unset).
    Secret {
        secret_name: String,
        items: Vec<(String, String)>,
        default_mode: Option<u32>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVolume {
    name: String,
    empty_dir: Option<EmptyDir>,
    config_map: Option<ConfigMapRef>,
    persistent_volume_claim: Option<ClaimRef>,
    secret: Option<SecretVolume>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SecretVolume {
    secret_name: String,
    /// Without items every key would be a file: the smoke test could not
    /// know which stand-ins to write, so the manifests name them.
    items: Vec<KeyToPath>,
    default_mode: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToPath {
    key: String,
    path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClaimRef {
    claim_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmptyDir {
    size_limit: Option<Memory>,
}

impl TryFrom<RawVolume> for Volume {
    type Error = String;

    fn try_from(raw: RawVolume) -> Result<Self, Self::Error> {
        let source = match (
            raw.empty_dir,
            raw.config_map,
            raw.persistent_volume_claim,
            raw.secret,
        ) {
            (Some(empty_dir), None, None, None) => VolumeSource::EmptyDir {
                size_limit: empty_dir.size_limit,
            },
            (None, Some(config_map), None, None) => VolumeSource::ConfigMap {
                name: config_map.name,
            },
            (None, None, Some(claim), None) => VolumeSource::PersistentVolumeClaim {
                claim_name: claim.claim_name,
            },
            (None, None, None, Some(secret)) => VolumeSource::Secret {
                secret_name: secret.secret_name,
                items: secret
                    .items
                    .into_iter()
                    .map(|item| (item.key, item.path))
                    .collect(),
                default_mode: secret.default_mode,
            },
            _ => return Err(format!("volume {}: needs exactly one source", raw.name)),
        };
        Ok(Volume {
            name: raw.name,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(spec: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"metadata": {}, "spec": spec}}})
    }

    fn read_error(spec: Value) -> String {
        format!("{:#}", workloads(&[deployment(spec)]).unwrap_err())
    }

    #[test]
    fn a_volume_type_it_cannot_run_is_refused_naming_the_field() {
        let message = read_error(json!({
            "containers": [{"name": "c", "image": "i"}],
            "volumes": [{"name": "host", "hostPath": {"path": "/var/run"}}],
        }));
        assert!(
            message.starts_with("Deployment/web: pod template spec.volumes[0].hostPath: "),
            "{message}"
        );
        assert!(message.contains("unknown field `hostPath`"), "{message}");
    }

    #[test]
    fn container_fields_it_does_not_read_are_refused_by_path() {
        for (field, value, path) in [
            ("workingDir", json!("/srv"), "containers[0]"),
            ("stdin", json!(true), "containers[0]"),
        ] {
            let mut container = json!({"name": "c", "image": "i"});
            container[field] = value;
            let message = read_error(json!({"containers": [container]}));
            assert!(
                message.contains(path) && message.contains(&format!("unknown field `{field}`")),
                "{field}: {message}"
            );
        }
        let message = read_error(json!({"containers": [{"name": "c", "image": "i",
            "readinessProbe": {"tcpSocket": {"port": 80}}}]}));
        assert!(
            message.contains("containers[0].readinessProbe"),
            "{message}"
        );
        assert!(message.contains("tcpSocket"), "{message}");
        let message = read_error(json!({"containers": [{"name": "c", "image": "i",
            "env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}]}));
        assert!(message.contains("containers[0].env[0]"), "{message}");
        assert!(message.contains("resourceFieldRef"), "{message}");
        let message = read_error(json!({"containers": [{"name": "c", "image": "i"}],
            "hostNetwork": true}));
        assert!(message.contains("unknown field `hostNetwork`"), "{message}");
    }

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        for (text, millicores) in [("500m", 500), ("1", 1000), ("0.25", 250)] {
            assert_eq!(Cpu::try_from(json!(text)).unwrap().millicores, millicores);
        }
        assert_eq!(Cpu::try_from(json!(2)).unwrap().millicores, 2000);
        for (text, bytes) in [
            ("256Mi", 256 << 20),
            ("1Gi", 1 << 30),
            ("128M", 128_000_000),
            ("1000", 1000),
        ] {
            assert_eq!(
                Memory::try_from(json!(text)).unwrap().bytes,
                bytes,
                "{text}"
            );
        }
        for bad in ["lots", "1.5Gi", "-1", "Mi"] {
            assert!(Memory::try_from(json!(bad)).is_err(), "{bad}");
        }
        assert!(Cpu::try_from(json!("fast")).is_err());
    }

    #[test]
    fn the_environment_layers_config_maps_then_env_and_needs_every_required_secret() {
        let spec = json!({"containers": [{"name": "c", "image": "i",
        "envFrom": [{"configMapRef": {"name": "a"}}, {"configMapRef": {"name": "b"}}],
        "env": [
            {"name": "PORT", "value": "9000"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "HOOK", "valueFrom": {"secretKeyRef": {"name": "s", "key": "hook", "optional": true}}},
        ]}]});
        let workloads = workloads(&[deployment(spec)]).unwrap();
        let container = workloads[0].pod.container("c").unwrap();
        let config_maps = BTreeMap::from([
            (
                "a".to_owned(),
                BTreeMap::from([
                    ("PORT".to_owned(), "1".to_owned()),
                    ("MODE".to_owned(), "a".to_owned()),
                ]),
            ),
            (
                "b".to_owned(),
                BTreeMap::from([("MODE".to_owned(), "b".to_owned())]),
            ),
        ]);
        let environment = container
            .environment(&config_maps, |name, key| {
                (name == "s" && key == "token").then(|| "t".to_owned())
            })
            .unwrap();
        assert_eq!(
            environment,
            BTreeMap::from([
                ("MODE".to_owned(), "b".to_owned()),
                ("PORT".to_owned(), "9000".to_owned()),
                ("TOKEN".to_owned(), "t".to_owned()),
            ])
        );
        let missing = container
            .environment(&config_maps, |_, _| None)
            .unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("TOKEN needs key token of Secret s"),
            "{missing}"
        );
        let unrendered = container
            .environment(&BTreeMap::new(), |_, _| None)
            .unwrap_err();
        assert!(
            unrendered
                .to_string()
                .contains("ConfigMap a is not rendered"),
            "{unrendered}"
        );
    }

    #[test]
    fn a_pod_field_is_read_but_has_no_value_outside_the_kubelet() {
        let spec = json!({"containers": [{"name": "nats", "image": "i",
            "args": ["--name=$(POD_NAME)"],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            "affinity": {"podAntiAffinity": {}},
            "topologySpreadConstraints": [{"maxSkew": 1}]});
        let workloads = workloads(&[deployment(spec)]).unwrap();
        let container = workloads[0].pod.container("nats").unwrap();
        assert!(container.reads_pod_fields());
        assert_eq!(
            container.env[0].value,
            EnvValue::Field("metadata.name".to_owned())
        );
        let error = container
            .environment(&BTreeMap::new(), |_, _| None)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "nats: POD_NAME is the pod's field metadata.name, which only the kubelet knows"
        );
        let both = read_error(json!({"containers": [{"name": "c", "image": "i",
            "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"},
                "secretKeyRef": {"name": "s", "key": "k"}}}]}]}));
        assert!(both.contains("exactly one of"), "{both}");
    }
}
