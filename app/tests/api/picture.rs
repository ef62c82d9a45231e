//! The hourly picture: fetched from a local image server by one replica per
//! maximum age, kept in JetStream's object store, served from memory.
//!
//! Each test has a nats-server of its own (the picture's buckets would be
//! shared otherwise), secured with the shipped configuration, so the app's
//! NATS permissions are what is tested (see [`Setup`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::domain::Picture;
use app::picture::PictureSettings;
use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use test_support::{Nats, Role, TestDatabase, eventually, test_database};
use tokio::time::Instant;

use crate::helpers::{DEADLINE, TestApp, spawn_app_with};

/// What the image server answers.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// A PNG whose bytes differ with each request.
    Image,
    /// 503.
    Fail,
    /// Never answers.
    Hang,
    /// A PNG one byte over the limit, sent in chunks with no length.
    Oversize,
    /// An HTML page.
    Html,
}

/// A stand-in for Lorem Picsum on 127.0.0.1 that notes when it was asked.
struct ImageServer {
    url: String,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<Mutex<Vec<Instant>>>,
}

impl ImageServer {
    async fn start(answer: Answer) -> ImageServer {
        let answer = Arc::new(Mutex::new(answer));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (now, seen) = (answer.clone(), requests.clone());
        let app = Router::new().route(
            "/1200",
            get(move || {
                let answer = *now.lock().unwrap();
                let number = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Instant::now());
                    seen.len()
                };
                respond(answer, number)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/1200", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        ImageServer {
            url,
            answer,
            requests,
        }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn requests(&self) -> Vec<Instant> {
        self.requests.lock().unwrap().clone()
    }
}

async fn respond(answer: Answer, number: usize) -> Response {
    match answer {
        Answer::Image => ([(header::CONTENT_TYPE, "image/png")], png(number)).into_response(),
        Answer::Fail => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Answer::Hang => std::future::pending().await,
        Answer::Oversize => {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let chunks = Picture::MAX_BYTES / chunk.len() + 1;
            let body = futures::stream::iter(
                std::iter::once(png(number))
                    .chain(std::iter::repeat_n(chunk, chunks))
                    .map(Ok::<_, std::io::Error>),
            );
            (
                [(header::CONTENT_TYPE, "image/png")],
                Body::from_stream(body),
            )
                .into_response()
        }
        Answer::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>Not a picture</title>",
        )
            .into_response(),
    }
}

/// PNG's magic number and then `number`: an image as far as the app
/// checks, and different for each request.
fn png(number: usize) -> Bytes {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(format!("picture {number}").as_bytes());
    Bytes::from(bytes)
}

/// A nats-server of the test's own (secured with the shipped
/// configuration), a database, and the image server the replicas fetch from.
struct Setup {
    nats: Nats,
    database: TestDatabase,
    source: ImageServer,
}

impl Setup {
    async fn start(answer: Answer) -> Setup {
        Setup {
            nats: Nats::start_secured().unwrap(),
            database: test_database().await.unwrap(),
            source: ImageServer::start(answer).await,
        }
    }

    /// A replica of the app, connected as the app's NATS user, ready.
    async fn replica(&self, max_age: Duration) -> TestApp {
        let settings = self.nats.settings(Role::App);
        let source = self.source.url.parse().unwrap();
        let app = spawn_app_with(&self.database.url, &self.nats.url(), None, |config| {
            config.nats = settings;
            config.picture = Some(PictureSettings {
                source,
                max_age,
                fetch_timeout: Duration::from_millis(500),
            });
        })
        .await;
        app.wait_until_ready().await;
        app
    }
}

/// What `/picture` answers: its tag and bytes, or `None` for a 404.
async fn served(app: &TestApp) -> Option<(String, Bytes)> {
    let response = app.get("/picture").await;
    if response.status() == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/png");
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    Some((etag, response.bytes().await.unwrap()))
}

/// Waits until `app` serves `bytes`.
async fn wait_until_serving(app: &TestApp, bytes: &Bytes) -> String {
    eventually(DEADLINE, "the app to serve the picture", || async {
        served(app)
            .await
            .and_then(|(etag, body)| (body == *bytes).then_some(etag))
    })
    .await
    .unwrap()
}

/// `picture_fetches_total{outcome}` on `app`'s `/metrics`.
async fn fetches(app: &TestApp, outcome: &str) -> u64 {
    app.counter(&format!("picture_fetches_total{{outcome=\"{outcome}\"}}"))
        .await
}

