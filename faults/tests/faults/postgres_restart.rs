//! PostgreSQL stopped for 10 s and started again under load: while it is
//! down `/readyz` answers 503 and the page answers a clear 503 at once (no
//! hang); afterwards the app recovers by itself, every write acknowledged
//! before, during or after is stored, and every event is delivered.

use std::time::Duration;

use faults::eventually;
use faults::scenario::{Scenario, Writes};
use faults::stack;
use tokio::time::{Instant, sleep};

const OUTAGE: Duration = Duration::from_secs(10);
/// "Not a hang": an answer while the database is down comes within the
/// pool's acquire timeout (3 s) plus slack.
const PROMPT: Duration = Duration::from_secs(5);

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn postgres_restarted_under_load_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let mut stack = stack::start().await?;
    let base = stack.app.url();
    let scenario = Scenario::under_load(&stack, "4 PostgreSQL stopped 10 s", Writes::STEADY);
    let client = faults::http(Duration::from_secs(30));

    sleep(Duration::from_secs(5)).await;
    stack.postgres_mut().stop()?;
    let down = Instant::now();

    // While down: not ready, and a clear error page, both promptly.
    let started = Instant::now();
    let readyz = client.get(format!("{base}/readyz")).send().await?;
    let readyz_took = started.elapsed();
    assert_eq!(readyz.status(), 503, "/readyz while PostgreSQL is down");
    assert!(readyz_took < PROMPT, "/readyz took {readyz_took:?}");
    let started = Instant::now();
    let page = client.get(format!("{base}/")).send().await?;
    let page_took = started.elapsed();
    let status = page.status();
    let body = page.text().await?;
    assert_eq!(status, 503, "the page while PostgreSQL is down: {body}");
    assert!(page_took < PROMPT, "the page took {page_took:?}");
    assert!(!body.is_empty(), "the error page says something");

    sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    stack.postgres_mut().start_again()?;
    let back = Instant::now();
    eventually(
        Duration::from_secs(60),
        "/readyz to answer 200 again",
        || async {
            let response = client.get(format!("{base}/readyz")).send().await.ok()?;
            (response.status() == 200).then_some(())
        },
    )
    .await?;
    let ready_after = back.elapsed();

    let (results, mut figures) = scenario.settle(&stack, back).await?;
    figures.note = format!(
        "writes refused with 503 while down: {}, cut off {}; /readyz 503 in {} ms, page 503 in {} ms; ready again {:.1} s after restart",
        results.rejected,
        results.broken.len(),
        readyz_took.as_millis(),
        page_took.as_millis(),
        ready_after.as_secs_f64()
    );
    figures.record()?;

    assert!(results.broken.is_empty(), "{:?}", results.broken);
    figures.assert_nothing_lost();
    figures.assert_no_duplicates();
    assert!(
        results.acked.len() < results.sent,
        "some writes met the outage"
    );
    Ok(())
}
