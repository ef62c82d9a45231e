//! `Idempotency-Key` on `POST /api/todos`: a retry gets the first answer
//! and creates nothing; keys are per token, checked, and expire.

use futures::future::join_all;
use reqwest::header::HeaderValue;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TokensFile, spawn_app, spawn_app_with_tokens};

async fn create_keyed(app: &TestApp, key: &str, body: &Value) -> Response {
    app.api(Method::POST, "/api/todos")
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn key_rows(app: &TestApp, key: &str) -> i64 {
    sqlx::query_scalar("select count(*) from idempotency_keys where key = $1")
        .bind(key)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_creates_nothing() {
    let app = spawn_app().await;
    let body = json!({ "text": "Pay the rent" });

    let first = create_keyed(&app, "rent-2026-12", &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first_body = first.text().await.unwrap();
    // The todo changes after the first answer; a retry still gets that answer.
    let id = serde_json::from_str::<Value>(&first_body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = app
        .api(Method::PUT, &format!("/api/todos/{id}"))
        .json(&json!({ "done": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 200);

    let retry = create_keyed(&app, "rent-2026-12", &body).await;

    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["content-type"], "application/json");
    assert_eq!(retry.text().await.unwrap(), first_body);
    assert_eq!(app.todo_count().await, 1);
    app.wait_for_outbox_drained().await;
    let events = app.events_about(&[id.parse().unwrap()]).await;
    let kinds: Vec<String> = events.iter().map(|e| e.subject().to_owned()).collect();
    assert_eq!(
        kinds,
        ["todos.created", "todos.updated"],
        "one create, one update"
    );
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_422_and_creates_nothing() {
    let app = spawn_app().await;
    let first = create_keyed(&app, "k-1", &json!({ "text": "Buy milk" })).await;
    assert_eq!(first.status(), 201);

    let other = create_keyed(&app, "k-1", &json!({ "text": "Buy oat milk" })).await;

    assert_eq!(other.status(), 422);
    let body: Value = other.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key was already used"),
        "{body}"
    );
    assert_eq!(app.todo_count().await, 1);
}

#[tokio::test]
async fn keys_are_1_to_255_visible_ascii_characters_else_400() {
    let app = spawn_app().await;
    let longest = "k".repeat(255);
    let too_long = "k".repeat(256);
    let bad: [HeaderValue; 5] = [
        HeaderValue::from_static(""),
        HeaderValue::from_str(&too_long).unwrap(),
        HeaderValue::from_static("two words"),
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        HeaderValue::from_bytes(b"tab\there").unwrap(),
    ];
    for key in bad {
        let response = app
            .api(Method::POST, "/api/todos")
            .header("idempotency-key", key.clone())
            .json(&json!({ "text": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{key:?}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("Idempotency-Key"),
            "{body}"
        );
    }
    let twice = app
        .api(Method::POST, "/api/todos")
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&json!({ "text": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert_eq!(app.todo_count().await, 0);

    let fits = create_keyed(&app, &longest, &json!({ "text": "x" })).await;
    assert_eq!(fits.status(), 201);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_todo() {
    let app = spawn_app().await;
    let body = json!({ "text": "Only once" });

    let answers = join_all((0..16).map(|_| async {
        let response = create_keyed(&app, "burst", &body).await;
        (response.status(), response.text().await.unwrap())
    }))
    .await;

    assert_eq!(app.todo_count().await, 1);
    let (status, first) = &answers[0];
    for (other_status, other) in &answers {
        assert_eq!((other_status, other), (status, first));
    }
    assert_eq!(*status, 201);
}

#[tokio::test]
async fn keys_are_per_token() {
    let first = "first-0123456789abcdef0123456789abcdef";
    let second = "second-0123456789abcdef0123456789abcdef";
    let file = TokensFile::new(&format!("one write {first}\ntwo write {second}\n"));
    let app = spawn_app_with_tokens(&file).await;

    let mut ids = Vec::new();
    for token in [first, second] {
        let response = app
            .client
            .post(app.url("/api/todos"))
            .bearer_auth(token)
            .header("idempotency-key", "shared")
            .json(&json!({ "text": "Same key, two clients" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert!(response.headers().get("idempotent-replayed").is_none());
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }

    assert_ne!(ids[0], ids[1]);
    assert_eq!(app.todo_count().await, 2);
}

#[tokio::test]
async fn an_expired_key_is_used_afresh_and_expired_keys_are_deleted() {
    let app = spawn_app().await;
    for key in ["reused", "forgotten"] {
        sqlx::query(
            "insert into idempotency_keys
                 (token_name, key, request_hash, todo_id, status, response, created_at)
             values ('default', $1, sha256('old'), gen_random_uuid(), 201, '{}',
                     now() - interval '24 hours 1 second')",
        )
        .bind(key)
        .execute(&app.db)
        .await
        .unwrap();
    }

    let response = create_keyed(&app, "reused", &json!({ "text": "A new day" })).await;

    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.todo_count().await, 1);
    assert_eq!(
        key_rows(&app, "reused").await,
        1,
        "the key now holds the new answer"
    );
    assert_eq!(key_rows(&app, "forgotten").await, 0, "deleted on the way");
    let retry = create_keyed(&app, "reused", &json!({ "text": "A new day" })).await;
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(app.todo_count().await, 1);
}
