//! The `DummySite` custom resource: the page to copy, and what became of it.
//!
//! The CRD in `kustomize/components/dummysite/crd.yaml` is generated from
//! these types (`dummysite crd`); a test keeps the two equal.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of Docket's own resources.
pub const GROUP: &str = "docket.dev";

/// The page to copy.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "docket.dev",
    version = "v1",
    kind = "DummySite",
    namespaced,
    status = "DummySiteStatus",
    doc = "A web page the DummySite controller copies and serves inside the cluster, from a Service named like the DummySite.",
    shortname = "dummy",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.website_url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct DummySiteSpec {
    /// The page to copy: an absolute http:// or https:// URL.
    // The pattern makes a typo an error at `kubectl apply`, not a failed
    // reconcile. A `String` on the wire, parsed into a `WebsiteUrl` by the
    // reconciler: an object the type could not read would break the
    // controller's watch of every other object.
    #[schemars(
        regex(pattern = r"^[hH][tT][tT][pP][sS]?://[^\s/?#]+[^\s]*$"),
        length(max = 2048)
    )]
    pub website_url: String,
}

/// What the controller last saw and did.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DummySiteStatus {
    /// Ready: a copy of spec.website_url is served. FetchFailed: the last
    /// fetch failed, and its reason says why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The URL of the copy being served; it lags spec.website_url while a
    /// new URL cannot be copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_url: Option<String>,
    /// The copy's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_bytes: Option<u64>,
}

impl DummySiteStatus {
    /// The condition of type `type_`, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
