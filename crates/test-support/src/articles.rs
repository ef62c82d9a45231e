//! A stand-in for Wikipedia's `Special:Random`, which answers with a
//! redirect to a random article: the cronjobs tests and the images' smoke
//! test point `RANDOM_ARTICLE_URL` at it, as nothing here reaches the
//! Internet.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// What the stand-in for `Special:Random` answers.
#[derive(Clone)]
pub enum Answer {
    /// 302 with this `Location`.
    Redirect(&'static str),
    /// 200 with an article page: no redirect.
    Page,
    /// 503 for the first `n` requests, then 302 with this `Location`.
    UnavailableThenRedirect(usize, &'static str),
}

/// A local HTTP server answering `GET /wiki/Special:Random` on 127.0.0.1
/// (a container reaches it through the host's loopback).
pub struct ArticleServer {
    address: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl ArticleServer {
    pub async fn start(answer: Answer) -> ArticleServer {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let app = Router::new().route(
            "/wiki/Special:Random",
            get(move || {
                let answer = answer.clone();
                let seen = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    match answer {
                        Answer::Redirect(location) => {
                            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
                        }
                        Answer::Page => "<html>an article, not a redirect</html>".into_response(),
                        Answer::UnavailableThenRedirect(n, _) if seen < n => {
                            StatusCode::SERVICE_UNAVAILABLE.into_response()
                        }
                        Answer::UnavailableThenRedirect(_, location) => {
                            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ArticleServer { address, requests }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn random_url(&self) -> String {
        format!("{}/wiki/Special:Random", self.base_url())
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}
