//! nats-server SIGKILLed for 30 s and restarted on the same store: writes
//! keep succeeding (the outbox holds the events), and once NATS is back
//! every event is delivered, none twice.

use std::time::Duration;

use faults::scenario::{Scenario, Writes};
use faults::stack;
use tokio::time::{Instant, sleep};

const OUTAGE: Duration = Duration::from_secs(30);
/// Events all replicas together may have in flight.
const MAX_IN_FLIGHT: usize = stack::REPLICAS * broadcaster::config::DEFAULT_MAX_IN_FLIGHT;

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn nats_killed_for_30_seconds_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let mut stack = stack::start().await?;
    let scenario = Scenario::under_load(
        &stack,
        "1 nats-server killed 30 s",
        Writes {
            // 40 s of writes, so the outage (from 5 s to 35 s) lies inside them.
            total: 400,
            ..Writes::STEADY
        },
    );

    sleep(Duration::from_secs(5)).await;
    stack.kill_nats()?;
    sleep(OUTAGE).await;
    stack.nats.start_again()?;
    let back = Instant::now();

    let (results, mut figures) = scenario.settle(&stack, back).await?;
    figures.note = format!(
        "writes refused {}, rejected {}, cut off {}",
        results.refused,
        results.rejected,
        results.broken.len()
    );
    figures.record()?;

    results.assert_all_acknowledged("every write succeeds while NATS is down");
    figures.assert_nothing_lost();
    // A webhook answered 2xx whose record and ack died with the server is
    // sent again after the restart, under the same `webhook-id` (checked by
    // the ledger); at most what was in flight.
    assert!(figures.duplicates <= MAX_IN_FLIGHT, "{figures:?}");
    assert_eq!(figures.published, figures.stored, "{figures:?}");
    Ok(())
}
