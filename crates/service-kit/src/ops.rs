//! The operations router every service serves: `/healthz`, `/readyz`,
//! `/metrics`.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 while
//! the service's [`Readiness`] check passes, and 503 with the reason
//! otherwise. `/metrics` serves the Prometheus text format. The bodies end
//! in a newline so `curl` output reads well.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Whether a service can do its work now.
pub trait Readiness: Clone + Send + Sync + 'static {
    /// `Err` names what is missing, in a few fixed words (`not connected
    /// to NATS`). A `&'static str`, so no error text from a dependency
    /// (a host name, a user, a driver's message) can reach the answer,
    /// which anyone who can reach the port reads; the detail goes to the log.
    fn check(&self) -> impl Future<Output = Result<(), &'static str>> + Send;
}

/// Something that renders metrics in the Prometheus text format.
pub trait Metrics: Clone + Send + Sync + 'static {
    /// The current values; a gauge read from elsewhere (a database count)
    /// may be refreshed first.
    fn render(&self) -> impl Future<Output = String> + Send;
}

/// A registry's metrics in the Prometheus text format.
pub fn text(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buffer = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buffer)
        .expect("encoding metrics into memory cannot fail");
    String::from_utf8(buffer).expect("the text format is UTF-8")
}

/// The readiness of a NATS service: connected, and set up (its consumer
/// or subscription exists, which the service marks in `set_up`).
#[derive(Clone)]
pub struct NatsReadiness {
    nats: async_nats::Client,
    set_up: Arc<AtomicBool>,
    waiting: &'static str,
}

impl NatsReadiness {
    /// `waiting` says what is missing until `set_up` is true.
    pub fn new(nats: async_nats::Client, set_up: Arc<AtomicBool>, waiting: &'static str) -> Self {
        Self {
            nats,
            set_up,
            waiting,
        }
    }
}

impl Readiness for NatsReadiness {
    async fn check(&self) -> Result<(), &'static str> {
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            return Err("not connected to NATS");
        }
        if !self.set_up.load(Ordering::Acquire) {
            return Err(self.waiting);
        }
        Ok(())
    }
}

/// `/healthz` and `/readyz`.
pub fn probes<S: Clone + Send + Sync + 'static, R: Readiness>(readiness: R) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<R>).with_state(readiness))
}

/// `/metrics`.
pub fn metrics<S: Clone + Send + Sync + 'static, M: Metrics>(metrics: M) -> Router<S> {
    Router::new().route("/metrics", get(render::<M>).with_state(metrics))
}

/// The whole operations router: the probes and the metrics.
pub fn router<R: Readiness, M: Metrics>(readiness: R, registry: M) -> Router {
    probes(readiness).merge(metrics(registry))
}

async fn readyz<R: Readiness>(State(readiness): State<R>) -> (StatusCode, String) {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

async fn render<M: Metrics>(State(metrics): State<M>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render().await,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Flag(Arc<AtomicBool>);

    impl Readiness for Flag {
        async fn check(&self) -> Result<(), &'static str> {
            if self.0.load(Ordering::Acquire) {
                Ok(())
            } else {
                Err("not subscribed yet")
            }
        }
    }

    #[derive(Clone)]
    struct Fixed;

    impl Metrics for Fixed {
        async fn render(&self) -> String {
            "up 1\n".into()
        }
    }

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_follows_the_check_and_says_why_not() {
        let flag = Flag::default();
        let router = router(flag.clone(), Fixed);
        assert_eq!(
            get(&router, "/healthz").await,
            (StatusCode::OK, "ok\n".into())
        );
        assert_eq!(
            get(&router, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: not subscribed yet\n".into()
            )
        );
        flag.0.store(true, Ordering::Release);
        assert_eq!(
            get(&router, "/readyz").await,
            (StatusCode::OK, "ready\n".into())
        );
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text() {
        let response = router(Flag::default(), Fixed)
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(&body[..], b"up 1\n");
    }
}
