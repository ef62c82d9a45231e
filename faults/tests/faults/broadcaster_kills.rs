//! A broadcaster replica SIGKILLed every few seconds (round robin, a new
//! replica started in its place): every event is delivered; a duplicate at
//! the receiver can only be a redelivery of the same `webhook-id` (an event
//! delivered whose ack died with the replica), and is counted.

use std::time::Duration;

use faults::ledger;
use faults::load::Load;
use faults::stack::{REPLICAS, Stack};
use tokio::time::{Instant, sleep};

const KILLS: usize = 8;
const EVERY: Duration = Duration::from_secs(3);

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn a_replica_killed_every_few_seconds_loses_nothing() -> anyhow::Result<()> {
    let mut stack = Stack::start().await?;
    let load = Load::start(
        stack.app.url(),
        "replica kills",
        300,
        Duration::from_millis(100),
    );

    for round in 0..KILLS {
        sleep(EVERY).await;
        let slot = round % REPLICAS;
        if let Some(mut replica) = stack.broadcasters[slot].take() {
            replica.kill();
            replica.wait(Duration::from_secs(5)).await?;
        }
        stack.broadcasters[slot] = Some(stack.spawn_broadcaster().await?);
    }
    let last_kill = Instant::now();

    let results = load.finish().await;
    let mut figures = ledger::settle(
        &stack,
        "2 broadcaster replica SIGKILLed every 3 s",
        &results,
        last_kill,
        Duration::from_secs(120),
    )
    .await?;
    figures.note = format!("{KILLS} kills; duplicates are same webhook-id redeliveries");
    figures.record()?;

    assert_eq!(results.acked.len(), results.sent, "{results:?}");
    assert_eq!(figures.lost, 0, "{figures:?}");
    assert_eq!(figures.stream_duplicates, 0, "{figures:?}");
    Ok(())
}
