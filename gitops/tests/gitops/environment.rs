//! A staging environment on loopback, for `gitops verify-env`.
//!
//! Real parts where they can run here: the `todo-app` binary (with its own
//! database) reporting a commit through `GIT_COMMIT`, and a private
//! Prometheus scraping it with the labels the cluster's PodMonitor gives a
//! pod (`namespace`, `pod`, `app_kubernetes_io_name`).
//!
//! Two small stand-ins for what cannot run here:
//! - [`ArgoCd`] stands in for Argo CD's API server (no Kubernetes here): it
//!   serves `GET /api/v1/applications/{name}` in the JSON shape Argo CD
//!   documents, checks the bearer token as Argo CD does (401 for a bad
//!   token, 403 for an unknown application), and answers a scripted series
//!   of sync/health states;
//! - [`ServiceFront`] stands in for the Kubernetes Service in front of the
//!   pods: it forwards every request to the real app, except that the first
//!   `old_answers` requests for `/version` are answered by an "old pod"
//!   still reporting the previous commit, as a Service does while old pods
//!   still take connections.
//!
//! Both record what they answered in one shared [`Log`], so tests can check
//! the order verify-env did things in.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use test_support::{
    ScrapeTarget, Service, TestDatabase, free_port, test_database, workspace_binary,
};
use tokio::task::JoinHandle;

use crate::helpers::hermetic;

pub const NAMESPACE: &str = "docket-staging";
pub const APP: &str = "docket-staging";
pub const TOKEN: &str = "argocd-test-token-5e1f";
pub const OLD_COMMIT: &str = "1111111111111111111111111111111111111111";

/// What verify-env was answered, in order.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Index of the first event starting with `prefix`.
    pub fn first(&self, prefix: &str) -> Option<usize> {
        self.events().iter().position(|e| e.starts_with(prefix))
    }
}

/// One state of the Application: `status.sync.status`,
/// `status.sync.revision`, `status.health.status`.
#[derive(Debug, Clone)]
pub struct AppState {
    pub sync: &'static str,
    pub revision: String,
    pub health: &'static str,
}

impl AppState {
    pub fn new(sync: &'static str, revision: &str, health: &'static str) -> AppState {
        AppState {
            sync,
            revision: revision.to_owned(),
            health,
        }
    }
}

/// What the Argo CD stand-in saw of one request.
#[derive(Debug, Clone)]
pub struct ArgoRequest {
    pub refresh: Option<String>,
    pub authorized: bool,
}

struct ArgoShared {
    script: Vec<AppState>,
    requests: Mutex<Vec<ArgoRequest>>,
    log: Log,
}

/// Stands in for Argo CD's API server (see the module documentation).
pub struct ArgoCd {
    pub url: String,
    shared: Arc<ArgoShared>,
    server: JoinHandle<()>,
}

impl ArgoCd {
    /// Answers `script[i]` to the i-th authorized request, then the last
    /// state for ever.
    pub async fn start(script: Vec<AppState>, log: Log) -> ArgoCd {
        assert!(!script.is_empty());
        let shared = Arc::new(ArgoShared {
            script,
            requests: Mutex::new(Vec::new()),
            log,
        });
        let router = Router::new()
            .route("/api/v1/applications/{name}", get(application))
            .with_state(shared.clone());
        let (url, server) = serve(router).await;
        ArgoCd {
            url,
            shared,
            server,
        }
    }

    /// Synced at `revision` and Healthy from the first request on.
    pub async fn settled_at(revision: &str) -> ArgoCd {
        ArgoCd::start(
            vec![AppState::new("Synced", revision, "Healthy")],
            Log::default(),
        )
        .await
    }

    pub fn requests(&self) -> Vec<ArgoRequest> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for ArgoCd {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn application(
    State(shared): State<Arc<ArgoShared>>,
    Path(name): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {TOKEN}").as_str());
    let index = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(ArgoRequest {
            refresh: query.get("refresh").cloned(),
            authorized,
        });
        requests.iter().filter(|r| r.authorized).count()
    };
    // Argo CD's answers: gRPC-gateway errors with a gRPC code, and 403
    // rather than 404 for an application that does not exist.
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid session: token signature is invalid",
                              "code": 16, "message": "invalid session: token signature is invalid"})),
        )
            .into_response();
    }
    if name != APP {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "permission denied", "code": 7,
                              "message": "permission denied"})),
        )
            .into_response();
    }
    let state = shared
        .script
        .get(index - 1)
        .unwrap_or_else(|| shared.script.last().expect("a script"))
        .clone();
    shared
        .log
        .push(format!("argocd {} {}", state.sync, state.health));
    axum::Json(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": APP, "namespace": "argocd"},
        "spec": {
            "project": "docket",
            "source": {
                "repoURL": "https://github.com/docket-dev/docket-config.git",
                "path": "kustomize/overlays/staging",
                "targetRevision": "main"
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE}
        },
        "status": {
            "sync": {
                "status": state.sync,
                "revision": state.revision,
                "comparedTo": {
                    "source": {
                        "repoURL": "https://github.com/docket-dev/docket-config.git",
                        "path": "kustomize/overlays/staging",
                        "targetRevision": "main"
                    },
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE}
                }
            },
            "health": {"status": state.health},
            "operationState": {
                "phase": "Succeeded",
                "syncResult": {"revision": state.revision}
            }
        }
    }))
    .into_response()
}

