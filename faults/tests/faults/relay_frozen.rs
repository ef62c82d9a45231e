//! The relay's leader frozen under load (SIGSTOP, as a paused VM or a
//! stuck process would be): its lock connection falls silent, the server
//! ends the session once its lease runs out, and the other replica's relay
//! takes over within the stated bound. The frozen replica is then resumed:
//! it finds its session gone and stands by. Nothing acknowledged is lost,
//! and the webhook sees each event once.

use std::time::Duration;

use faults::scenario::{Scenario, Writes};
use faults::stack;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::{Instant, sleep};

/// What the relay logs when it takes the lock.
const LEADING: &str = "outbox relay is active on this replica";
/// The lease (12 s) plus one standby poll (2 s), and a second of slack.
const TAKEOVER_BOUND: Duration = Duration::from_secs(15);

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn a_frozen_relay_leader_is_replaced_within_the_bound_and_nothing_is_lost()
-> anyhow::Result<()> {
    let mut stack = stack::start().await?;
    // The first replica leads; a second one, on another port, takes the load.
    let leader = stack.app.service.take().expect("the app runs");
    leader
        .wait_for_output(LEADING, Duration::from_secs(20))
        .await?;
    stack.app.port = test_support::free_port();
    stack.start_app().await?;
    let standby = stack.app.service.as_ref().expect("the second replica runs");
    assert!(!standby.output().contains(LEADING), "one leader at a time");

    let scenario = Scenario::under_load(&stack, "7 relay leader frozen (SIGSTOP)", Writes::STEADY);
    sleep(Duration::from_secs(3)).await;
    let pid = Pid::from_raw(i32::try_from(leader.pid())?);
    kill(pid, Signal::SIGSTOP)?;
    let frozen = Instant::now();

    let standby = stack.app.service.as_ref().expect("the second replica runs");
    standby
        .wait_for_output(LEADING, TAKEOVER_BOUND + Duration::from_secs(10))
        .await?;
    let took_over_in = frozen.elapsed();
    sleep(Duration::from_secs(3)).await;
    kill(pid, Signal::SIGCONT)?;
    let resumed = Instant::now();

    let (_results, mut figures) = scenario.settle(&stack, resumed).await?;
    figures.note = format!(
        "the standby led {:.1} s after the leader froze (bound {} s)",
        took_over_in.as_secs_f64(),
        TAKEOVER_BOUND.as_secs()
    );
    figures.record()?;
    drop(leader);

    assert!(
        took_over_in <= TAKEOVER_BOUND,
        "took over after {took_over_in:?}"
    );
    figures.assert_nothing_lost();
    figures.assert_no_duplicates();
    Ok(())
}
