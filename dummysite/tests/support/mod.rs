//! What the tests share: a real web site on loopback to copy pages from,
//! and a stand-in Kubernetes API server.
//!
//! The API server is kube-rs's documented way to test a reconciler without
//! a cluster: the client talks to a mocked tower service (`tower-test`),
//! and the test answers each request the way the API server documents
//! (server-side apply returns the object, a missing object is a 404
//! `Status`). CI's `dummysite-kind` job runs the controller against a real
//! API server.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use dummysite::{Config, Context, DummySite, DummySiteSpec, DummySiteStatus, Metrics};
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

pub const PAGE: &str = "<html><head><title>Hello</title></head><body>hello</body></html>";
pub const OTHER_PAGE: &str = "<html><head><title>Other</title></head><body>other</body></html>";
pub const SERVER_IMAGE: &str = "registry.test/page-server:1";

/// A site on loopback: `/page`, `/other`, `/broken` (500), `/json`,
/// `/huge` (larger than the limit, with its length), `/endless` (larger,
/// streamed without a length), `/slow` (answers after a minute).
pub struct Site {
    pub base: String,
    hits: Arc<AtomicUsize>,
}

impl Site {
    pub async fn start() -> Site {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let router = Router::new()
            .route("/page", get(|| async { html(PAGE) }))
            .route("/other", get(|| async { html(OTHER_PAGE) }))
            .route(
                "/broken",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route(
                "/json",
                get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{}") }),
            )
            .route(
                "/huge",
                get(|| async { ([(header::CONTENT_TYPE, "text/html")], "x".repeat(LIMIT + 1)) }),
            )
            .route(
                "/endless",
                get(|| async {
                    let chunks = futures::stream::iter(
                        (0..100).map(|_| Ok::<_, std::io::Error>("x".repeat(1024))),
                    );
                    (
                        [(header::CONTENT_TYPE, "text/html")],
                        HttpBody::from_stream(chunks),
                    )
                        .into_response()
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    html(PAGE)
                }),
            )
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let counted = counted.clone();
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        next.run(request).await
                    }
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Site { base, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How many requests the site has answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn html(page: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page)
}

/// The largest page the tests' fetcher takes.
pub const LIMIT: usize = 64 * 1024;

pub fn config() -> Config {
    Config {
        server_image: SERVER_IMAGE.into(),
        fetch_timeout: Duration::from_secs(2),
        max_page_bytes: LIMIT,
        refresh_interval: Duration::from_secs(3600),
        retry_first: Duration::from_secs(5),
        retry_longest: Duration::from_secs(300),
        port: 0,
    }
}

/// A site as the API server would hand it to the controller.
pub fn site(url: &str, generation: i64, status: Option<DummySiteStatus>) -> DummySite {
    let mut site = DummySite::new(
        "blog",
        DummySiteSpec {
            website_url: url.into(),
        },
    );
    site.metadata.namespace = Some("sites".into());
    site.metadata.uid = Some("6f1c-uid".into());
    site.metadata.generation = Some(generation);
    site.status = status;
    site
}

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A client whose API server is `Handle`, and the context around it.
pub fn context() -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (
        Arc::new(Context::new(client, config(), Metrics::new())),
        handle,
    )
}

/// One request the controller made.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

/// Takes the next request, checks its method and path, and answers it
/// with `status` and `answer` (`None`: the request's own body, as
/// server-side apply and a merge patch return the object).
pub async fn expect(
    handle: &mut Handle,
    method: Method,
    path: &str,
    status: u16,
    answer: Option<Value>,
) -> Call {
    expect_with(handle, method, path, status, |body| {
        answer.unwrap_or_else(|| body.clone())
    })
    .await
}

/// Takes the next request: a merge patch of `site`'s status, answered
/// with the site as patched.
pub async fn expect_status(handle: &mut Handle, site: &DummySite) -> Call {
    let call = expect_with(handle, Method::PATCH, STATUS, 200, |body| {
        patched(site, body)
    })
    .await;
    assert_eq!(call.content_type, "application/merge-patch+json");
    call
}

/// Like [`expect`], answering with what `answer` makes of the request body.
pub async fn expect_with(
    handle: &mut Handle,
    method: Method,
    path: &str,
    status: u16,
    answer: impl FnOnce(&Value) -> Value,
) -> Call {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
        .unwrap_or_else(|| panic!("the client is gone; expected {method} {path}"));
    let call = Call {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or_default().to_owned(),
        content_type: request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: {
            let bytes = request.into_body().collect_bytes().await.unwrap();
            if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            }
        },
    };
    assert_eq!((&call.method, call.path.as_str()), (&method, path));
    let answer = answer(&call.body);
    send.send_response(
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap(),
    );
    call
}

/// The API server's answer for an object that does not exist.
pub fn not_found() -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": "NotFound", "code": 404,
        "message": "configmaps \"blog\" not found",
    })
}

/// The status a merge patch of `patch` onto `site` leaves.
pub fn patched(site: &DummySite, patch: &Value) -> Value {
    let mut object = serde_json::to_value(site).unwrap();
    object["status"] = patch["status"].clone();
    object
}

pub const CONFIG_MAP: &str = "/api/v1/namespaces/sites/configmaps/blog";
pub const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/sites/deployments/blog";
pub const SERVICE: &str = "/api/v1/namespaces/sites/services/blog";
pub const STATUS: &str = "/apis/docket.dev/v1/namespaces/sites/dummysites/blog/status";

/// The condition `type_` of a status patch: (status, reason).
pub fn condition(patch: &Value, type_: &str) -> (String, String) {
    let condition = patch["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {patch}"));
    (
        condition["status"].as_str().unwrap().to_owned(),
        condition["reason"].as_str().unwrap().to_owned(),
    )
}