struct FrontShared {
    backend: String,
    old_answers: usize,
    version_requests: AtomicUsize,
    client: reqwest::Client,
    log: Log,
}

/// Stands in for the Service in front of the pods (see the module
/// documentation).
pub struct ServiceFront {
    pub url: String,
    server: JoinHandle<()>,
}

impl ServiceFront {
    pub async fn start(backend: &str, old_answers: usize, log: Log) -> ServiceFront {
        let shared = Arc::new(FrontShared {
            backend: backend.trim_end_matches('/').to_owned(),
            old_answers,
            version_requests: AtomicUsize::new(0),
            client: reqwest::Client::new(),
            log,
        });
        let router = Router::new().fallback(forward).with_state(shared);
        let (url, server) = serve(router).await;
        ServiceFront { url, server }
    }
}

impl Drop for ServiceFront {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(shared): State<Arc<FrontShared>>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    if uri.path() == "/version" {
        let n = shared.version_requests.fetch_add(1, Ordering::SeqCst);
        if n < shared.old_answers {
            shared.log.push("version old");
            return axum::Json(
                json!({"name": "todo-app", "version": "0.0.9", "commit": OLD_COMMIT}),
            )
            .into_response();
        }
        shared.log.push("version forwarded");
    } else {
        shared.log.push(format!("GET {path}"));
    }
    match shared
        .client
        .get(format!("{}{path}", shared.backend))
        .send()
        .await
    {
        Ok(answer) => {
            let status = answer.status();
            (status, answer.bytes().await.unwrap_or_default()).into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// Serves `router` on a free loopback port; its base URL and task.
async fn serve(router: Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, server)
}

/// A real `todo-app` reporting `commit`, with a database of its own.
pub struct App {
    pub url: String,
    pub port: u16,
    _service: Service,
    _database: TestDatabase,
}

impl App {
    pub async fn start(commit: &str, nats_url: &str) -> App {
        let database = test_database().await.unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let service = Service::spawn(
            &workspace_binary("todo-app"),
            &[],
            &[
                ("DATABASE_URL", database.url.clone()),
                ("NATS_URL", nats_url.to_owned()),
                ("PORT", port.to_string()),
                ("GIT_COMMIT", commit.to_owned()),
            ],
            &format!("{url}/readyz"),
        )
        .await
        .unwrap();
        App {
            url,
            port,
            _service: service,
            _database: database,
        }
    }
}

/// A private Prometheus scraping app pods as the cluster's PodMonitor does.
pub struct Prometheus;

impl Prometheus {
    /// Scrapes each `(port, pod)` every second, labelled as the PodMonitor
    /// labels an app pod in [`NAMESPACE`].
    pub async fn scraping(pods: &[(u16, &str)]) -> test_support::Prometheus {
        let targets: Vec<ScrapeTarget> = pods
            .iter()
            .map(|(port, pod)| {
                ScrapeTarget::metrics(
                    *port,
                    &[
                        ("namespace", NAMESPACE),
                        ("pod", pod),
                        ("app_kubernetes_io_name", "todo-app"),
                    ],
                )
            })
            .collect();
        test_support::Prometheus::scraping(&targets).await.unwrap()
    }
}

/// A loopback URL nothing listens on, for checks that must fail before
/// they would be reached.
pub fn nothing_listening() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Runs `gitops` without blocking the runtime the stand-ins serve from,
/// with only the `envs` given of the variables verify-env reads.
pub async fn gitops_async(
    dir: &std::path::Path,
    args: &[String],
    envs: &[(&str, &str)],
) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gitops"));
    command.current_dir(dir).args(args);
    hermetic(&mut command);
    for variable in [
        "ARGOCD_SERVER",
        "ARGOCD_AUTH_TOKEN",
        "PROMETHEUS_URL",
        "GITHUB_SHA",
    ] {
        command.env_remove(variable);
    }
    command.envs(envs.iter().copied());
    tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::from(command).output(),
    )
    .await
    .expect("gitops finishes within 5 minutes")
    .expect("gitops runs")
}

/// `verify-env` arguments for staging against the given parts.
pub fn verify_args(
    url: &str,
    commit: &str,
    argocd: &str,
    prometheus: &str,
    timeout: u64,
) -> Vec<String> {
    [
        "verify-env",
        "--env",
        "staging",
        "--url",
        url,
        "--expect-commit",
        commit,
        "--argocd-server",
        argocd,
        "--argocd-token",
        TOKEN,
        "--app",
        APP,
        "--prometheus",
        prometheus,
        "--timeout",
        &timeout.to_string(),
        "--interval-ms",
        "250",
        "--consecutive",
        "5",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}
