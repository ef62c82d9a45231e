//! The app SIGTERMed under load, then started again: requests in flight when
//! the signal came are answered (each request is held 400 ms by the app's
//! test-only delay, so several always are), new connections are refused
//! rather than cut, no acknowledged todo is lost, and the events of todos
//! written just before the signal are published by the next instance.

use std::time::Duration;

use faults::scenario::{Scenario, Writes};
use faults::stack;
use tokio::time::{Instant, sleep};

/// How long the app holds every request (its test-only delay).
const HELD: Duration = Duration::from_millis(400);

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn app_sigterm_under_load_answers_in_flight_requests_and_loses_nothing() -> anyhow::Result<()>
{
    let mut stack = stack::start_with_app(
        &["--test-faults"],
        &[("DOCKET_FAULT_DELAY_MS", &HELD.as_millis().to_string())],
    )
    .await?;
    let scenario = Scenario::under_load(
        &stack,
        "5 app SIGTERM under load",
        Writes {
            // Twice the steady rate: with each request held HELD, about eight
            // are in flight at any moment.
            every: Duration::from_millis(50),
            ..Writes::STEADY
        },
    );

    sleep(Duration::from_secs(5)).await;
    let mut app = stack.app.service.take().expect("the app runs");
    app.terminate();
    let stopping = Instant::now();
    let status = app.wait(Duration::from_secs(30)).await?;
    let drained_in = stopping.elapsed();
    assert!(
        status.success(),
        "the app exits cleanly on SIGTERM: {status}\n{}",
        app.output()
    );
    sleep(Duration::from_secs(2)).await;
    stack.start_app().await?;
    let back = Instant::now();

    let (results, mut figures) = scenario.settle(&stack, back).await?;
    // Every request the app took is held HELD by the test delay, so one that
    // broke sooner never reached a handler: its connection sat in the listen
    // backlog when the listener closed and was reset (the race a Kubernetes
    // preStop pause covers). One that broke later was cut off in flight,
    // which graceful shutdown must never do.
    let (cut_off, reset): (Vec<_>, Vec<_>) =
        results.broken.iter().partition(|(after, _)| *after >= HELD);
    figures.note = format!(
        "shut down in {:.1} s; refused while down {}, reset in the listen backlog {}, cut off in flight {}",
        drained_in.as_secs_f64(),
        results.refused,
        reset.len(),
        cut_off.len()
    );
    figures.record()?;

    assert!(
        cut_off.is_empty(),
        "requests cut off in flight: {cut_off:?}"
    );
    assert!(results.refused > 0, "some writes met the stopped app");
    figures.assert_nothing_lost();
    figures.assert_no_duplicates();
    Ok(())
}
