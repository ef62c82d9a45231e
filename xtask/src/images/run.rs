//! A rendered pod template's container as `podman run` arguments, so the
//! smoke test runs each image the way the kubelet runs it in the cluster:
//! the user and group of the security contexts, the read-only root, the
//! dropped capabilities, no privilege escalation, the memory and CPU limits,
//! emptyDir volumes as tmpfs, a persistent volume claim as a host folder
//! standing in for its volume, a Secret volume as a read-only folder of
//! stand-in files with the volume's mode, `command`/`args` over ENTRYPOINT/CMD, and the
//! environment with the in-cluster Service addresses mapped to the private
//! instances the smoke test starts.
//!
//! Anything the cluster would do that cannot be reproduced is an error here
//! rather than skipped: a ConfigMap volume, a claim with no stand-in folder,
//! an added capability, a Service address with no private stand-in.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use manifests::pod::{Container, PodSpec, VolumeSource};
use serde_json::Value;

/// How a container reaches the host's loopback from its own network
/// namespace (`slirp4netns:allow_host_loopback=true`): the host's 127.0.0.1.
pub const HOST_FROM_CONTAINER: &str = "10.0.2.2";

/// Everything `podman run` needs besides the pod template.
#[derive(Debug)]
pub struct Placement<'a> {
    /// The container's name in podman (unique per run).
    pub name: &'a str,
    /// The image to run instead of the template's registry reference.
    pub image: &'a str,
    /// The environment, already resolved and mapped ([`map_addresses`]).
    pub environment: &'a BTreeMap<String, String>,
    /// `(host port on 127.0.0.1, container port)`.
    pub publish: &'a [(u16, u16)],
    /// Claim name → the host folder standing in for its volume.
    pub claims: &'a BTreeMap<String, PathBuf>,
    /// Secret volume name → the host folder holding its files, written
    /// with stand-in values ([`write_secret_volume`]).
    pub secret_volumes: &'a BTreeMap<String, PathBuf>,
    /// Host names the container resolves to an address (`--add-host`), for
    /// a service outside the cluster that the test serves on loopback
    /// under its own name (the OpenID provider).
    pub hosts: &'a BTreeMap<String, String>,
}

