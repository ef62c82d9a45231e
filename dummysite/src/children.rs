//! What a `DummySite` owns: a ConfigMap with the copy, and a Deployment and
//! Service that serve it. Each carries the site as its controlling owner,
//! so deleting the site deletes them (Kubernetes' garbage collector; the
//! controller needs no finalizer, since it holds nothing outside them).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{DummySite, WebsiteUrl};

/// The file the server serves at `/`.
pub const PAGE_KEY: &str = "index.html";
/// On the ConfigMap: the URL its copy came from.
pub const SOURCE_URL: &str = "docket.dev/source-url";
/// On the ConfigMap and the pod template: the copy's SHA-256, so a new
/// copy rolls the pods at once instead of waiting for the kubelet to
/// refresh the mounted file.
pub const CONTENT_SHA256: &str = "docket.dev/content-sha256";
/// On the ConfigMap: when the copy was fetched (RFC 3339).
pub const FETCHED_AT: &str = "docket.dev/fetched-at";

/// The port the page server listens on inside its pod.
const SERVER_PORT: i32 = 8080;

/// The objects of one site, named after it, in its namespace.
pub struct Children {
    name: String,
    namespace: String,
    owner: OwnerReference,
}

impl Children {
    /// `None` for a site the API server has not stored yet (no uid): there
    /// is nothing to own anything.
    pub fn of(site: &DummySite) -> Option<Children> {
        Some(Children {
            name: site.meta().name.clone()?,
            namespace: site.meta().namespace.clone()?,
            owner: site.controller_owner_ref(&())?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn labels(&self) -> serde_json::Value {
        json!({
            "app.kubernetes.io/name": "dummysite",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/managed-by": "dummysite-controller",
        })
    }

    fn metadata(&self, annotations: serde_json::Value) -> serde_json::Value {
        json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": self.labels(),
            "annotations": annotations,
            "ownerReferences": [self.owner],
        })
    }

    /// The copy of `page` from `url`, fetched at `fetched_at`.
    pub fn config_map(&self, url: &WebsiteUrl, page: &[u8], fetched_at: &str) -> ConfigMap {
        let mut config_map: ConfigMap = serde_json::from_value(json!({
            "metadata": self.metadata(json!({
                SOURCE_URL: url.as_str(),
                CONTENT_SHA256: sha256(page),
                FETCHED_AT: fetched_at,
            })),
        }))
        .expect("a ConfigMap's metadata");
        // Bytes, not text: the page is served exactly as fetched, in
        // whatever encoding it declared.
        config_map.binary_data = Some(BTreeMap::from([(
            PAGE_KEY.to_owned(),
            ByteString(page.to_vec()),
        )]));
        config_map
    }

    /// A server for the copy whose hash is `content_sha256`.
    pub fn deployment(&self, server_image: &str, content_sha256: &str) -> Deployment {
        let labels = self.labels();
        serde_json::from_value(json!({
            "metadata": self.metadata(json!({})),
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": { CONTENT_SHA256: content_sha256 },
                    },
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": 101,
                            "runAsGroup": 101,
                            "seccompProfile": { "type": "RuntimeDefault" },
                        },
                        "containers": [{
                            "name": "server",
                            "image": server_image,
                            "ports": [{ "name": "http", "containerPort": SERVER_PORT }],
                            "readinessProbe": { "httpGet": { "path": "/", "port": "http" } },
                            "livenessProbe": { "httpGet": { "path": "/", "port": "http" } },
                            "resources": {
                                "requests": { "cpu": "10m", "memory": "16Mi" },
                                "limits": { "memory": "64Mi" },
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": { "drop": ["ALL"] },
                            },
                            "volumeMounts": [
                                { "name": "page", "mountPath": "/usr/share/nginx/html", "readOnly": true },
                                // nginx's pid file and temporary files.
                                { "name": "tmp", "mountPath": "/tmp" },
                            ],
                        }],
                        "volumes": [
                            { "name": "page", "configMap": { "name": self.name } },
                            { "name": "tmp", "emptyDir": { "sizeLimit": "16Mi" } },
                        ],
                    },
                },
            },
        }))
        .expect("a Deployment")
    }

    pub fn service(&self) -> Service {
        serde_json::from_value(json!({
            "metadata": self.metadata(json!({})),
            "spec": {
                "selector": self.labels(),
                "ports": [{ "name": "http", "port": 80, "targetPort": "http" }],
            },
        }))
        .expect("a Service")
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
