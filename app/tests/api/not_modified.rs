//! Conditional `GET /api/todos` answered `304` from the tags a replica
//! knows current (`app::api_tags`): no database read while nothing changed,
//! a change through the same replica seen at once, one through another
//! replica once its notification arrives.
//!
//! Replicas keep tags up to 60 s here (the longest allowed), so a fresh
//! answer can only come from a change being heard of, never from a tag
//! growing old within a test.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};
use test_support::{eventually, test_database, test_nats};
use tower::ServiceExt;

use app::db::MIGRATOR;
use app::routes;
use app::state::AppState;

use crate::helpers::{API_TOKEN, DEADLINE, TestApp, spawn_app_with};

const MAX_AGE: Duration = Duration::from_secs(60);

async fn replica(database_url: &str, nats_url: &str) -> TestApp {
    let app = spawn_app_with(database_url, nats_url, Some(API_TOKEN), |config| {
        config.page_cache_max_age = MAX_AGE;
    })
    .await;
    app.wait_until_ready().await;
    app
}

/// `GET /api/todos{query}`, sending `If-None-Match` when given a tag.
async fn list(app: &TestApp, query: &str, if_none_match: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(&format!("/api/todos{query}")));
    if let Some(tag) = if_none_match {
        request = request.header(IF_NONE_MATCH, tag);
    }
    request.send().await.unwrap()
}

fn etag(response: &reqwest::Response) -> String {
    response.headers()[ETAG].to_str().unwrap().to_owned()
}

/// `api_not_modified_total` answered from `source`, from `/metrics`.
async fn not_modified(app: &TestApp, source: &str) -> u64 {
    app.counter(&format!(
        "api_not_modified_total{{answered_from=\"{source}\"}}"
    ))
    .await
}

