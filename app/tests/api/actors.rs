//! Every change says who made it: the todo's `created_by`/`updated_by`
//! and its event's `actor`, written with the change.

use events::{Actor, EventType};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TokensFile, spawn_app, spawn_app_with_tokens};

const CI: &str = "ci-bot-0123456789abcdef0123456789abcdef";
const OPS: &str = "ops-bot-0123456789abcdef0123456789abcdef";

fn tokens() -> TokensFile {
    TokensFile::new(&format!("ci-bot write {CI}\nops-bot write {OPS}\n"))
}

/// `created_by` and `updated_by` of the todo, as stored.
async fn recorded(app: &TestApp, id: Uuid) -> (Value, Value) {
    sqlx::query_as("select created_by, updated_by from todos where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn token(name: &str) -> Actor {
    Actor::Token { name: name.into() }
}

#[tokio::test]
async fn api_writes_record_their_token_in_the_row_and_in_each_event() {
    let file = tokens();
    let app = spawn_app_with_tokens(&file).await;

    // Created by one token...
    let created: Value = app
        .client
        .post(app.url("/api/todos"))
        .bearer_auth(CI)
        .json(&json!({ "text": "Buy milk" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let ci = json!({"kind": "token", "name": "ci-bot"});
    assert_eq!(recorded(&app, id).await, (ci.clone(), ci.clone()));
    assert_eq!((&created["created_by"], &created["updated_by"]), (&ci, &ci));

    // ...completed by another, which is now the last to change it...
    let path = format!("/api/todos/{id}");
    let toggled = app
        .client
        .put(app.url(&path))
        .bearer_auth(OPS)
        .json(&json!({ "done": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(toggled.status(), 200);
    let toggled: Value = toggled.json().await.unwrap();
    let ops = json!({"kind": "token", "name": "ops-bot"});
    assert_eq!(recorded(&app, id).await, (ci.clone(), ops.clone()));
    assert_eq!(
        (&toggled["created_by"], &toggled["updated_by"]),
        (&ci, &ops)
    );
    let read: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!((&read["created_by"], &read["updated_by"]), (&ci, &ops));

    // ...and deleted by it.
    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    app.wait_for_outbox_drained().await;
    let events: Vec<_> = app
        .events_about(&[id])
        .await
        .into_iter()
        .map(|event| (event.event_type, event.actor))
        .collect();
    assert_eq!(
        events,
        [
            (EventType::Created, Some(token("ci-bot"))),
            (EventType::Updated, Some(token("ops-bot"))),
            (EventType::Deleted, Some(token("ops-bot"))),
        ]
    );
}

#[tokio::test]
async fn a_create_with_an_idempotency_key_records_its_token_too() {
    let file = tokens();
    let app = spawn_app_with_tokens(&file).await;

    let created: Value = app
        .client
        .post(app.url("/api/todos"))
        .bearer_auth(OPS)
        .header("Idempotency-Key", "order-42")
        .json(&json!({ "text": "Ship order 42" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();

    let ops = json!({"kind": "token", "name": "ops-bot"});
    assert_eq!(created["created_by"], ops);
    assert_eq!(recorded(&app, id).await, (ops.clone(), ops));
    app.wait_for_outbox_drained().await;
    let events = app.events_about(&[id]).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor, Some(token("ops-bot")));
}

#[tokio::test]
async fn page_writes_are_anonymous_while_nobody_signs_in() {
    let app = spawn_app().await;
    app.post_form("/todos", &[("text", "From the page")]).await;
    let id: Uuid = sqlx::query_scalar("select id from todos")
        .fetch_one(&app.db)
        .await
        .unwrap();

    app.htmx(Method::PUT, &format!("/todos/{id}"), &[("done", "true")])
        .await;

    let anonymous = json!({"kind": "anonymous"});
    assert_eq!(recorded(&app, id).await, (anonymous.clone(), anonymous));
    app.wait_for_outbox_drained().await;
    let actors: Vec<_> = app
        .events_about(&[id])
        .await
        .into_iter()
        .map(|event| event.actor)
        .collect();
    assert_eq!(actors, [Some(Actor::Anonymous), Some(Actor::Anonymous)]);
}
