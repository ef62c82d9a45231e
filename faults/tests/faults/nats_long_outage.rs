//! NATS down for longer than the `TODOS` duplicate window (shortened to
//! 5 s here; 2 minutes in production): rows the relay had published but not
//! seen acknowledged when the server died are published again after the
//! outage, past the window, so JetStream stores them twice. Whether a row
//! was in flight at the kill is luck, so the scenario also publishes the
//! first events again itself, exactly as the relay would (same subject,
//! payload and `Nats-Msg-Id`), once NATS is back. The broadcasters'
//! delivered-id bucket still sends each event once: nothing is lost, and
//! the receiver sees every event once.

use std::time::Duration;

use async_nats::jetstream;
use faults::eventually;
use faults::scenario::{Scenario, Writes};
use faults::stack;
use tokio::time::{Instant, sleep};

const WINDOW: &str = "5s";
/// More than twice the window.
const OUTAGE: Duration = Duration::from_secs(12);
/// Events published again after the outage, as an unconfirmed relay would.
const REPUBLISHED: u64 = 10;

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn nats_down_longer_than_the_duplicate_window_sends_each_event_once() -> anyhow::Result<()> {
    let mut stack =
        stack::start_with_stream_env(&[(events::DUPLICATE_WINDOW_VARIABLE, WINDOW)]).await?;
    let js = stack.jetstream().await?;
    let window = js
        .get_stream(events::STREAM)
        .await?
        .info()
        .await?
        .config
        .duplicate_window;
    assert_eq!(
        window,
        Duration::from_secs(5),
        "the stream has the short window"
    );

    let scenario = Scenario::under_load(
        &stack,
        "9 NATS down 12 s, longer than the duplicate window (5 s)",
        Writes::STEADY,
    );
    sleep(Duration::from_secs(5)).await;
    stack.kill_nats()?;
    sleep(OUTAGE).await;
    stack.nats.start_again()?;
    let back = Instant::now();
    let js = stack.jetstream().await?;
    eventually(
        Duration::from_secs(30),
        "the first events stored again past the window",
        || republish_first(&js, REPUBLISHED),
    )
    .await?;

    let (results, mut figures) = scenario.settle(&stack, back).await?;
    figures.note = format!(
        "stored twice in TODOS: {} ({REPUBLISHED} republished by the test); writes refused {}, cut off {}",
        figures.published.saturating_sub(figures.stored),
        results.refused,
        results.broken.len()
    );
    figures.record()?;

    results.assert_all_acknowledged("every write succeeds while NATS is down");
    figures.assert_nothing_lost();
    figures.assert_no_duplicates();
    assert!(
        figures.published >= figures.stored + REPUBLISHED as usize,
        "the republished events are stored twice: {figures:?}"
    );
    Ok(())
}

/// Publishes stream messages 1..=`count` again, headers and all; `Some`
/// once JetStream stored every one as new (the window had passed).
async fn republish_first(js: &jetstream::Context, count: u64) -> Option<()> {
    let stream = js.get_stream(events::STREAM).await.ok()?;
    for sequence in 1..=count {
        let message = stream.get_raw_message(sequence).await.ok()?;
        let headers = message.headers.clone();
        let ack = js
            .publish_with_headers(message.subject.clone(), headers, message.payload.clone())
            .await
            .ok()?
            .await
            .ok()?;
        assert!(
            !ack.duplicate,
            "message {sequence} was still inside the window"
        );
    }
    Some(())
}
