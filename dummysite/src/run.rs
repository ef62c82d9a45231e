//! Running the controller: the watches, the reconciler, and the probes and
//! metrics server.

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::ListParams;
use kube::runtime::{Controller, watcher};
use kube::{Api, CustomResourceExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Config, Context, DummySite, Metrics, error_policy, reconcile};

/// The label every child carries; the controller watches only those.
const MANAGED: &str = "app.kubernetes.io/managed-by=dummysite-controller";

/// The CRD, as committed under `kustomize/components/dummysite/`.
pub fn crd_yaml() -> String {
    let crd = serde_yaml_ng::to_string(&DummySite::crd()).expect("a CRD serializes");
    format!(
        "# Generated from dummysite/src/resource.rs by `cargo run -p dummysite -- crd`;\n\
         # do not edit (a test keeps the two equal).\n---\n{crd}"
    )
}

/// Watches every namespace's DummySites until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (an in-cluster service account or a kubeconfig)")?;
    let sites = Api::<DummySite>::all(client.clone());
    // Fail at start, with a message that says what to fix, rather than
    // retrying a watch that cannot work.
    sites
        .list(&ListParams::default().limit(1))
        .await
        .context("cannot list DummySites: is the CRD installed (kustomize/components/dummysite), and may this service account list them?")?;

    let metrics = Metrics::new();
    let listener = TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| format!("cannot listen on port {}", config.port))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(service_kit::stop::cancel_on_request(
        shutdown.clone(),
        "finishing the reconciles in progress",
    ));
    let ops = axum::serve(listener, service_kit::ops::router(Started, metrics.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());

    tracing::info!(port = config.port, "watching DummySites in every namespace");
    let context = Arc::new(Context::new(client.clone(), config, metrics));
    let children = || watcher::Config::default().labels(MANAGED);
    let controller = Controller::new(sites, watcher::Config::default())
        .owns(Api::<ConfigMap>::all(client.clone()), children())
        .owns(Api::<Deployment>::all(client.clone()), children())
        .owns(Api::<Service>::all(client), children())
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, context)
        // Failed reconciles are logged by `error_policy`; what is left are
        // watch errors, which the controller retries itself.
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(error = %service_kit::backoff::chain(&error), "controller");
            }
        });
    let (_, served) = tokio::join!(controller, ops);
    served.context("the probes and metrics server failed")
}

/// Ready once started: start-up checked that the DummySites can be listed.
#[derive(Clone)]
struct Started;

impl service_kit::ops::Readiness for Started {
    async fn check(&self) -> Result<(), &'static str> {
        Ok(())
    }
}
