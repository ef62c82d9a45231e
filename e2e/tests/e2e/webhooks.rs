//! Story 8: when I add a todo, the team hears of it: `Todo created: <text>`
//! in the chat, as production delivers it; where the broadcaster only logs
//! (staging), in its log.
//!
//! Locally the broadcaster posts in Discord's format to a receiver that
//! answers as Discord does, and the message is checked as the channel shows
//! it. Against `E2E_BASE_URL`, `E2E_BROADCASTER_LOG` checks the log line and
//! `E2E_WEBHOOK_URL` a receiver of signed messages (see the README's E2E
//! section).

use anyhow::{Context, ensure};
use e2e::webhook::Received;
use e2e::{Needs, Session, run, test_name};

#[tokio::test]
async fn when_i_add_a_todo_the_team_hears_of_it_as_the_environment_delivers() {
    run(test_name!(), Needs::Webhook, |t| async move {
        let page = t.open().await?;
        let text = t.unique("Book the dentist");

        page.add(&text).await?;
        t.expect(page.todo_in(&page.open_list(), &text))
            .to_be_visible()
            .await?;

        // Against an environment with sign-in the page signed in first
        // (`E2E_USERNAME`), and the message names who added it.
        let expected = match page.signed_in_name().await? {
            Some(name) => format!("{name} added: {text}"),
            None => format!("Todo created: {text}"),
        };
        the_team_hears(&t, &expected).await
    })
    .await;
}

/// Waits until `expected` reaches the team as the environment delivers it:
/// the chat message at a receiver, or the broadcaster's log line, or both
/// where both are there to check.
pub(crate) async fn the_team_hears(t: &Session, expected: &str) -> anyhow::Result<()> {
    let mut checked = 0;
    if let Some(receiver) = t.webhook_receiver() {
        // The event goes app → outbox → JetStream → broadcaster →
        // receiver: allow it a few expectation timeouts.
        let received = receiver.wait_for(expected, t.timeout() * 3).await?;
        if t.owns_the_app() {
            in_the_chat(&received)?;
        } else {
            signed(&received)?;
        }
        checked += 1;
    }
    if let Some(log) = t.broadcaster_log() {
        let body = log.wait_for(expected, t.timeout() * 3).await?;
        event_type_is_created(&body)?;
        checked += 1;
    }
    // `run` skips the story when there is neither.
    ensure!(
        checked > 0,
        "neither a receiver nor the broadcaster's log to check"
    );
    Ok(())
}

/// Production's delivery: a Discord message the channel accepted (204).
pub(crate) fn in_the_chat(received: &Received) -> anyhow::Result<()> {
    ensure!(
        received.body.get("content").is_some_and(|c| c.is_string()),
        "expected Discord's `{{\"content\": …}}`, got {}",
        received.body
    );
    ensure!(
        received.status == Some(204),
        "the stand-in Discord channel refused the message ({:?}): {}",
        received.status,
        received.body
    );
    Ok(())
}

/// A receiver of Standard Webhooks: the signature verifies.
pub(crate) fn signed(received: &Received) -> anyhow::Result<()> {
    ensure!(
        received.signature_verified,
        "the message arrived, but its signature did not verify: {:?}",
        received.signature_error
    );
    event_type_is_created(&received.body)
}

pub(crate) fn event_type_is_created(body: &serde_json::Value) -> anyhow::Result<()> {
    let event_type = body
        .pointer("/event/type")
        .and_then(|v| v.as_str())
        .context("no event type in the generic body")?;
    ensure!(
        event_type == "todo.created",
        "expected event type todo.created, got {event_type} in {body}"
    );
    Ok(())
}