/// The `podman run` arguments (after `run`) for `container` of `pod`.
pub fn podman_args(
    pod: &PodSpec,
    container: &Container,
    placement: &Placement<'_>,
) -> anyhow::Result<Vec<String>> {
    let mut args: Vec<String> = vec![
        "--detach".into(),
        "--name".into(),
        placement.name.into(),
        // Its own network namespace, as a pod has, reaching the host's
        // loopback (where the private PostgreSQL and NATS listen) at 10.0.2.2.
        "--network".into(),
        "slirp4netns:allow_host_loopback=true".into(),
        // The image is built locally; a registry is never asked.
        "--pull=never".into(),
    ];
    let security = &container.security_context;
    let user = security.run_as_user.or(pod.security_context.run_as_user);
    let group = security.run_as_group.or(pod.security_context.run_as_group);
    match (user, group) {
        (Some(user), Some(group)) => args.extend(["--user".into(), format!("{user}:{group}")]),
        (Some(user), None) => args.extend(["--user".into(), user.to_string()]),
        (None, Some(_)) => bail!("{}: runAsGroup without runAsUser", container.name),
        (None, None) => {}
    }
    // The kubelet adds the pod's fsGroup to every container's groups: it
    // owns the volumes (a Secret's files are readable by it alone).
    if let Some(fs_group) = pod.security_context.fs_group
        && group != Some(fs_group)
    {
        args.extend(["--group-add".into(), fs_group.to_string()]);
    }
    let non_root = security
        .run_as_non_root
        .or(pod.security_context.run_as_non_root)
        .unwrap_or(false);
    if non_root && user.is_none_or(|user| user == 0) {
        bail!(
            "{}: runAsNonRoot needs a non-zero runAsUser here (the image's USER is not checked)",
            container.name
        );
    }
    if security.read_only_root_filesystem == Some(true) {
        args.push("--read-only".into());
    }
    if security.privileged == Some(true) {
        bail!("{}: privileged containers are not run", container.name);
    }
    if security.allow_privilege_escalation == Some(false) {
        args.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    for capability in &security.capabilities.drop {
        args.extend(["--cap-drop".into(), capability.clone()]);
    }
    if let Some(added) = security.capabilities.add.first() {
        bail!(
            "{}: capabilities.add ({added}) is not supported",
            container.name
        );
    }
    if let Some(memory) = container.resources.limits.memory {
        args.extend(["--memory".into(), format!("{}b", memory.bytes)]);
    }
    if let Some(cpu) = container.resources.limits.cpu {
        args.extend([
            "--cpus".into(),
            format!("{}.{:03}", cpu.millicores / 1000, cpu.millicores % 1000),
        ]);
    }
    for mount in &container.volume_mounts {
        match pod.volume(&mount.name)? {
            VolumeSource::EmptyDir { size_limit } => {
                // emptyDir is writable by the pod's user whatever the root's
                // mode; 1777 gives the same to any uid.
                let size = size_limit.map_or(String::new(), |m| format!(",size={}", m.bytes));
                args.extend([
                    "--tmpfs".into(),
                    format!("{}:rw,mode=1777{size}", mount.mount_path),
                ]);
            }
            VolumeSource::PersistentVolumeClaim { claim_name } => {
                let folder = placement.claims.get(claim_name).with_context(|| {
                    format!(
                        "{}: volume {} claims {claim_name}, which has no stand-in folder",
                        container.name, mount.name
                    )
                })?;
                let mode = if mount.read_only { "ro" } else { "rw" };
                args.extend([
                    "--volume".into(),
                    format!("{}:{}:{mode}", folder.display(), mount.mount_path),
                ]);
            }
            VolumeSource::Secret { secret_name, .. } => {
                let folder = placement.secret_volumes.get(&mount.name).with_context(|| {
                    format!(
                        "{}: volume {} holds Secret {secret_name}, which has no stand-in folder",
                        container.name, mount.name
                    )
                })?;
                // A Secret volume is read-only whatever the mount says.
                args.extend([
                    "--volume".into(),
                    format!("{}:{}:ro", folder.display(), mount.mount_path),
                ]);
            }
            other => bail!(
                "{}: volume {} ({other:?}) is not supported by the smoke test",
                container.name,
                mount.name
            ),
        }
    }
    for (name, address) in placement.hosts {
        args.extend(["--add-host".into(), format!("{name}:{address}")]);
    }
    for (host, inside) in placement.publish {
        args.extend(["--publish".into(), format!("127.0.0.1:{host}:{inside}")]);
    }
    for (name, value) in placement.environment {
        args.extend(["--env".into(), format!("{name}={value}")]);
    }
    // `command` replaces ENTRYPOINT (its first word; the rest go before
    // `args`), `args` replaces CMD, as in Kubernetes.
    let mut trailing = Vec::new();
    if let Some((entrypoint, rest)) = container.command.split_first() {
        args.extend(["--entrypoint".into(), entrypoint.clone()]);
        trailing.extend(rest.iter().cloned());
    }
    trailing.extend(container.args.iter().cloned());
    args.push(placement.image.into());
    args.extend(trailing);
    Ok(args)
}

/// Writes a Secret volume's files into `folder` as the kubelet does: one
/// file per item, holding `value(key)`, with the volume's mode (0644 when
/// unset), owned by the pod's `fsGroup` when it has one. A key with no
/// value is an error naming it: the pod would not start in a cluster
/// either.
pub fn write_secret_volume(
    folder: &Path,
    source: &VolumeSource,
    fs_group: Option<u32>,
    value: impl Fn(&str, &str) -> Option<String>,
) -> anyhow::Result<()> {
    let VolumeSource::Secret {
        secret_name,
        items,
        default_mode,
    } = source
    else {
        bail!("not a Secret volume: {source:?}");
    };
    fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    fs::set_permissions(folder, fs::Permissions::from_mode(0o755))?;
    for (key, path) in items {
        let value = value(secret_name, key)
            .with_context(|| format!("Secret {secret_name} has no stand-in for key {key}"))?;
        let file = folder.join(path);
        fs::write(&file, value).with_context(|| format!("writing {}", file.display()))?;
        if let Some(group) = fs_group {
            std::os::unix::fs::chown(&file, Some(0), Some(group))
                .with_context(|| format!("giving {} to group {group}", file.display()))?;
        }
        fs::set_permissions(
            &file,
            fs::Permissions::from_mode(default_mode.unwrap_or(0o644)),
        )?;
    }
    Ok(())
}

/// The in-cluster addresses of the rendered Services, `name:port` for each
/// port they expose (what the ConfigMaps name, e.g. `nats:4222`).
pub fn service_addresses(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .filter(|doc| doc.get("kind").and_then(Value::as_str) == Some("Service"))
        .flat_map(|doc| {
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            doc.pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|port| port.get("port").and_then(Value::as_u64))
                .map(move |port| format!("{name}:{port}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `environment` with every in-cluster Service address replaced as
/// `mapping` says (`nats:4222` → `10.0.2.2:PORT`), every other value exactly
/// as rendered. A value naming a Service address that `mapping` lacks is an
/// error: the container would try to reach a cluster that is not there.
pub fn map_addresses(
    environment: &BTreeMap<String, String>,
    services: &BTreeSet<String>,
    mapping: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    environment
        .iter()
        .map(|(name, value)| {
            let mut mapped = value.clone();
            for service in services {
                if !names_address(value, service) {
                    continue;
                }
                let target = mapping.get(service).with_context(|| {
                    format!("{name}={value} names Service {service}, which has no private stand-in")
                })?;
                mapped = mapped.replace(service, target);
            }
            Ok((name.clone(), mapped))
        })
        .collect()
}

/// Whether `value` contains `address` as a whole host:port (after `//`,
/// `@`, `,` or at the start; followed by `/`, `,` or the end).
fn names_address(value: &str, address: &str) -> bool {
    value.match_indices(address).any(|(at, _)| {
        let before = value[..at].chars().next_back();
        let after = value[at + address.len()..].chars().next();
        matches!(before, None | Some('/' | '@' | ',' | ' '))
            && matches!(after, None | Some('/' | ',' | ' ' | '?'))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn staging_like() -> Vec<Value> {
        vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "broadcaster"},
            "spec": {"template": {"spec": {
                "automountServiceAccountToken": false,
                "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": true,
                    "seccompProfile": {"type": "RuntimeDefault"}},
                "terminationGracePeriodSeconds": 30,
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                "containers": [{
                    "name": "broadcaster", "image": "ghcr.io/docket-dev/docket-broadcaster:0.1.0",
                    "args": ["--once"],
                    "ports": [{"name": "admin", "containerPort": 8081}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "privileged": false,
                        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]
                }]}}}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nats"},
                "spec": {"ports": [{"name": "client", "port": 4222}]}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "todo-app"},
                "spec": {"ports": [{"name": "http", "port": 8080}]}}),
        ]
    }

    #[test]
    fn a_pod_template_becomes_the_podman_run_the_kubelet_would_do() {
        let docs = staging_like();
        let workloads = manifests::pod::workloads(&docs).unwrap();
        let pod = &workloads[0].pod;
        let environment = BTreeMap::from([("LOG_FORMAT".to_owned(), "json".to_owned())]);
        let args = podman_args(
            pod,
            &pod.containers[0],
            &Placement {
                name: "smoke-broadcaster",
                image: "localhost/docket-broadcaster:abc",
                environment: &environment,
                publish: &[(40001, 8081)],
                claims: &BTreeMap::new(),
                secret_volumes: &BTreeMap::new(),
                hosts: &BTreeMap::from([(
                    "id.smoke.test".to_owned(),
                    HOST_FROM_CONTAINER.to_owned(),
                )]),
            },
        )
        .unwrap();
        let joined = args.join(" ");
        for expected in [
            "--user 65532:65532",
            "--read-only",
            "--security-opt no-new-privileges",
            "--cap-drop ALL",
            "--memory 134217728b",
            "--cpus 0.500",
            "--tmpfs /tmp:rw,mode=1777,size=16777216",
            "--publish 127.0.0.1:40001:8081",
            "--env LOG_FORMAT=json",
            "--add-host id.smoke.test:10.0.2.2",
            "localhost/docket-broadcaster:abc --once",
        ] {
            assert!(
                joined.contains(expected),
                "{expected:?} missing from {joined}"
            );
        }
        assert!(
            joined.ends_with("localhost/docket-broadcaster:abc --once"),
            "{joined}"
        );
    }

    /// The broadcaster of [`staging_like`] with its one volume replaced by
    /// `volume`, run with `claims` and `secret_volumes`.
    fn args_with_volume(
        volume: Value,
        claims: &BTreeMap<String, PathBuf>,
    ) -> anyhow::Result<Vec<String>> {
        args_with_volumes(volume, claims, &BTreeMap::new())
    }

    fn args_with_volumes(
        volume: Value,
        claims: &BTreeMap<String, PathBuf>,
        secret_volumes: &BTreeMap<String, PathBuf>,
    ) -> anyhow::Result<Vec<String>> {
        let mut docs = staging_like();
        docs[0]["spec"]["template"]["spec"]["volumes"][0] = volume;
        let workloads = manifests::pod::workloads(&docs).unwrap();
        let pod = &workloads[0].pod;
        podman_args(
            pod,
            &pod.containers[0],
            &Placement {
                name: "x",
                image: "y",
                environment: &BTreeMap::new(),
                publish: &[],
                claims,
                secret_volumes,
                hosts: &BTreeMap::new(),
            },
        )
    }

    #[test]
    fn a_volume_the_smoke_test_cannot_give_stops_it_with_the_volume_named() {
        let config_map = json!({"name": "tmp", "configMap": {"name": "settings"}});
        let error = args_with_volume(config_map, &BTreeMap::new()).unwrap_err();
        assert!(error.to_string().contains("volume tmp"), "{error}");

        let claim = json!({"name": "tmp", "persistentVolumeClaim": {"claimName": "data"}});
        let error = args_with_volume(claim, &BTreeMap::new()).unwrap_err();
        assert!(
            error.to_string().contains("volume tmp claims data"),
            "{error}"
        );
    }

    #[test]
    fn a_claimed_volume_is_the_folder_standing_in_for_it() {
        let claim = json!({"name": "tmp", "persistentVolumeClaim": {"claimName": "data"}});
        let claims = BTreeMap::from([("data".to_owned(), PathBuf::from("/srv/data"))]);
        let args = args_with_volume(claim, &claims).unwrap().join(" ");
        assert!(args.contains("--volume /srv/data:/tmp:rw"), "{args}");
        assert!(!args.contains("--tmpfs"), "{args}");
    }

    fn secret_volume() -> Value {
        json!({"name": "tmp", "secret": {"secretName": "docket-api", "defaultMode": 0o440,
               "items": [{"key": "tokens", "path": "tokens"}]}})
    }

    #[test]
    fn a_secret_volume_is_its_stand_in_folder_mounted_read_only() {
        let error = args_with_volume(secret_volume(), &BTreeMap::new()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("volume tmp holds Secret docket-api"),
            "{error}"
        );
        let folders = BTreeMap::from([("tmp".to_owned(), PathBuf::from("/srv/secret"))]);
        let args = args_with_volumes(secret_volume(), &BTreeMap::new(), &folders)
            .unwrap()
            .join(" ");
        assert!(args.contains("--volume /srv/secret:/tmp:ro"), "{args}");
    }

    #[test]
    fn a_secret_volumes_files_hold_the_stand_ins_with_its_mode() {
        let docs = json!({"kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"metadata": {}, "spec": {"containers": [],
                "volumes": [secret_volume()]}}}});
        let workloads = manifests::pod::workloads(&[docs]).unwrap();
        let source = workloads[0].pod.volume("tmp").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("api");
        let value = |name: &str, key: &str| {
            (name == "docket-api" && key == "tokens").then(|| "ci write x".to_owned())
        };
        write_secret_volume(&folder, source, None, value).unwrap();
        let file = folder.join("tokens");
        assert_eq!(fs::read_to_string(&file).unwrap(), "ci write x");
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o440);

        let error = write_secret_volume(&folder, source, None, |_, _| None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Secret docket-api has no stand-in for key tokens"
        );
    }

    #[test]
    fn service_addresses_are_mapped_and_an_unmapped_one_is_refused() {
        let services = service_addresses(&staging_like());
        assert_eq!(
            services,
            BTreeSet::from(["nats:4222".to_owned(), "todo-app:8080".to_owned()])
        );
        let environment = BTreeMap::from([
            ("NATS_URL".to_owned(), "nats://nats:4222".to_owned()),
            ("TODO_API_URL".to_owned(), "http://todo-app:8080".to_owned()),
            ("OTHER".to_owned(), "natsy:42220 stays".to_owned()),
        ]);
        let mapping = BTreeMap::from([
            (
                "nats:4222".to_owned(),
                format!("{HOST_FROM_CONTAINER}:40100"),
            ),
            (
                "todo-app:8080".to_owned(),
                format!("{HOST_FROM_CONTAINER}:40101"),
            ),
        ]);
        let mapped = map_addresses(&environment, &services, &mapping).unwrap();
        assert_eq!(mapped["NATS_URL"], "nats://10.0.2.2:40100");
        assert_eq!(mapped["TODO_API_URL"], "http://10.0.2.2:40101");
        assert_eq!(mapped["OTHER"], "natsy:42220 stays");

        let partial = BTreeMap::from([("nats:4222".to_owned(), "10.0.2.2:40100".to_owned())]);
        let error = map_addresses(&environment, &services, &partial).unwrap_err();
        assert!(error.to_string().contains("todo-app:8080"), "{error}");
    }
}