async fn wait_for_fetches(app: &TestApp, outcome: &str, at_least: u64) {
    eventually(
        DEADLINE,
        &format!("{at_least} {outcome} fetches"),
        || async { (fetches(app, outcome).await >= at_least).then_some(()) },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn two_replicas_fetch_at_most_once_per_max_age_and_serve_the_same_bytes() {
    // Arrange
    let setup = Setup::start(Answer::Image).await;
    let source = &setup.source;
    let max_age = Duration::from_millis(700);

    // Act: both replicas look at the schedule from the start.
    let (first, second) = tokio::join!(setup.replica(max_age), setup.replica(max_age));
    eventually(DEADLINE, "four fetches", || async {
        (source.requests().len() >= 4).then_some(())
    })
    .await
    .unwrap();

    // Assert: never two fetches within one maximum age, whichever replica
    // made them. Claims are a maximum age apart; the requests' arrival adds
    // each fetch's own latency, which a loaded machine can stretch, so the
    // bound is half of it. Two replicas both fetching after one due time
    // arrive milliseconds apart.
    let requests = source.requests();
    for pair in requests.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= max_age / 2,
            "two fetches {gap:?} apart, within {max_age:?}: {requests:?}"
        );
    }
    let both = eventually(
        DEADLINE,
        "both replicas to serve the same picture",
        || async {
            let (a, b) = (served(&first).await?, served(&second).await?);
            (a == b).then_some(a)
        },
    )
    .await
    .unwrap();
    assert!(both.1.starts_with(b"\x89PNG"), "{both:?}");
    // Each fetch was counted by the replica that made it (one may still
    // be on its way to the store as we read).
    let counted = fetches(&first, "ok").await + fetches(&second, "ok").await;
    let seen = source.requests().len() as u64;
    assert!(
        counted == seen || counted + 1 == seen,
        "{counted} of {seen}"
    );
}

#[tokio::test]
async fn a_restarted_replica_serves_the_stored_picture_without_fetching_again() {
    // Arrange: a picture fetched and stored, good for an hour.
    let setup = Setup::start(Answer::Image).await;
    let hour = Duration::from_secs(3600);
    let mut before = setup.replica(hour).await;
    let etag = wait_until_serving(&before, &png(1)).await;
    before.stop().await;

    // Act
    let after = setup.replica(hour).await;

    // Assert: the same bytes, the same tag, and still one fetch.
    assert_eq!(wait_until_serving(&after, &png(1)).await, etag);
    assert_eq!(setup.source.requests().len(), 1);
    assert_eq!(fetches(&after, "ok").await, 0);
    let cached = after
        .client
        .get(after.url("/picture"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        cached.headers()[header::CACHE_CONTROL],
        "public, max-age=300"
    );
}

#[tokio::test]
async fn when_the_source_fails_or_hangs_the_last_picture_stays() {
    // Arrange
    let setup = Setup::start(Answer::Image).await;
    let source = &setup.source;
    let app = setup.replica(Duration::from_millis(300)).await;
    let first = served_after_first_fetch(&app).await;

    // Act / Assert: an error status, then no answer within the timeout.
    source.answer(Answer::Fail);
    let failed = fetches(&app, "failed").await;
    wait_for_fetches(&app, "failed", failed + 1).await;
    assert_eq!(served(&app).await, Some(first.clone()));

    source.answer(Answer::Hang);
    let page = Instant::now();
    let failed = fetches(&app, "failed").await;
    wait_for_fetches(&app, "failed", failed + 2).await;
    assert_eq!(served(&app).await, Some(first));
    assert!(
        app.get("/").await.status().is_success(),
        "the page is served while the source hangs"
    );
    assert!(page.elapsed() < DEADLINE);
}

#[tokio::test]
async fn an_oversized_or_non_image_answer_is_refused_and_the_last_picture_stays() {
    // Arrange
    let setup = Setup::start(Answer::Image).await;
    let source = &setup.source;
    let app = setup.replica(Duration::from_millis(300)).await;
    let first = served_after_first_fetch(&app).await;

    // Act / Assert
    for answer in [Answer::Oversize, Answer::Html] {
        source.answer(answer);
        let refused = fetches(&app, "refused").await;
        wait_for_fetches(&app, "refused", refused + 2).await;
        assert_eq!(served(&app).await, Some(first.clone()), "{answer:?}");
    }

    // And a good answer is taken again.
    source.answer(Answer::Image);
    let ok = fetches(&app, "ok").await;
    wait_for_fetches(&app, "ok", ok + 1).await;
    eventually(DEADLINE, "a new picture", || async {
        served(&app).await.filter(|now| *now != first)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn without_a_stored_picture_the_route_is_404_and_the_page_keeps_its_box() {
    // Arrange: a source that never gave a picture.
    let setup = Setup::start(Answer::Html).await;
    let app = setup.replica(Duration::from_secs(3600)).await;
    wait_for_fetches(&app, "refused", 1).await;

    // Act
    let picture = app.get("/picture").await;
    let page = app.get("/").await.text().await.unwrap();

    // Assert
    assert_eq!(picture.status(), StatusCode::NOT_FOUND);
    assert!(
        page.contains(
            r#"<img src="/picture" width="1200" height="600" decoding="async" alt="A random photograph, changed every hour">"#
        ),
        "{page}"
    );
}

#[tokio::test]
async fn without_a_source_the_page_has_no_picture() {
    let app = crate::helpers::spawn_app().await;

    let page = app.get("/").await.text().await.unwrap();

    assert!(!page.contains("/picture"), "{page}");
    assert_eq!(app.get("/picture").await.status(), StatusCode::NOT_FOUND);
}

/// The first picture, once the app serves it.
async fn served_after_first_fetch(app: &TestApp) -> (String, Bytes) {
    eventually(DEADLINE, "the first picture", || async {
        served(app).await
    })
    .await
    .unwrap()
}
