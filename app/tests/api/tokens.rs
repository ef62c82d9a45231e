//! Named API tokens from `API_TOKENS_FILE`: read or write access, and
//! rotation without a restart.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::eventually;

use crate::helpers::{DEADLINE, TestApp, TokensFile, spawn_app_with_tokens};

const FIRST: &str = "first-0123456789abcdef0123456789abcdef";
const SECOND: &str = "second-0123456789abcdef0123456789abcdef";
const READER: &str = "reader-0123456789abcdef0123456789abcdef";

async fn create_with(app: &TestApp, token: &str, text: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/todos"))
        .bearer_auth(token)
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_added_to_the_file_is_accepted_and_a_removed_one_refused_without_a_restart() {
    let file = TokensFile::new(&format!("# rotation, step 1\ndeploy write {FIRST}\n"));
    let app = spawn_app_with_tokens(&file).await;
    assert_eq!(create_with(&app, FIRST, "first").await.status(), 201);
    assert_eq!(create_with(&app, SECOND, "refused").await.status(), 401);

    // The new token goes in next to the old, then the old one goes.
    file.replace(&format!(
        "deploy write {FIRST}\ndeploy-next write {SECOND}\n"
    ));
    eventually(DEADLINE, "the added token to be accepted", || async {
        (create_with(&app, SECOND, "second").await.status() == 201).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(create_with(&app, FIRST, "still").await.status(), 201);

    file.replace(&format!("deploy-next write {SECOND}\n"));
    eventually(DEADLINE, "the removed token to be refused", || async {
        let status = create_with(&app, FIRST, "after removal").await.status();
        (status == 401).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(create_with(&app, SECOND, "third").await.status(), 201);

    // A broken file changes nothing: the last good set stays.
    file.replace(&format!("deploy-next write {SECOND}\nbroken\n"));
    tokio::time::sleep(app::api_tokens::RELOAD_EVERY * 2).await;
    assert_eq!(create_with(&app, SECOND, "fourth").await.status(), 201);
    assert_eq!(
        create_with(&app, FIRST, "refused again").await.status(),
        401
    );
}

#[tokio::test]
async fn a_read_only_token_on_a_write_route_is_403_and_changes_nothing() {
    let file = TokensFile::new(&format!("deploy write {FIRST}\nreport read {READER}\n"));
    let app = spawn_app_with_tokens(&file).await;
    let id = app
        .client
        .post(app.url("/api/todos"))
        .bearer_auth(FIRST)
        .json(&json!({ "text": "Keep" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let create = create_with(&app, READER, "Not allowed").await;
    let update = app
        .client
        .put(app.url(&format!("/api/todos/{id}")))
        .bearer_auth(READER)
        .json(&json!({ "done": true }))
        .send()
        .await
        .unwrap();
    let delete = app
        .client
        .request(Method::DELETE, app.url(&format!("/api/todos/{id}")))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();

    for response in [create, update, delete] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"],
            "This token may only read; writes need a token with `write` access."
        );
    }
    assert_eq!(app.todo_count().await, 1);
    let done: bool = sqlx::query_scalar("select done from todos")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!done);
}
