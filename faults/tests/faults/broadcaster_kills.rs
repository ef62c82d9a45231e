//! A broadcaster replica SIGKILLed every few seconds (round robin, a new
//! replica started in its place), each kill striking a delivery in flight:
//! every event is delivered; a duplicate at the receiver can only be a
//! redelivery of the same `webhook-id` (an event delivered whose ack died
//! with the replica), and is counted.
//!
//! Before each kill the receiver holds that replica's requests open (it
//! delivers to a path of its own), and the scenario waits until one is
//! open; after the kill it checks the receiver saw that request cut off,
//! before the replica's own timeout could have ended it. A kill that missed
//! every delivery fails the scenario.

use std::time::Duration;

use anyhow::{Context, ensure};
use faults::eventually;
use faults::scenario::{Scenario, Writes};
use faults::stack::{self, REPLICAS, WEBHOOK_TIMEOUT};
use test_support::webhook::{Receiver, Reply};
use tokio::time::{Instant, sleep};

const KILLS: usize = 8;
const EVERY: Duration = Duration::from_secs(3);

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn a_replica_killed_every_few_seconds_mid_delivery_loses_nothing() -> anyhow::Result<()> {
    let mut stack = stack::start().await?;
    let scenario = Scenario::under_load(
        &stack,
        "2 broadcaster replica SIGKILLed every 3 s",
        Writes::STEADY,
    );

    for round in 0..KILLS {
        // Paces the faults; what each kill strikes is waited for below.
        sleep(EVERY).await;
        let slot = round % REPLICAS;
        let mut replica = stack.broadcasters[slot]
            .take()
            .context("every slot holds a replica between kills")?;
        kill_mid_delivery(stack.receiver(), &mut replica).await?;
        stack.broadcasters[slot] = Some(stack.spawn_broadcaster().await?);
    }
    let last_kill = Instant::now();

    let (results, mut figures) = scenario.settle(&stack, last_kill).await?;
    figures.note =
        format!("{KILLS} kills, each mid-delivery; duplicates are same webhook-id redeliveries");
    figures.record()?;

    results.assert_all_acknowledged("every write succeeds while replicas die");
    figures.assert_nothing_lost();
    Ok(())
}

/// Holds the replica's next delivery open at the receiver, SIGKILLs the
/// replica while it is open, and checks the kill is what ended it.
async fn kill_mid_delivery(
    receiver: &Receiver,
    replica: &mut test_support::Replica,
) -> anyhow::Result<()> {
    let path = Receiver::path_for(&replica.name);
    receiver.set_for(&replica.name, Reply::Hang);
    let open = eventually(
        Duration::from_secs(10),
        &format!("a delivery in flight from {}", replica.name),
        || async {
            receiver
                .seen()
                .iter()
                .position(|s| s.path == path && s.in_flight())
        },
    )
    .await?;
    let struck = Instant::now();
    replica.kill();
    replica.wait(Duration::from_secs(5)).await?;
    let request = eventually(
        Duration::from_secs(5),
        "the held request to be cut off",
        || async {
            let request = receiver.seen().swap_remove(open);
            request.abandoned.is_some().then_some(request)
        },
    )
    .await?;
    let cut_off = request.abandoned.context("waited for above")?;
    ensure!(
        cut_off >= struck && cut_off.duration_since(request.at) < WEBHOOK_TIMEOUT,
        "the request {} held open for {} was not ended by the kill (arrived {:?} before it, \
         cut off {:?} after it)",
        request.key,
        replica.name,
        struck.saturating_duration_since(request.at),
        cut_off.saturating_duration_since(struck),
    );
    Ok(())
}
