//! Properties of this repository's own deployment tree, read from real
//! renders: every test renders `kustomize/` and `argocd/` with the venv's
//! `kubectl kustomize` (the same [`render::render_all`] `cargo xtask
//! manifests` runs) into a folder of its own under `target/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::pod::{self, PortRef, ProbeAction};
use crate::render::{
    self, Render, Renders, Target, config_maps_read, describe, generated_base_name, items_at,
    pod_template, str_at,
};
use crate::settings::Settings;
use crate::tools::Tools;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tree rendered into a temporary folder. Installing the tools is
/// serialised with a file lock: nextest runs each test in its own process,
/// and two pip installs into one venv would trip over each other.
fn renders() -> Renders {
    let root = root();
    let lock_dir = root.join("target/tools");
    std::fs::create_dir_all(&lock_dir).unwrap();
    let lock = std::fs::File::create(lock_dir.join("manifests-tests.lock")).unwrap();
    lock.lock().unwrap();
    let tools = Tools::ensure(&root).unwrap();
    lock.unlock().unwrap();
    // Two levels below the root, like target/manifests: the components'
    // generated kustomizations reach the tree by a relative path.
    let work = tempfile::tempdir_in(root.join("target")).unwrap();
    render::render_all(&root, &tools, work.path()).unwrap()
}

fn find<'a>(render: &'a Render, kind: &str, name: &str) -> &'a Value {
    render::find(&render.docs, kind, name)
        .unwrap_or_else(|| panic!("{}: no {kind}/{name}", render.name))
}

/// Every pod spec of a workload, with what it is.
fn pod_specs(render: &Render) -> Vec<(String, &Value)> {
    render
        .docs
        .iter()
        .filter_map(|doc| Some((describe(doc), pod_template(doc)?.get("spec")?)))
        .collect()
}

fn overlays(renders: &Renders) -> Vec<&Render> {
    let overlays: Vec<&Render> = renders.of(Target::Overlay).collect();
    assert!(overlays.len() >= 2, "staging and production are rendered");
    overlays
}

#[test]
fn the_rollout_pod_template_carries_the_common_labels() {
    let renders = renders();
    for render in overlays(&renders)
        .into_iter()
        .chain([renders.get("base").unwrap()])
    {
        let rollout = find(render, "Rollout", "todo-app");
        assert_eq!(
            rollout.pointer("/spec/template/metadata/labels/app.kubernetes.io~1part-of"),
            Some(&Value::from("docket")),
            "{}: {rollout:#}",
            render.name
        );
        // Labels only: the selector is immutable and stays as written.
        assert_eq!(
            rollout.pointer("/spec/selector/matchLabels"),
            Some(&serde_json::json!({"app.kubernetes.io/name": "todo-app"})),
            "{}",
            render.name
        );
    }
}

#[test]
fn configmaps_carry_hashes_and_every_workload_names_exactly_those() {
    let renders = renders();
    for render in overlays(&renders) {
        let config_maps: BTreeSet<&str> = render
            .docs
            .iter()
            .filter(|d| str_at(d, "/kind") == "ConfigMap")
            .map(|d| str_at(d, "/metadata/name"))
            .collect();
        for service in ["todo-app", "broadcaster", "cronjobs"] {
            assert!(
                config_maps
                    .iter()
                    .any(|name| generated_base_name(name) == Some(service)),
                "{}: no hashed ConfigMap for {service} in {config_maps:?}",
                render.name
            );
        }

        let mut references = 0;
        for (workload, spec) in pod_specs(render) {
            for name in items_at(spec, "/containers").flat_map(config_maps_read) {
                references += 1;
                assert!(
                    generated_base_name(name).is_some() && config_maps.contains(name),
                    "{}: {workload} reads ConfigMap {name}, which is not a rendered hashed name",
                    render.name
                );
            }
        }
        // The Rollout, broadcaster, listen, wikipedia-todo (and the backup).
        assert!(references >= 4, "{}: {references} references", render.name);
        let rollout = find(render, "Rollout", "todo-app");
        let app = str_at(
            rollout,
            "/spec/template/spec/containers/0/envFrom/0/configMapRef/name",
        );
        assert_eq!(
            generated_base_name(app),
            Some("todo-app"),
            "{}",
            render.name
        );
    }
}

#[test]
fn the_broadcaster_mode_change_renames_its_configmap_and_the_reference() {
    let renders = renders();
    let reference = |env: &str| {
        let render = renders.get(&format!("overlay/{env}")).unwrap();
        let deployment = find(render, "Deployment", "broadcaster");
        let name = str_at(
            deployment,
            "/spec/template/spec/containers/0/envFrom/0/configMapRef/name",
        )
        .to_owned();
        let mode = str_at(find(render, "ConfigMap", &name), "/data/BROADCASTER_MODE").to_owned();
        (name, mode)
    };
    let (staging, staging_mode) = reference("staging");
    let (production, production_mode) = reference("production");
    assert_eq!(
        (staging_mode.as_str(), production_mode.as_str()),
        ("log", "forward")
    );
    assert_ne!(staging, production, "a changed mode must roll the pods");
}

