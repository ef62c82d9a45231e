//! A node of a three-node NATS cluster lost with its disk, as production
//! runs NATS (`TODOS`, the dead letters and the broadcasters' bucket at
//! three replicas): under load, with the broadcasters delivering, the
//! `TODOS` leader is SIGKILLed, its store deleted, and it is started again
//! empty. The other two elect a leader and go on; the empty node catches
//! up from them. Every create answered 2xx is delivered exactly once; the
//! longest time without a publish is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use faults::eventually;
use faults::scenario::{Scenario, Writes};
use faults::stack;
use test_support::Nats;
use tokio::time::{Instant, sleep};

const NODES: usize = 3;
/// The node stays down this long before it comes back, empty.
const DOWN: Duration = Duration::from_secs(5);

/// The `TODOS` leader's name once the stream has `NODES` replicas, a
/// leader, and every follower current.
async fn healthy_leader(js: &jetstream::Context) -> Option<String> {
    let mut stream = js.get_stream(events::STREAM).await.ok()?;
    let info = stream.info().await.ok()?;
    let cluster = info.cluster.as_ref()?;
    let followers_current = cluster.replicas.len() == NODES - 1
        && cluster
            .replicas
            .iter()
            .all(|peer| peer.current && !peer.offline);
    (info.config.num_replicas == NODES && followers_current)
        .then(|| cluster.leader.clone())
        .flatten()
}

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn the_stream_leader_lost_with_its_disk_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let mut others = test_support::start_secured_cluster(NODES).await?;
    let first = others.remove(0);
    let mut stack = stack::start_on_cluster(first, NODES as u8).await?;
    let js = stack.jetstream().await?;
    eventually(
        Duration::from_secs(30),
        "TODOS at R3 with a leader and current followers",
        || healthy_leader(&js),
    )
    .await?;

    let scenario = Scenario::under_load(
        &stack,
        "8 NATS stream leader lost with its disk (3 nodes, R3)",
        Writes::STEADY,
    );
    let longest_gap = watch_publishing(js.clone());
    sleep(Duration::from_secs(5)).await;

    let leader = healthy_leader(&js)
        .await
        .ok_or_else(|| anyhow::anyhow!("TODOS lost its leader before the fault"))?;
    let node: &mut Nats = if stack.nats.server_name() == Some(leader.as_str()) {
        &mut stack.nats
    } else {
        others
            .iter_mut()
            .find(|n| n.server_name() == Some(leader.as_str()))
            .ok_or_else(|| anyhow::anyhow!("no node is named {leader}"))?
    };
    node.kill()?;
    node.wipe_store()?;
    let killed = Instant::now();
    let new_leader = eventually(Duration::from_secs(30), "a new TODOS leader", || {
        let js = js.clone();
        let old = leader.clone();
        async move {
            let mut stream = js.get_stream(events::STREAM).await.ok()?;
            let info = stream.info().await.ok()?;
            info.cluster.clone()?.leader.filter(|l| *l != old)
        }
    })
    .await?;
    let elected_after = killed.elapsed();
    sleep(DOWN.saturating_sub(killed.elapsed())).await;
    node.start_again()?;
    let back = Instant::now();
    eventually(
        Duration::from_secs(60),
        "the empty node to catch up (every follower current)",
        || healthy_leader(&js),
    )
    .await?;
    let caught_up_after = back.elapsed();

    let (results, mut figures) = scenario.settle(&stack, back).await?;
    figures.note = format!(
        "{leader} killed and wiped; {new_leader} led after {:.1} s; longest without a publish {:.1} s; back empty, caught up in {:.1} s; writes refused {}, cut off {}",
        elected_after.as_secs_f64(),
        Duration::from_millis(longest_gap.load(Ordering::Relaxed)).as_secs_f64(),
        caught_up_after.as_secs_f64(),
        results.refused,
        results.broken.len()
    );
    figures.record()?;

    results.assert_all_acknowledged("every write succeeds while the cluster elects a leader");
    figures.assert_nothing_lost();
    figures.assert_no_duplicates();
    assert_eq!(figures.published, figures.stored, "{figures:?}");
    Ok(())
}

/// Polls the stream's last sequence every 100 ms and keeps the longest
/// time it stood still while the load ran (ms), including the election.
fn watch_publishing(js: jetstream::Context) -> Arc<AtomicU64> {
    let longest = Arc::new(AtomicU64::new(0));
    let recorded = longest.clone();
    tokio::spawn(async move {
        let mut last = (0, Instant::now());
        let started = Instant::now();
        // The load runs about 30 s; the publishing after it is not watched.
        while started.elapsed() < Duration::from_secs(28) {
            let sequence = match js.get_stream(events::STREAM).await {
                Ok(mut stream) => stream.info().await.ok().map(|i| i.state.last_sequence),
                Err(_) => None,
            };
            if let Some(sequence) = sequence.filter(|s| *s > last.0) {
                last = (sequence, Instant::now());
            }
            let still = last.1.elapsed().as_millis() as u64;
            recorded.fetch_max(still, Ordering::Relaxed);
            sleep(Duration::from_millis(100)).await;
        }
    });
    longest
}
