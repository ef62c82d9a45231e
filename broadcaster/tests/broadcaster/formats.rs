//! Each format's exact body, as a real receiver gets it.

use std::time::Duration;

use events::EventType;
use uuid::Uuid;

use crate::helpers::{
    Broadcaster, PrivateNats, Receiver, created, event, sink_messages, spawn_sink,
};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn generic_messages_are_signed_and_verify_at_the_sink() {
    // Arrange: the real sink, as `cargo xtask up` runs it.
    let nats = PrivateNats::start().await;
    let (sink, port) = spawn_sink().await;
    let _broadcaster =
        Broadcaster::forwarding(&nats.url(), &format!("http://127.0.0.1:{port}/"), &[]).await;

    // Act
    let event = created("Buy <milk> & \"eggs\"");
    nats.publish(&event).await;

    // Assert
    let messages = crate::helpers::eventually(WAIT, "the sink to receive the event", || async {
        let list = sink_messages(port).await?;
        (!list.is_empty()).then_some(list)
    })
    .await
    .unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message["webhook_id"], event.id.to_string());
    assert_eq!(message["signature_verified"], true, "{message}");
    assert_eq!(
        message["body"],
        serde_json::json!({
            "user": "bot",
            "message": "Todo created: Buy <milk> & \"eggs\"",
            "event": serde_json::to_value(&event).unwrap(),
        })
    );
    // One readable line per message on the sink's stdout.
    sink.wait_for_output("Todo created: Buy <milk> & \"eggs\"", WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn generic_bodies_are_exact_bytes_in_the_documented_key_order() {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    let _broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;

    let event = event(EventType::Updated, Uuid::now_v7(), "Ship it", true);
    nats.publish(&event).await;

    let seen = receiver.wait_for(1, WAIT).await.unwrap();
    let expected = format!(
        r#"{{"user":"bot","message":"Todo marked done: Ship it","event":{}}}"#,
        String::from_utf8(event.to_json()).unwrap()
    );
    assert_eq!(String::from_utf8_lossy(&seen[0].body), expected);
    assert!(seen[0].verified);
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(seen[0].headers["webhook-id"], event.id.to_string());
}

async fn body_in_format(format: &str, extra: &[(&str, &str)], event: events::TodoEvent) -> String {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    let mut envs = vec![("WEBHOOK_FORMAT", format)];
    envs.extend_from_slice(extra);
    let _broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &envs).await;
    nats.publish(&event).await;
    let seen = receiver.wait_for(1, WAIT).await.unwrap();
    assert!(
        seen[0].headers.get("webhook-signature").is_none(),
        "chat formats are not signed"
    );
    String::from_utf8(seen[0].body.to_vec()).unwrap()
}

#[tokio::test]
async fn discord_gets_content_with_markdown_escaped() {
    let body = body_in_format("discord", &[], created("**now** @everyone")).await;
    assert_eq!(
        body,
        r#"{"content":"Todo created: \\*\\*now\\*\\* \\@everyone"}"#
    );
}

#[tokio::test]
async fn slack_gets_text_with_control_characters_escaped() {
    let event = event(
        EventType::Deleted,
        Uuid::now_v7(),
        "<!channel> salt & pepper",
        false,
    );
    let body = body_in_format("slack", &[], event).await;
    assert_eq!(
        body,
        r#"{"text":"Todo deleted: &lt;!channel&gt; salt &amp; pepper"}"#
    );
}

#[tokio::test]
async fn telegram_gets_send_message_with_chat_id_and_plain_text() {
    let event = event(EventType::Updated, Uuid::now_v7(), "<b>call</b> mum", false);
    let body = body_in_format("telegram", &[("TELEGRAM_CHAT_ID", "-100123")], event).await;
    assert_eq!(
        body,
        r#"{"chat_id":-100123,"text":"Todo marked not done: <b>call</b> mum"}"#
    );
}

/// `event` as made by someone signed in, with the name given.
fn by(event: events::TodoEvent, name: &str) -> events::TodoEvent {
    event.by(events::Actor::Person {
        subject: "248289761001".into(),
        name: name.into(),
    })
}

#[tokio::test]
async fn discord_names_the_actor_with_markdown_escaped() {
    let event = by(created("Buy milk"), "[Ada](https://evil.example) @here");
    let body = body_in_format("discord", &[], event).await;
    assert_eq!(
        body,
        r#"{"content":"\\[Ada\\]\\(https://evil.example\\) \\@here added: Buy milk"}"#
    );
}

#[tokio::test]
async fn slack_names_the_actor_with_control_characters_escaped() {
    let event = event(EventType::Updated, Uuid::now_v7(), "Ship it", true);
    let body = body_in_format("slack", &[], by(event, "<!channel|Ada> & co")).await;
    assert_eq!(
        body,
        r#"{"text":"&lt;!channel|Ada&gt; &amp; co completed: Ship it"}"#
    );
}

#[tokio::test]
async fn telegram_names_the_actor_on_one_plain_line() {
    let event = event(EventType::Deleted, Uuid::now_v7(), "Call mum", false);
    let name = "<b>Ada</b>\nBob added: nothing";
    let body = body_in_format(
        "telegram",
        &[("TELEGRAM_CHAT_ID", "-100123")],
        by(event, name),
    )
    .await;
    assert_eq!(
        body,
        r#"{"chat_id":-100123,"text":"<b>Ada</b> Bob added: nothing deleted: Call mum"}"#
    );
}

#[tokio::test]
async fn generic_bodies_carry_the_actor_in_the_event_as_is() {
    let nats = PrivateNats::start().await;
    let receiver = Receiver::accepting().await;
    let _broadcaster = Broadcaster::forwarding(&nats.url(), &receiver.url, &[]).await;

    let event = created("Buy milk").by(events::Actor::Token {
        name: "ci-bot".into(),
    });
    nats.publish(&event).await;

    let seen = receiver.wait_for(1, WAIT).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["message"], "API token ci-bot added: Buy milk");
    assert_eq!(
        body["event"]["actor"],
        serde_json::json!({"kind": "token", "name": "ci-bot"})
    );
    assert_eq!(body["event"], serde_json::to_value(&event).unwrap());
    assert!(seen[0].verified);
}
