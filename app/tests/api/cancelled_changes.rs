//! A change the caller stops waiting for (the client hung up, a timeout
//! fired) must not leave its database connection inside a transaction.
//!
//! sqlx 0.8's `begin()` is not cancel-safe on PostgreSQL: dropped between
//! sending `BEGIN` and reading its answer, it returns the connection to the
//! pool with the transaction open, and the next write on that connection is
//! answered as stored while nothing commits it (sqlx issue #4393). The app
//! runs every change to its end in a task of its own. This test abandons
//! 2,000 changes at points spread over their first round trips, each
//! followed by a create on the same (only) connection, and checks every
//! create is visible to another connection. Without the task it fails
//! within the first few dozen.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use app::changes;
use app::domain::{Actor, TodoText};
use app::state::AppState;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::spawn_app;

/// Ready once its instant has passed, polling itself meanwhile: tokio's
/// timers count whole milliseconds, far coarser than a `BEGIN` round trip
/// on loopback.
struct SpinUntil(Instant);

impl Future for SpinUntil {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_abandoned_at_any_point_leaves_no_transaction_open() {
    let app = spawn_app().await;
    // One connection, so each create runs where the abandoned change ran.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*app.db.connect_options()).clone())
        .await
        .expect("a one-connection pool");
    let state = AppState::new(pool, None);
    let text = TodoText::parse("toggled while abandoned").unwrap();
    let todo = changes::create(&state.writer, &text, Actor::Anonymous)
        .await
        .expect("created");
    let id = todo.id;

    let written = TodoText::parse("written after an abandoned change").unwrap();
    for i in 0..2000u64 {
        // Cut-off points from 0 to 400 µs, spread over the whole range.
        let cut_off = Instant::now() + Duration::from_micros(i * 137 % 400);
        tokio::select! {
            _ = changes::update(&state.writer, id, Some(i % 2 == 0), None, Actor::Anonymous) => {}
            () = SpinUntil(cut_off) => {}
        }
        // A create is one statement without BEGIN: inside a leaked
        // transaction it would be answered and never committed.
        let created = changes::create(&state.writer, &written, Actor::Anonymous)
            .await
            .expect("created");
        let visible: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM todos WHERE id = $1)")
            .bind(created.id.as_uuid())
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert!(
            visible,
            "after abandoning change {i}, an acknowledged create is not visible to others"
        );
    }
}
