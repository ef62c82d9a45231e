//! PostgreSQL's primary lost under load, as CloudNativePG runs it in
//! production: a primary with a synchronous standby (every commit waits
//! until the standby has it), the app connecting through one address that
//! follows the primary (the `-rw` Service; here a forwarder on loopback).
//! The primary is SIGKILLed, the standby promoted and the address switched
//! to it. Every create answered 2xx is in the promoted database and
//! delivered once.

use std::time::Duration;

use faults::eventually;
use faults::scenario::{Scenario, Writes};
use faults::stack;
use sqlx::{Connection, PgConnection};
use test_support::{Forwarder, Postgres};
use tokio::time::{Instant, sleep};

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn a_lost_primary_with_a_synchronous_standby_loses_no_acknowledged_write()
-> anyhow::Result<()> {
    let primary = Postgres::start()?;
    let standby = primary.start_standby()?;
    primary.require_synchronous_standby()?;
    let primary_url = primary.url();
    eventually(
        Duration::from_secs(30),
        "the standby to be synchronous",
        || async {
            let mut db = PgConnection::connect(&primary_url).await.ok()?;
            let state: String = sqlx::query_scalar("select sync_state from pg_stat_replication")
                .fetch_one(&mut db)
                .await
                .ok()?;
            (state == "sync").then_some(())
        },
    )
    .await?;

    let rw = Forwarder::start(primary.port()).await?;
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", rw.port());
    let mut stack = stack::start_on_postgres(primary, url).await?;
    let scenario = Scenario::under_load(
        &stack,
        "10 PostgreSQL primary SIGKILLed, synchronous standby promoted",
        Writes::STEADY,
    );

    sleep(Duration::from_secs(5)).await;
    stack.postgres_mut().kill()?;
    let killed = Instant::now();
    standby.promote()?;
    rw.switch_to(standby.port());
    let switched = killed.elapsed();
    let back = Instant::now();

    let (results, mut figures) = scenario.settle(&stack, back).await?;
    figures.note = format!(
        "standby promoted and the address switched {:.1} s after the kill; writes refused with 503 {}, cut off {}",
        switched.as_secs_f64(),
        results.rejected,
        results.broken.len()
    );
    figures.record()?;

    figures.assert_nothing_lost();
    figures.assert_no_duplicates();
    assert!(
        results.acked.len() > results.sent / 2,
        "writes went on after the failover: {} of {}",
        results.acked.len(),
        results.sent
    );
    drop(standby);
    Ok(())
}
