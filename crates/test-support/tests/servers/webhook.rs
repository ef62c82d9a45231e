//! The webhook receiver: scripted answers, per-path overrides, signature
//! checks, and requests seen in flight and cut off.

use std::time::Duration;

use test_support::eventually;
use test_support::webhook::{Receiver, Reply, SECRET};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(10);

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Posts `body` as message `id`, signed with [`SECRET`] when `signed`.
async fn post(url: &str, id: &str, body: &str, signed: bool) -> reqwest::Result<reqwest::Response> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let signature = if signed {
        standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .sign(id, now, body.as_bytes())
            .unwrap()
    } else {
        "v1,bm90IGEgc2lnbmF0dXJl".to_owned()
    };
    client(Duration::from_secs(5))
        .post(url)
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await
}

#[tokio::test]
async fn each_attempt_for_a_message_gets_the_plans_answer_and_is_recorded() {
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    })
    .await;

    let first = post(&receiver.url, "msg_1", "{}", true).await.unwrap();
    let second = post(&receiver.url, "msg_1", "{}", false).await.unwrap();
    let other = post(&receiver.url, "msg_2", "{}", true).await.unwrap();

    assert_eq!(
        [first.status(), second.status(), other.status()].map(|s| s.as_u16()),
        [503, 200, 503]
    );
    let seen = receiver.seen_for("msg_1");
    assert_eq!(seen.len(), 2);
    assert!(seen[0].verified && !seen[1].verified, "{seen:?}");
    assert!(!seen[0].accepted() && seen[1].accepted(), "{seen:?}");
}

#[tokio::test]
async fn a_path_override_answers_that_sender_only_and_the_plan_can_change() {
    let receiver = Receiver::accepting().await;
    receiver.set_for("slow-one", Reply::Status(429));

    let overridden = post(&receiver.url_for("slow-one"), "a", "{}", true)
        .await
        .unwrap();
    let planned = post(&receiver.url_for("other"), "b", "{}", true)
        .await
        .unwrap();
    receiver.set(Reply::RetryAfter(503, 7));
    let switched = post(&receiver.url, "c", "{}", true).await.unwrap();

    assert_eq!(overridden.status().as_u16(), 429);
    assert_eq!(planned.status().as_u16(), 200);
    assert_eq!(switched.status().as_u16(), 503);
    assert_eq!(switched.headers()["retry-after"], "7");
    let paths: Vec<String> = receiver.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            Receiver::path_for("slow-one"),
            Receiver::path_for("other"),
            "/hook".to_owned()
        ]
    );
}

#[tokio::test]
async fn a_held_request_is_in_flight_until_the_sender_gives_up() {
    let receiver = Receiver::start(|_| Reply::Hang).await;

    let url = receiver.url.clone();
    let sender = tokio::spawn(async move {
        client(Duration::from_millis(500))
            .post(url)
            .header("webhook-id", "held")
            .body("{}")
            .send()
            .await
    });
    eventually(WAIT, "the request in flight", || async {
        receiver
            .seen()
            .first()
            .filter(|s| s.in_flight())
            .map(|_| ())
    })
    .await
    .unwrap();
    assert!(
        sender.await.unwrap().is_err(),
        "a held request is never answered"
    );

    let seen = eventually(WAIT, "the request to be marked abandoned", || async {
        receiver.seen().pop().filter(|s| s.abandoned.is_some())
    })
    .await
    .unwrap();
    assert!(seen.answered.is_none() && !seen.accepted(), "{seen:?}");
}

#[tokio::test]
async fn the_generic_formats_event_fields_are_read_from_the_body() {
    let receiver = Receiver::accepting().await;
    let event = uuid::Uuid::now_v7();
    let todo = uuid::Uuid::now_v7();
    let body =
        format!(r#"{{"event":{{"id":"{event}","type":"todo.created","todo":{{"id":"{todo}"}}}}}}"#);

    post(&receiver.url, &event.to_string(), &body, true)
        .await
        .unwrap();

    let seen = receiver.wait_for(1, WAIT).await.unwrap().remove(0);
    assert_eq!(seen.event_id(), Some(event));
    assert_eq!(seen.event_type().as_deref(), Some("todo.created"));
    assert_eq!(seen.todo_id(), Some(todo));
    assert!(seen.verified);
}

#[tokio::test]
async fn eventually_returns_the_value_or_fails_naming_what_it_waited_for() {
    let mut calls = 0;
    let value = eventually(WAIT, "the third call", || {
        calls += 1;
        let ready = calls >= 3;
        async move { ready.then_some(calls) }
    })
    .await
    .unwrap();
    assert_eq!(value, 3);

    let error = eventually(
        Duration::from_millis(120),
        "something that never comes",
        || async { None::<()> },
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("something that never comes"),
        "{error}"
    );
}