#[test]
fn the_ingress_routes_only_the_http_port() {
    let renders = renders();
    for render in overlays(&renders) {
        let ingress = find(render, "Ingress", "todo-app");
        let ports: Vec<&Value> = items_at(ingress, "/spec/rules")
            .flat_map(|rule| items_at(rule, "/http/paths"))
            .filter_map(|path| path.pointer("/backend/service/port"))
            .collect();
        assert!(
            !ports.is_empty(),
            "{}: the Ingress routes nothing",
            render.name
        );
        for port in ports {
            assert_eq!(
                port,
                &serde_json::json!({"name": "http"}),
                "{}",
                render.name
            );
        }
        // And the admin port exists, on the Service Prometheus may use.
        let service = find(render, "Service", "todo-app");
        let names: Vec<&str> = items_at(service, "/spec/ports")
            .map(|p| str_at(p, "/name"))
            .collect();
        assert_eq!(names, ["http", "admin"], "{}", render.name);
    }
}

#[test]
fn the_connection_budget_holds_in_every_overlay() {
    let renders = renders();
    crate::connections::check(&renders).unwrap();
    let production = renders.get("overlay/production").unwrap();
    let budget = crate::connections::budget(production).unwrap().unwrap();
    assert!(budget.needed() <= budget.max_connections, "{budget:?}");
}

#[test]
fn staging_and_production_differ_only_where_intended() {
    let renders = renders();
    let settings = Settings::load(&root()).unwrap();
    crate::overlays::check(&settings, &renders).unwrap();
}

#[test]
fn the_settings_reach_the_ingress_hosts_and_every_argo_cd_source() {
    let renders = renders();
    let settings = Settings::load(&root()).unwrap();
    for env in ["staging", "production"] {
        let render = renders.get(&format!("overlay/{env}")).unwrap();
        let ingress = find(render, "Ingress", "todo-app");
        let host = settings.host(env).unwrap();
        assert_eq!(str_at(ingress, "/spec/rules/0/host"), host);
        assert_eq!(str_at(ingress, "/spec/tls/0/hosts/0"), host);
        // The settings object itself never reaches a cluster.
        assert!(
            render
                .docs
                .iter()
                .all(|d| str_at(d, "/metadata/name") != "docket-settings")
        );
    }
    let argocd = renders.get("argocd").unwrap();
    let mut sources = 0;
    for doc in &argocd.docs {
        match str_at(doc, "/kind") {
            "Application" => {
                assert_eq!(str_at(doc, "/spec/source/repoURL"), settings.config_repo);
                sources += 1;
            }
            "AppProject" => {
                assert_eq!(str_at(doc, "/spec/sourceRepos/0"), settings.config_repo);
                sources += 1;
            }
            "ConfigMap" => panic!("argocd/ renders the settings object"),
            _ => {}
        }
    }
    // Three Applications (two environments and the app of apps), two projects.
    assert_eq!(sources, 5);
}

#[test]
fn namespaces_are_objects_and_no_application_creates_one() {
    let renders = renders();
    for (env, namespace) in [
        ("staging", "docket-staging"),
        ("production", "docket-production"),
    ] {
        let render = renders.get(&format!("overlay/{env}")).unwrap();
        find(render, "Namespace", namespace);
    }
    let argocd = renders.get("argocd").unwrap();
    for application in argocd
        .docs
        .iter()
        .filter(|d| str_at(d, "/kind") == "Application")
    {
        let options =
            items_at(application, "/spec/syncPolicy/syncOptions").filter_map(Value::as_str);
        for option in options {
            assert_ne!(option, "CreateNamespace=true", "{}", describe(application));
        }
    }
}

