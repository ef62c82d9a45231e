//! The receiver answers 503 for 20 s, then takes 2 s per request for 20 s,
//! then recovers: every event is delivered after recovery and nothing is
//! dead-lettered (the retry schedule outlasts the outage).

use std::time::Duration;

use faults::scenario::{Scenario, Writes};
use faults::stack;
use test_support::Stack;
use test_support::webhook::Reply;
use tokio::time::{Instant, sleep};

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn a_failing_then_slow_receiver_gets_everything_after_recovery() -> anyhow::Result<()> {
    let stack = stack::start().await?;
    let scenario = Scenario::under_load(
        &stack,
        "3 receiver 503 for 20 s, then 2 s slow for 20 s",
        Writes::STEADY,
    );

    sleep(Duration::from_secs(3)).await;
    stack.receiver().set(Reply::Status(503));
    sleep(Duration::from_secs(20)).await;
    stack.receiver().set(Reply::Slow(Duration::from_secs(2)));
    // Recovery counts from the end of the failures: slow is degraded, not down.
    let back = Instant::now();
    sleep(Duration::from_secs(20)).await;
    stack.receiver().set(Reply::Status(200));

    // The slow phase leaves a backlog of 2 s deliveries behind it.
    let (_, mut figures) = scenario
        .settle_within(&stack, back, Duration::from_secs(150))
        .await?;
    let refused_by_receiver = stack
        .receiver()
        .seen()
        .iter()
        .filter(|s| s.answered.is_some() && !s.reply.accepts())
        .count();
    let dead_letters = dead_letters(&stack).await?;
    figures.note = format!("503 answers {refused_by_receiver}; dead-lettered {dead_letters}");
    figures.record()?;

    assert!(refused_by_receiver > 0, "the outage was seen");
    assert_eq!(
        dead_letters, 0,
        "nothing is dead-lettered while the schedule lasts"
    );
    figures.assert_nothing_lost();
    figures.assert_no_duplicates();
    Ok(())
}

/// Messages in the dead-letter stream (none if it was never created).
async fn dead_letters(stack: &Stack) -> anyhow::Result<u64> {
    let js = stack.jetstream().await?;
    match js.get_stream(broadcaster::dlq::STREAM).await {
        Ok(mut stream) => Ok(stream.info().await?.state.messages),
        Err(_) => Ok(0),
    }
}
