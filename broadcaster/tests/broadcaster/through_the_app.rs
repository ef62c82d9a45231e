//! End to end through the real `todo-app`: what a person does in the app
//! reaches the webhook as messages, in order. The app is spawned as its
//! built binary (`cargo xtask test` builds every binary before the tests;
//! alone, run `cargo build -p app` first).

use std::time::Duration;

use test_support::{Service, free_port, test_database, workspace_binary};

use crate::helpers::{Broadcaster, PrivateNats, Receiver, get};

#[tokio::test]
async fn create_mark_done_and_delete_in_the_app_reach_the_webhook_in_that_order() {
    let nats = PrivateNats::start().await;
    let database = test_database().await.expect("a test database");
    let port = free_port();
    let _app = Service::spawn(
        &workspace_binary("todo-app"),
        &[],
        &[
            ("DATABASE_URL", database.url.clone()),
            ("NATS_URL", nats.url()),
            ("PORT", port.to_string()),
            ("API_TOKEN", "t".to_owned()),
        ],
        &format!("http://127.0.0.1:{port}/readyz"),
    )
    .await
    .expect("todo-app starts");
    let receiver = Receiver::accepting().await;
    let _broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;
    let app = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The browser's plain forms: add, mark done, delete.
    let added = client
        .post(format!("{app}/todos"))
        .form(&[("text", "Feed the <cat>")])
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 303);
    let page: serde_json::Value = get(&format!("{app}/api/todos")).await.json().await.unwrap();
    let id = page["todos"][0]["id"].as_str().unwrap().to_owned();
    for form in [
        [("_method", "put"), ("done", "true")].as_slice(),
        &[("_method", "delete")],
    ] {
        let response = client
            .post(format!("{app}/todos/{id}"))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
    }

    let seen = receiver.wait_for(3, Duration::from_secs(20)).await.unwrap();
    let messages: Vec<String> = seen
        .iter()
        .map(|s| {
            assert!(s.verified, "every message is signed");
            let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
            assert_eq!(body["event"]["todo"]["id"], id.as_str());
            body["message"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        messages,
        [
            "Todo created: Feed the <cat>",
            "Todo marked done: Feed the <cat>",
            "Todo deleted: Feed the <cat>",
        ]
    );
}