#[test]
fn the_pod_reader_reads_every_workload_as_rendered() {
    let renders = renders();
    for render in overlays(&renders) {
        let workloads = pod::workloads(&render.docs).unwrap();
        assert_eq!(workloads.len(), pod_specs(render).len(), "{}", render.name);
        let config_maps = pod::config_maps(&render.docs).unwrap();
        for workload in &workloads {
            for container in &workload.pod.containers {
                // Only the clustered NATS servers name themselves after
                // their pod, which no stand-in can be.
                if container.reads_pod_fields() {
                    assert_eq!(workload.name, "StatefulSet/nats", "{}", render.name);
                    continue;
                }
                container
                    .environment(&config_maps, |_, _| Some("stand-in".to_owned()))
                    .unwrap();
                let probes = [&container.readiness_probe, &container.liveness_probe];
                for probe in probes.into_iter().flatten() {
                    if let ProbeAction::HttpGet { port, .. } = &probe.action {
                        container.port(port).unwrap();
                    }
                }
                for mount in &container.volume_mounts {
                    if workload.name.starts_with("Rollout") {
                        workload.pod.volume(&mount.name).unwrap();
                    }
                }
            }
        }
    }

    // Staging's app, field by field against the rendered object.
    let staging = renders.get("overlay/staging").unwrap();
    let rollout = find(staging, "Rollout", "todo-app");
    let at = |pointer: &str| {
        rollout
            .pointer(&format!("/spec/template/spec{pointer}"))
            .unwrap_or_else(|| panic!("{pointer} is rendered"))
            .clone()
    };
    let workloads = pod::workloads(&staging.docs).unwrap();
    let pod = &workloads
        .iter()
        .find(|w| w.name == "Rollout/todo-app")
        .unwrap()
        .pod;
    let app = pod.container("todo-app").unwrap();
    assert_eq!(Value::from(app.image.clone()), at("/containers/0/image"));
    assert_eq!(
        pod.security_context.run_as_user.map(Value::from),
        Some(at("/securityContext/runAsUser"))
    );
    assert_eq!(
        app.security_context
            .read_only_root_filesystem
            .map(Value::from),
        Some(at("/containers/0/securityContext/readOnlyRootFilesystem"))
    );
    assert_eq!(
        Value::from(app.security_context.capabilities.drop.clone()),
        at("/containers/0/securityContext/capabilities/drop")
    );
    assert_eq!(
        app.resources.limits.memory,
        Some(pod::Memory::try_from(at("/containers/0/resources/limits/memory")).unwrap())
    );
    let readiness = app.readiness_probe.as_ref().unwrap();
    assert_eq!(
        readiness.action,
        ProbeAction::HttpGet {
            path: at("/containers/0/readinessProbe/httpGet/path")
                .as_str()
                .unwrap()
                .to_owned(),
            port: PortRef::Name(
                at("/containers/0/readinessProbe/httpGet/port")
                    .as_str()
                    .unwrap()
                    .to_owned()
            ),
        }
    );
    assert_eq!(
        Value::from(readiness.period_seconds),
        at("/containers/0/readinessProbe/periodSeconds")
    );
    let admin = app.port(&PortRef::Name("admin".to_owned())).unwrap();
    assert_eq!(
        Value::from(admin),
        at("/containers/0/ports/1/containerPort")
    );
    assert_eq!(
        app.lifecycle
            .as_ref()
            .map(|l| Value::from(l.pre_stop.as_ref().unwrap().sleep.seconds)),
        Some(at("/containers/0/lifecycle/preStop/sleep/seconds"))
    );
    assert_eq!(
        pod.termination_grace_period_seconds.map(Value::from),
        Some(at("/terminationGracePeriodSeconds"))
    );
    let config_maps = pod::config_maps(&staging.docs).unwrap();
    let environment = app
        .environment(&config_maps, |name, key| Some(format!("{name}/{key}")))
        .unwrap();
    assert_eq!(environment["DATABASE_URL"], "docket-database/url");
    let config_map = find(
        staging,
        "ConfigMap",
        str_at(
            rollout,
            "/spec/template/spec/containers/0/envFrom/0/configMapRef/name",
        ),
    );
    for (key, value) in config_map["data"].as_object().unwrap() {
        if !app.env.iter().any(|e| &e.name == key) {
            assert_eq!(Some(environment[key].as_str()), value.as_str(), "{key}");
        }
    }
}

#[test]
fn the_istio_component_routes_the_rollout_through_its_virtual_service() {
    let renders = renders();
    let render = renders.get("component/istio").unwrap();
    let rollout = find(render, "Rollout", "todo-app");
    let istio = rollout
        .pointer("/spec/strategy/canary/trafficRouting/istio")
        .expect("the component adds Istio routing");
    let service = str_at(istio, "/virtualService/name");
    let rule = str_at(istio, "/destinationRule/name");
    find(render, "VirtualService", service);
    find(render, "DestinationRule", rule);
    // The base's steps and analyses are kept.
    assert_eq!(
        items_at(rollout, "/spec/strategy/canary/steps").count(),
        items_at(
            find(renders.get("base").unwrap(), "Rollout", "todo-app"),
            "/spec/strategy/canary/steps"
        )
        .count()
    );
    crate::references::check(&renders).unwrap();
}

#[test]
fn the_keda_component_replaces_listen_with_a_scaled_job_on_its_subject() {
    let renders = renders();
    let render = renders.get("component/keda-wikipedia").unwrap();
    assert!(
        render::find(&render.docs, "Deployment", "listen").is_none(),
        "the ScaledJob replaces the always-on listener"
    );
    find(renders.get("base").unwrap(), "Deployment", "listen");
    let job = find(render, "ScaledJob", "wikipedia-todo");
    assert_eq!(job.pointer("/spec/minReplicaCount"), Some(&Value::from(0)));
    let stream = find(render, "Stream", "jobs");
    let subjects: Vec<&str> = items_at(stream, "/spec/subjects")
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(subjects, ["jobs.wikipedia-todo"]);
    // One container, `cronjobs next-request`, reading the generated
    // ConfigMap as the CronJobs do.
    let spec = "/spec/jobTargetRef/template/spec";
    assert_eq!(
        str_at(job, &format!("{spec}/containers/0/args/0")),
        "next-request"
    );
    assert_eq!(items_at(job, &format!("{spec}/containers")).count(), 1);
    let config = str_at(
        job,
        &format!("{spec}/containers/0/envFrom/0/configMapRef/name"),
    );
    assert_eq!(generated_base_name(config), Some("cronjobs"), "{config}");
    crate::references::check(&renders).unwrap();
}
