//! Objects that name each other by name agree, in every overlay and
//! component render.
//!
//! Schemas see one object at a time, and a controller resolves these names
//! only in the cluster: a Rollout whose Istio routing names a VirtualService,
//! route or subset that is not there stalls mid-rollout, and a KEDA trigger
//! naming a stream or consumer nobody declares never scales. So:
//!
//! - a Rollout's `trafficRouting.istio` names a VirtualService with each named
//!   HTTP route, every route weighing exactly the DestinationRule's stable and
//!   canary subsets of the DestinationRule's host, 100 to stable at rest;
//!   the DestinationRule has both subsets.
//! - a ScaledJob's `nats-jetstream` trigger names a NACK Stream and a durable
//!   Consumer of that stream, and reads the monitoring port (8222) of the
//!   `nats` Service in its own namespace.

use serde_json::Value;

use crate::render::{Render, Renders, Target, check_each, find, items_at, str_at};

pub fn check(renders: &Renders) -> anyhow::Result<()> {
    check_each(
        renders
            .of(Target::Overlay)
            .chain(renders.of(Target::Component)),
        check_render,
    )
}

fn check_render(render: &Render) -> Vec<String> {
    let mut errors = Vec::new();
    for doc in &render.docs {
        let name = str_at(doc, "/metadata/name");
        match str_at(doc, "/kind") {
            "Rollout" => {
                if let Some(istio) = doc.pointer("/spec/strategy/canary/trafficRouting/istio") {
                    errors.extend(
                        istio_routing(&render.docs, istio)
                            .into_iter()
                            .map(|e| format!("{}: Rollout/{name}: {e}", render.name)),
                    );
                }
            }
            "ScaledJob" => {
                for trigger in items_at(doc, "/spec/triggers")
                    .filter(|t| str_at(t, "/type") == "nats-jetstream")
                {
                    let namespace = str_at(doc, "/metadata/namespace");
                    errors.extend(
                        jetstream_trigger(&render.docs, trigger, namespace)
                            .into_iter()
                            .map(|e| format!("{}: ScaledJob/{name}: {e}", render.name)),
                    );
                }
            }
            _ => {}
        }
    }
    errors
}

fn istio_routing(docs: &[Value], istio: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let vs_name = str_at(istio, "/virtualService/name");
    let dr_name = str_at(istio, "/destinationRule/name");
    let stable = str_at(istio, "/destinationRule/stableSubsetName");
    let canary = str_at(istio, "/destinationRule/canarySubsetName");
    let Some(rule) = find(docs, "DestinationRule", dr_name) else {
        return vec![format!(
            "names DestinationRule {dr_name:?}, which is not rendered"
        )];
    };
    let host = str_at(rule, "/spec/host");
    for subset in [stable, canary] {
        if !items_at(rule, "/spec/subsets").any(|s| str_at(s, "/name") == subset) {
            errors.push(format!(
                "subset {subset:?} is not in DestinationRule/{dr_name}"
            ));
        }
    }
    let Some(service) = find(docs, "VirtualService", vs_name) else {
        errors.push(format!(
            "names VirtualService {vs_name:?}, which is not rendered"
        ));
        return errors;
    };
    let routes: Vec<&str> = items_at(istio, "/virtualService/routes")
        .filter_map(Value::as_str)
        .collect();
    if routes.is_empty() {
        errors.push("names no route of its VirtualService".to_owned());
    }
    for route in routes {
        let Some(http) = items_at(service, "/spec/http").find(|h| str_at(h, "/name") == route)
        else {
            errors.push(format!(
                "route {route:?} is not in VirtualService/{vs_name}"
            ));
            continue;
        };
        let destinations: Vec<(&str, &str, Option<u64>)> = items_at(http, "/route")
            .map(|d| {
                (
                    str_at(d, "/destination/host"),
                    str_at(d, "/destination/subset"),
                    d.get("weight").and_then(Value::as_u64),
                )
            })
            .collect();
        let expected = [(host, stable, Some(100)), (host, canary, Some(0))];
        if destinations != expected {
            errors.push(format!(
                "route {route:?} of VirtualService/{vs_name} must weigh exactly \
                 {host}/{stable} (100) and {host}/{canary} (0), not {destinations:?}"
            ));
        }
    }
    errors
}

