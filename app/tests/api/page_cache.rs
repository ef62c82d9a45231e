//! The page cache across two replicas sharing one database: a writer sees
//! its change on every replica at once, other readers as soon as the
//! replica hears of it, and nothing changed means no database round trip.
//!
//! Both replicas keep a page up to 60 s here (the longest allowed), so a
//! fresh page can only come from the cookie or the change notification,
//! never from the page growing old within a test.

use std::time::Duration;

use app::write_marker::{CookieKey, WriteMarker};
use reqwest::header::{COOKIE, SET_COOKIE};
use test_support::{eventually, test_database, test_nats};

use crate::helpers::{API_TOKEN, DEADLINE, TestApp, spawn_app_with};

const MAX_AGE: Duration = Duration::from_secs(60);

/// The `COOKIE_KEY` both replicas share, as a deployment's Secret gives it.
const COOKIE_KEY: &str = "a-cookie-key-of-at-least-32-bytes-for-tests";

async fn replica(database_url: &str, nats_url: &str) -> TestApp {
    let app = spawn_app_with(database_url, nats_url, Some(API_TOKEN), |config| {
        config.page_cache_max_age = MAX_AGE;
        config.cookie_key = Some(CookieKey::parse(COOKIE_KEY).unwrap());
    })
    .await;
    app.wait_until_ready().await;
    app
}

/// `page_cache_lookups_total` for one result, from the replica's `/metrics`.
async fn lookups(app: &TestApp, result: &str) -> u64 {
    app.counter(&format!("page_cache_lookups_total{{result=\"{result}\"}}"))
        .await
}

async fn page(app: &TestApp, cookie: Option<&str>) -> String {
    let mut request = app.client.get(app.url("/"));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn an_unchanged_page_is_served_from_memory() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let app = replica(&database.url, &nats.url).await;
    app.create_todo("already there").await;

    // Only two things invalidate the page here, each once: the listener's
    // start and the create's notification, whenever they land. So of three
    // rounds of 20 loads, at least one sees neither: all hits, no reads.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (hits, misses) = (lookups(&app, "hit").await, lookups(&app, "miss").await);
        for _ in 0..20 {
            assert!(page(&app, None).await.contains("already there"));
        }
        rounds.push((
            lookups(&app, "hit").await - hits,
            lookups(&app, "miss").await - misses,
        ));
    }

    assert!(
        rounds.contains(&(20, 0)),
        "(hits, misses) per round of 20 loads: {rounds:?}"
    );
}

#[tokio::test]
async fn a_writer_sees_each_change_at_once_on_either_replica() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let replicas = [
        replica(&database.url, &nats.url).await,
        replica(&database.url, &nats.url).await,
    ];

    for round in 0..50 {
        // Warm both caches, as other readers would.
        for app in &replicas {
            page(app, None).await;
            page(app, None).await;
        }
        let (writer, reader) = (&replicas[round % 2], &replicas[(round + 1) % 2]);
        let text = format!("change number {round}");
        let posted = writer.post_form("/todos", &[("text", &text)]).await;
        assert_eq!(posted.status(), 303);
        let cookie = posted
            .headers()
            .get(SET_COOKIE)
            .expect("a change sets the writer's cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let bypasses = lookups(reader, "bypass").await;

        let html = page(reader, Some(&cookie)).await;

        assert!(html.contains(&text), "round {round}: {html}");
        assert_eq!(
            lookups(reader, "bypass").await,
            bypasses + 1,
            "the writer's page load read the database"
        );
    }
}

#[tokio::test]
async fn a_made_up_or_foreign_write_marker_is_served_the_cached_page() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let app = replica(&database.url, &nats.url).await;
    let other_key = WriteMarker::new(CookieKey::parse(&"another key ".repeat(4)).unwrap());
    let foreign = other_key.cookie(std::time::SystemTime::now());
    let foreign = foreign
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let bypasses = lookups(&app, "bypass").await;
    for cookie in [
        "docket_wrote=1",
        "docket_wrote=4102444800.AAAA",
        foreign.as_str(),
    ] {
        for _ in 0..10 {
            page(&app, Some(cookie)).await;
        }
    }
    assert_eq!(
        lookups(&app, "bypass").await,
        bypasses,
        "none of 30 loads with a forged marker went past the cache"
    );
    // A genuine marker does.
    let posted = app.post_form("/todos", &[("text", "a real write")]).await;
    let genuine = posted.headers()[SET_COOKIE].to_str().unwrap();
    page(&app, Some(genuine.split(';').next().unwrap())).await;
    assert_eq!(lookups(&app, "bypass").await, bypasses + 1);
}

#[tokio::test]
async fn a_change_through_another_replica_reaches_a_cached_page() {
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let cached = replica(&database.url, &nats.url).await;
    let other = replica(&database.url, &nats.url).await;
    // The page is cached once a load is a hit (the listener's start may
    // invalidate the first one, and only once).
    let mut cached_page = false;
    for _ in 0..3 {
        let hits = lookups(&cached, "hit").await;
        page(&cached, None).await;
        if lookups(&cached, "hit").await > hits {
            cached_page = true;
            break;
        }
    }
    assert!(cached_page, "the page is cached");

    other.create_todo("made elsewhere").await;

    // Well within the 60 s the page could otherwise be kept.
    eventually(DEADLINE, "the cached page to show the change", || async {
        page(&cached, None)
            .await
            .contains("made elsewhere")
            .then_some(())
    })
    .await
    .unwrap();
}
