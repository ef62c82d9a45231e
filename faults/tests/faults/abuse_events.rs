//! Malformed events on the real stream: each is dead-lettered with its
//! error and its bytes untouched, no replica crashes, and a good event
//! published after them is still delivered.

use std::time::Duration;

use crate::abuse_parsers::valid_event;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::pull;
use faults::eventually;
use faults::stack;
use futures::StreamExt;

#[tokio::test]
async fn malformed_events_are_dead_lettered_and_the_consumer_carries_on() -> anyhow::Result<()> {
    let mut stack = stack::start().await?;
    let js = stack.jetstream().await?;
    let malformed: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not json".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        br#"{"id":1,"type":"todo.created"}"#.to_vec(),
        br#"{"id":"00000000-0000-0000-0000-000000000000","type":"todo.exploded","schema_version":1}"#.to_vec(),
        vec![b'['; 10_000],
    ];
    for (i, payload) in malformed.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(events::MSG_ID_HEADER, format!("malformed-{i}").as_str());
        js.publish_with_headers("todos.created", headers, payload.clone().into())
            .await?
            .await?;
    }
    let good = valid_event("after the bad ones".into());
    let mut headers = HeaderMap::new();
    headers.insert(events::MSG_ID_HEADER, good.id.to_string().as_str());
    js.publish_with_headers(good.subject(), headers, good.to_json().into())
        .await?
        .await?;

    eventually(
        Duration::from_secs(30),
        "the good event at the receiver",
        || async {
            stack
                .receiver()
                .seen()
                .iter()
                .any(|s| s.accepted() && s.event_id() == Some(good.id))
                .then_some(())
        },
    )
    .await?;
    let letters = eventually(
        Duration::from_secs(30),
        "every bad event dead-lettered",
        || async {
            let stream = js.get_stream(broadcaster::dlq::STREAM).await.ok()?;
            let consumer = stream.create_consumer(pull::Config::default()).await.ok()?;
            let mut batch = consumer
                .fetch()
                .max_messages(100)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .ok()?;
            let mut out = Vec::new();
            while let Some(Ok(message)) = batch.next().await {
                out.push(message);
            }
            (out.len() >= malformed.len()).then_some(out)
        },
    )
    .await?;

    assert_eq!(
        letters.len(),
        malformed.len(),
        "one dead letter each, no more"
    );
    for letter in &letters {
        let headers = letter.headers.as_ref().expect("dead letters carry headers");
        let error = headers
            .get("Docket-Last-Error")
            .map(|v| v.as_str().to_owned());
        assert!(
            error.is_some_and(|e| !e.is_empty()),
            "a dead letter says why"
        );
        assert!(
            malformed.iter().any(|m| m[..] == letter.payload[..]),
            "the bytes are kept untouched"
        );
    }
    for replica in stack.broadcasters.iter_mut().flatten() {
        assert!(
            replica.try_wait()?.is_none(),
            "a replica crashed:\n{}",
            replica.output()
        );
    }
    Ok(())
}
