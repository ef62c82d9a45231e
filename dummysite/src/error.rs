//! The controller's one error type.

use crate::fetch::FetchError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec names no page the controller may fetch; retrying cannot
    /// help until the spec changes.
    #[error("spec.website_url {0}")]
    InvalidUrl(String),
    #[error("cannot copy the page: {0}")]
    Fetch(#[from] FetchError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Only objects read from the API server are reconciled, and those
    /// have all three.
    #[error("the DummySite has no name, namespace or uid")]
    Unstored,
}