/// The tag of `query`'s page once the replica answers it from memory. The
/// listener's start and each create's notification make earlier reads'
/// tags old, whenever they land, so it asks until one holds.
async fn tag_known_in_memory(app: &TestApp, query: &str) -> String {
    eventually(DEADLINE, "a 304 answered from memory", || async {
        let tag = etag(&list(app, query, None).await);
        let before = not_modified(app, "memory").await;
        let response = list(app, query, Some(&tag)).await;
        let from_memory = not_modified(app, "memory").await == before + 1;
        (response.status() == 304 && from_memory).then_some(tag)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_unchanged_page_is_304_while_another_connection_locks_the_table() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let app = replica(&database.url, &nats.url).await;
    app.create_todo("listed").await;
    let tag = tag_known_in_memory(&app, "?limit=5").await;
    let (memory, read) = (
        not_modified(&app, "memory").await,
        not_modified(&app, "database").await,
    );

    // Any read of the todos now waits for this transaction.
    let mut locker = PgConnection::connect(&database.url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("lock table todos in access exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();
    let blocked_read = tokio::spawn(app.client.get(app.url("/api/todos?limit=6")).send());
    eventually(
        DEADLINE,
        "a read of the page to wait for the lock",
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_locks where not granted and relation = 'todos'::regclass",
            )
            .fetch_one(&app.db)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        },
    )
    .await
    .unwrap();

    let answer = tokio::time::timeout(DEADLINE, list(&app, "?limit=5", Some(&tag)))
        .await
        .expect("answered while the table is locked");

    assert_eq!(answer.status(), 304);
    assert_eq!(etag(&answer), tag);
    assert_eq!(answer.headers()[CACHE_CONTROL], "no-cache");
    assert!(
        answer.bytes().await.unwrap().is_empty(),
        "a 304 has no body"
    );
    assert_eq!(not_modified(&app, "memory").await, memory + 1);
    assert_eq!(not_modified(&app, "database").await, read);
    assert!(!blocked_read.is_finished(), "the lock held all along");
    lock.rollback().await.unwrap();
    let unlocked = blocked_read.await.unwrap().unwrap();
    assert_eq!(unlocked.status(), 200);
}

/// The app in process with no outbox listener: nothing but the writer can
/// tell it of a change.
async fn deaf_router() -> (Router, AppState, test_support::TestDatabase) {
    let database = test_database().await.unwrap();
    let pool = PgPool::connect(&database.url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let state =
        AppState::new(pool, Some(SecretString::from(API_TOKEN))).with_page_cache_max_age(MAX_AGE);
    (routes::router(state.clone()), state, database)
}

/// Sends `method uri` with a bearer token, `headers` and a JSON `body`;
/// returns the status, the `ETag` if any, and the body.
async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {API_TOKEN}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get(header::ETAG)
        .map(|tag| tag.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, etag, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn each_change_through_this_replica_shows_at_once_without_its_notification() {
    let (router, state, _database) = deaf_router().await;
    let list = async |tag: &str| {
        send(
            &router,
            Method::GET,
            "/api/todos",
            &[("if-none-match", tag)],
            None,
        )
        .await
    };
    let create = async |text: &str, key: Option<&str>| {
        let headers: Vec<(&str, &str)> = key
            .map(|key| ("idempotency-key", key))
            .into_iter()
            .collect();
        let (status, _, body) = send(
            &router,
            Method::POST,
            "/api/todos",
            &headers,
            Some(serde_json::json!({ "text": text })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = create("first", None).await;
    let (_, tag, _) = list("\"none yet\"").await;
    let mut tag = tag.unwrap();
    let memory = || state.metrics.api_not_modified_from_memory.get();

    // Each change: the tag is answered from memory before it, and the
    // changed page right after it.
    let changes: [(&str, Method, String, Option<serde_json::Value>); 3] = [
        (
            "made here",
            Method::POST,
            "/api/todos".into(),
            Some(serde_json::json!({ "text": "made here" })),
        ),
        (
            "first",
            Method::PUT,
            format!("/api/todos/{first}"),
            Some(serde_json::json!({ "done": true })),
        ),
        ("first", Method::DELETE, format!("/api/todos/{first}"), None),
    ];
    for (round, (text, method, uri, body)) in changes.into_iter().enumerate() {
        let before = memory();
        let (status, _, _) = list(&tag).await;
        assert_eq!(
            (status, memory()),
            (StatusCode::NOT_MODIFIED, before + 1),
            "round {round}"
        );
        let (status, _, answer) = send(&router, method, &uri, &[], body).await;
        assert!(status.is_success(), "round {round}: {status} {answer}");

        let (status, new_tag, page) = list(&tag).await;

        assert_eq!(status, StatusCode::OK, "round {round}");
        assert_eq!(memory(), before + 1, "round {round}");
        match round {
            0 => assert!(page.contains(text), "{page}"),
            1 => assert!(page.contains(r#""done":true"#), "{page}"),
            _ => assert!(!page.contains(text), "{page}"),
        }
        tag = new_tag.unwrap();
    }

    // A keyed create is written outside the writer's batches, and tells
    // the replica too.
    assert_eq!(list(&tag).await.0, StatusCode::NOT_MODIFIED);
    create("keyed", Some("a-key")).await;
    let (status, _, page) = list(&tag).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("keyed"), "{page}");
}

#[tokio::test]
async fn a_change_through_another_replica_shows_once_this_one_hears_of_it() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let here = replica(&database.url, &nats.url).await;
    let elsewhere = replica(&database.url, &nats.url).await;
    here.create_todo("listed").await;
    let tag = tag_known_in_memory(&here, "?limit=5").await;

    elsewhere.create_todo("made elsewhere").await;

    // Well within the 60 s the tag could otherwise be kept.
    let page = eventually(DEADLINE, "the change to reach this replica", || async {
        let response = list(&here, "?limit=5", Some(&tag)).await;
        (response.status() == 200).then_some(())?;
        Some(response.text().await.unwrap())
    })
    .await
    .unwrap();
    assert!(page.contains("made elsewhere"), "{page}");
}

#[tokio::test]
async fn only_the_same_page_with_its_current_tag_is_304() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let app = replica(&database.url, &nats.url).await;
    for n in 0..7 {
        app.create_todo(&format!("todo {n}")).await;
    }
    let tag = tag_known_in_memory(&app, "?limit=5").await;
    let first_page: serde_json::Value = list(&app, "?limit=5", None).await.json().await.unwrap();
    let next = first_page["next_cursor"].as_str().unwrap();
    let memory = not_modified(&app, "memory").await;

    let second_page = format!("?limit=5&cursor={next}");
    for (query, if_none_match, status) in [
        ("?limit=5", "\"another tag\"", 200),
        ("?limit=5", "W/\"another tag\"", 200),
        ("?limit=6", tag.as_str(), 200),
        (second_page.as_str(), tag.as_str(), 200),
        ("?limit=0", tag.as_str(), 400),
        ("?limit=5&cursor=not-a-cursor", tag.as_str(), 400),
    ] {
        let response = list(&app, query, Some(if_none_match)).await;
        assert_eq!(response.status(), status, "{query} with {if_none_match}");
    }
    assert_eq!(not_modified(&app, "memory").await, memory);
    assert_eq!(list(&app, "?limit=5", Some(&tag)).await.status(), 304);
}

#[tokio::test]
async fn an_api_page_the_client_holds_is_304_on_either_replica_until_a_todo_changes() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let a = replica(&database.url, &nats.url).await;
    let b = replica(&database.url, &nats.url).await;
    a.create_todo("listed").await;
    let first = list(&a, "?limit=5", None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()[CACHE_CONTROL], "no-cache");
    let tag = etag(&first);
    assert!(first.text().await.unwrap().contains("listed"));

    // The tag is a digest of the bytes, so the other replica honours it too.
    for app in [&a, &b] {
        let not_modified = list(app, "?limit=5", Some(&tag)).await;
        assert_eq!(not_modified.status(), 304);
        assert_eq!(etag(&not_modified), tag);
        assert!(
            not_modified.bytes().await.unwrap().is_empty(),
            "a 304 has no body"
        );
    }

    // A change makes the tag old at once on the replica that made it, and
    // on the other once it hears of it.
    a.create_todo("added since").await;
    let changed = list(&a, "?limit=5", Some(&tag)).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(etag(&changed), tag);
    assert!(changed.text().await.unwrap().contains("added since"));
    let changed = eventually(DEADLINE, "the other replica to hear of it", || async {
        let response = list(&b, "?limit=5", Some(&tag)).await;
        (response.status() == 200).then_some(response)
    })
    .await
    .unwrap();
    assert_ne!(etag(&changed), tag);
    assert!(changed.text().await.unwrap().contains("added since"));
}
