//! Writes over `WRITE_RATE_LIMIT` are refused with 429 and `Retry-After`,
//! per client, before anything is stored; reads are never limited.

use std::net::{IpAddr, Ipv4Addr};

use app::client::ClientIp;
use app::rate_limit::RateLimit;
use axum::http::HeaderName;
use reqwest::Method;

use crate::helpers::{API_TOKEN, spawn_app_adjusted};

fn limit(raw: &str) -> Option<RateLimit> {
    Some(raw.parse().expect("a valid limit"))
}

#[tokio::test]
async fn writes_over_the_limit_get_429_with_retry_after_and_store_nothing() {
    let app = spawn_app_adjusted(|config| config.write_limit = limit("3/minute")).await;
    for n in 0..3 {
        app.create_todo(&format!("Allowed {n}")).await;
    }

    let api = app
        .api(Method::POST, "/api/todos")
        .json(&serde_json::json!({ "text": "One too many" }))
        .send()
        .await
        .unwrap();
    let page = app.post_form("/todos", &[("text", "One too many")]).await;
    let htmx = app
        .htmx(Method::POST, "/todos", &[("text", "One too many")])
        .await;

    assert_eq!(api.status(), 429);
    // One write in 20 s comes free again; the client is told to wait that long.
    assert_eq!(api.headers()["retry-after"], "20");
    let body: serde_json::Value = api.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Too many changes"),
        "{body}"
    );
    assert_eq!(page.status(), 429);
    assert_eq!(page.headers()["retry-after"], "20");
    let html = page.text().await.unwrap();
    assert!(html.contains("Too many changes from you"), "{html}");
    assert_eq!(htmx.status(), 429);
    assert_eq!(app.todo_count().await, 3);
    // Reads go on.
    assert_eq!(app.get("/").await.status(), 200);
    assert_eq!(
        app.api(Method::GET, "/api/todos")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn each_client_address_has_its_own_allowance() {
    let app = spawn_app_adjusted(|config| config.write_limit = limit("1/hour")).await;
    app.create_todo("From 127.0.0.1").await;
    let second = app
        .api(Method::POST, "/api/todos")
        .json(&serde_json::json!({ "text": "Again from 127.0.0.1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);

    // The whole of 127/8 is loopback: a second client address on this host.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let from_other = other
        .post(app.url("/api/todos"))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({ "text": "From 127.0.0.2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(from_other.status(), 201);
}

#[tokio::test]
async fn behind_a_proxy_the_configured_header_names_the_client() {
    let app = spawn_app_adjusted(|config| {
        config.write_limit = limit("1/hour");
        config.client_ip = ClientIp::Header(HeaderName::from_static("x-forwarded-for"));
    })
    .await;
    let post = |forwarded: &'static str| {
        app.api(Method::POST, "/api/todos")
            .header("x-forwarded-for", forwarded)
            .json(&serde_json::json!({ "text": forwarded }))
            .send()
    };

    // The proxy appends the address it saw; what the client wrote before it
    // (here a spoofed address) does not count.
    assert_eq!(
        post("203.0.113.9, 198.51.100.1").await.unwrap().status(),
        201
    );
    assert_eq!(
        post("203.0.113.10, 198.51.100.1").await.unwrap().status(),
        429
    );
    assert_eq!(post("198.51.100.2").await.unwrap().status(), 201);

    // An IPv6 client is its /64: another address in it shares the
    // allowance, the next /64 has its own.
    assert_eq!(post("2001:db8:0:1::1").await.unwrap().status(), 201);
    assert_eq!(post("2001:db8:0:1:8000::2").await.unwrap().status(), 429);
    assert_eq!(post("2001:db8:0:2::1").await.unwrap().status(), 201);
}
