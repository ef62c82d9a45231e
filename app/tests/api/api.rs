//! The JSON API: token rules, validation, pagination.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_on};

#[tokio::test]
async fn writes_without_a_token_are_refused_and_reads_are_open() {
    let app = spawn_app().await;

    let no_token = app
        .client
        .post(app.url("/api/todos"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    let wrong_token = app
        .client
        .post(app.url("/api/todos"))
        .bearer_auth("wrong")
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    let read = app.client.get(app.url("/api/todos")).send().await.unwrap();

    assert_eq!(no_token.status(), 401);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let body: Value = no_token.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    assert_eq!(wrong_token.status(), 401);
    assert_eq!(read.status(), 200);
    assert_eq!(app.todo_count().await, 0);
}

#[tokio::test]
async fn writes_answer_503_when_no_token_is_configured() {
    let database = test_support::test_database().await.unwrap();
    let nats = test_support::test_nats().unwrap();
    let app = spawn_app_on(&database.url, &nats.url, None).await;
    app.wait_until_ready().await;

    let response = app
        .api(Method::POST, "/api/todos")
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("API_TOKEN"),
        "{body}"
    );
}

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let app = spawn_app().await;

    let created = app
        .api(Method::POST, "/api/todos")
        .json(&json!({"text": " Read a book "}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let todo: Value = created.json().await.unwrap();
    assert_eq!(todo["text"], "Read a book");
    assert_eq!(todo["done"], false);
    assert_eq!(
        location,
        format!("/api/todos/{}", todo["id"].as_str().unwrap())
    );

    let fetched: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, todo);

    let updated = app
        .api(Method::PUT, &location)
        .json(&json!({"done": true, "text": "Read two books"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["done"], true);
    assert_eq!(updated["text"], "Read two books");

    let deleted = app.api(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(&location).await.status(), 404);
    let again = app.api(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn bad_bodies_get_clear_json_errors() {
    let app = spawn_app().await;
    let post = |body: &'static str| {
        app.api(Method::POST, "/api/todos")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let too_long = app
        .api(Method::POST, "/api/todos")
        .json(&json!({"text": "é".repeat(141)}))
        .send()
        .await
        .unwrap();
    let malformed = post("{not json").await.unwrap();
    let wrong_type = post(r#"{"text": 5}"#).await.unwrap();
    let unknown_field = post(r#"{"text": "a", "admin": true}"#).await.unwrap();
    let nothing_to_change = app
        .api(
            Method::PUT,
            &format!("/api/todos/{}", app.create_todo("a").await),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    for (response, status) in [
        (too_long, 422),
        (malformed, 400),
        (wrong_type, 422),
        (unknown_field, 422),
        (nothing_to_change, 422),
    ] {
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(app.todo_count().await, 1);
}

#[tokio::test]
async fn pagination_walks_every_todo_exactly_once_newest_first() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for n in 0..23 {
        created.push(app.create_todo(&format!("todo {n}")).await);
    }

    let mut seen: Vec<uuid::Uuid> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/todos?limit=5&cursor={c}"),
            None => "/api/todos?limit=5".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        let todos = page["todos"].as_array().unwrap();
        assert!(todos.len() <= 5);
        seen.extend(
            todos
                .iter()
                .map(|t| t["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    created.reverse();
    assert_eq!(seen, created);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23);
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let app = spawn_app().await;

    for path in [
        "/api/todos?limit=0",
        "/api/todos?limit=1000",
        "/api/todos?limit=abc",
        "/api/todos?cursor=xyz",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}