fn jetstream_trigger(docs: &[Value], trigger: &Value, namespace: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let stream = str_at(trigger, "/metadata/stream");
    let consumer = str_at(trigger, "/metadata/consumer");
    let declared = |kind: &str, field: &str, value: &str| {
        docs.iter()
            .filter(|d| str_at(d, "/kind") == kind)
            .find(|d| str_at(d, &format!("/spec/{field}")) == value)
    };
    if declared("Stream", "name", stream).is_none() {
        errors.push(format!("stream {stream:?} is not declared by a Stream"));
    }
    match declared("Consumer", "durableName", consumer) {
        Some(found) if str_at(found, "/spec/streamName") == stream => {}
        Some(found) => errors.push(format!(
            "consumer {consumer:?} belongs to stream {:?}, not {stream:?}",
            str_at(found, "/spec/streamName")
        )),
        None => errors.push(format!(
            "consumer {consumer:?} is not declared by a durable Consumer"
        )),
    }
    let endpoint = str_at(trigger, "/metadata/natsServerMonitoringEndpoint");
    let expected = format!("nats.{namespace}.svc.cluster.local:8222");
    if endpoint != expected {
        errors.push(format!(
            "natsServerMonitoringEndpoint is {endpoint:?}, not this namespace's {expected:?}"
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(docs: Vec<Value>) -> Render {
        Render {
            name: "component/test".to_owned(),
            target: Target::Component,
            file: "unused".into(),
            docs,
        }
    }

    /// The render of `docs` reports exactly one error per fragment, in order.
    fn assert_reported(docs: Vec<Value>, fragments: &[&str]) {
        let errors = check_render(&render(docs));
        assert_eq!(errors.len(), fragments.len(), "{errors:?}");
        for (error, fragment) in errors.iter().zip(fragments) {
            assert!(error.contains(fragment), "{fragment:?} in {errors:?}");
        }
    }

    fn istio_docs() -> Vec<Value> {
        vec![
            json!({"kind": "Rollout", "metadata": {"name": "todo-app"},
                   "spec": {"strategy": {"canary": {"trafficRouting": {"istio": {
                       "virtualService": {"name": "todo-app", "routes": ["primary"]},
                       "destinationRule": {"name": "todo-app",
                           "stableSubsetName": "stable", "canarySubsetName": "canary"}}}}}}}),
            json!({"kind": "VirtualService", "metadata": {"name": "todo-app"},
                   "spec": {"hosts": ["todo-app"], "http": [{"name": "primary", "route": [
                       {"destination": {"host": "todo-app", "subset": "stable"}, "weight": 100},
                       {"destination": {"host": "todo-app", "subset": "canary"}, "weight": 0}]}]}}),
            json!({"kind": "DestinationRule", "metadata": {"name": "todo-app"},
                   "spec": {"host": "todo-app", "subsets": [
                       {"name": "stable", "labels": {}}, {"name": "canary", "labels": {}}]}}),
        ]
    }

    #[test]
    fn a_renamed_virtual_service_is_reported_by_the_name_the_rollout_uses() {
        let mut docs = istio_docs();
        docs[1]["metadata"]["name"] = json!("todo-app-vs");
        let errors = check_render(&render(docs));
        assert_eq!(
            errors,
            [
                "component/test: Rollout/todo-app: names VirtualService \"todo-app\", \
                 which is not rendered"
            ]
        );
    }

    #[test]
    fn a_missing_route_or_subset_and_a_wrong_destination_are_reported() {
        let mut docs = istio_docs();
        docs[0]["spec"]["strategy"]["canary"]["trafficRouting"]["istio"]["virtualService"]["routes"] =
            json!(["main"]);
        docs[2]["spec"]["subsets"][1]["name"] = json!("preview");
        assert_reported(
            docs,
            &["subset \"canary\" is not in", "route \"main\" is not in"],
        );

        let mut docs = istio_docs();
        docs[1]["spec"]["http"][0]["route"][1]["destination"]["host"] = json!("todo-app-canary");
        assert_reported(docs, &["must weigh exactly"]);
    }

    #[test]
    fn matching_istio_objects_and_a_trigger_on_a_declared_stream_and_consumer_pass() {
        assert_eq!(check_render(&render(istio_docs())), Vec::<String>::new());
        assert_eq!(check_render(&render(keda_docs())), Vec::<String>::new());
        // Both in one render, as an overlay with both components has them.
        let both = [istio_docs(), keda_docs()].concat();
        assert_eq!(check_render(&render(both)), Vec::<String>::new());
    }

    fn keda_docs() -> Vec<Value> {
        vec![
            json!({"kind": "ScaledJob", "metadata": {"name": "w", "namespace": "ns"},
                   "spec": {"triggers": [{"type": "nats-jetstream", "metadata": {
                       "natsServerMonitoringEndpoint": "nats.ns.svc.cluster.local:8222",
                       "account": "$G", "stream": "JOBS", "consumer": "w", "lagThreshold": "1"}}]}}),
            json!({"kind": "Stream", "metadata": {"name": "jobs"}, "spec": {"name": "JOBS"}}),
            json!({"kind": "Consumer", "metadata": {"name": "w"},
                   "spec": {"streamName": "JOBS", "durableName": "w"}}),
        ]
    }

    #[test]
    fn a_trigger_on_an_undeclared_consumer_or_another_namespace_is_reported() {
        let mut docs = keda_docs();
        docs[2]["spec"]["durableName"] = json!("other");
        docs[0]["spec"]["triggers"][0]["metadata"]["natsServerMonitoringEndpoint"] =
            json!("nats.NAMESPACE.svc.cluster.local:8222");
        assert_reported(
            docs,
            &["consumer \"w\" is not declared", "not this namespace's"],
        );
    }
}
