//! Story 8: when I add a todo, the webhook receiver gets
//! `Todo created: <text>` with a valid signature.

use anyhow::ensure;
use e2e::{Needs, run, test_name};

#[tokio::test]
async fn when_i_add_a_todo_the_webhook_receiver_gets_a_signed_message() {
    run(test_name!(), Needs::Webhook, |t| async move {
        let page = t.open().await?;
        let text = t.unique("Book the dentist");

        page.add(&text).await?;
        t.expect(page.todo_in(&page.open_list(), &text))
            .to_be_visible()
            .await?;

        // The event goes app → outbox → JetStream → broadcaster → receiver:
        // allow it a few expectation timeouts.
        let received = t
            .receiver()?
            .wait_for(&format!("Todo created: {text}"), t.timeout() * 3)
            .await?;
        ensure!(
            received.signature_verified,
            "the message arrived, but its signature did not verify: {:?}",
            received.signature_error
        );
        let event_type = received
            .body
            .pointer("/event/type")
            .and_then(|v| v.as_str());
        ensure!(
            event_type == Some("todo.created"),
            "expected event type todo.created, got {event_type:?} in {}",
            received.body
        );
        Ok(())
    })
    .await;
}
