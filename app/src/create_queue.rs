//! Creates that arrive while others are being written are written together,
//! in one statement (group commit).
//!
//! Under load a create's cost is mostly per statement, not per row:
//! PostgreSQL's parse, commit and outbox trigger, the NOTIFY that signals
//! every listening backend, and a round trip each way. A batch pays them
//! once for all its todos. Nothing waits to fill a batch: a create is
//! written at once when a writer is free, and a batch is whatever queued
//! while the writers were busy. Each write runs in a task of its own, so a
//! caller that stops waiting cannot cut it off.

use std::sync::Arc;

use prometheus::IntCounter;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::db::outbox::OutboxEvent;
use crate::db::todos::{self, NewTodo};
use crate::domain::Todo;
use crate::error::{AppError, Result};
use crate::metrics::Metrics;

/// Batches written at once. Two keep PostgreSQL's two cores busy while the
/// next batch fills; more split the queue into smaller batches.
const WRITERS: usize = 2;
/// The most todos in one statement.
const MAX_BATCH: usize = 128;
/// Creates waiting for a writer; a full queue holds the callers back.
const QUEUE: usize = 1024;

/// Where creates are handed to the writers. Cheap to clone.
#[derive(Clone)]
pub struct CreateQueue {
    sender: mpsc::Sender<Pending>,
}

struct Pending {
    todo: Todo,
    event: OutboxEvent,
    answer: oneshot::Sender<sqlx::Result<Todo>>,
    /// The request's span, so the writer's log line carries its id.
    span: tracing::Span,
}

impl Pending {
    fn row(&self) -> NewTodo<'_> {
        NewTodo {
            todo: &self.todo,
            event: &self.event,
        }
    }
}

impl CreateQueue {
    /// Starts the writers on the current tokio runtime. They stop once
    /// every clone of the queue is dropped and the queue is empty.
    pub fn start(pool: PgPool, metrics: &Metrics) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(dispatch(receiver, pool, metrics.clone()));
        Self { sender }
    }

    /// Stores `todo` and its `event` together; returns the todo once both
    /// are committed, or why neither is.
    pub async fn create(&self, todo: Todo, event: OutboxEvent) -> Result<Todo> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            todo,
            event,
            answer,
            span: tracing::Span::current(),
        };
        self.sender.send(pending).await.map_err(|_| stopped())?;
        Ok(answered.await.map_err(|_| stopped())??)
    }
}

impl CreateQueue {
    /// Creates handed in and not yet taken by a writer.
    pub fn waiting(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

fn stopped() -> AppError {
    AppError::Internal(anyhow::anyhow!("the create queue's writers have stopped"))
}

/// Takes a batch from the queue whenever a writer is free.
async fn dispatch(mut receiver: mpsc::Receiver<Pending>, pool: PgPool, metrics: Metrics) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    loop {
        let writer = Arc::clone(&writers)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        tokio::spawn(write(pool.clone(), batch, metrics.clone(), writer));
    }
}

/// Writes a batch in one statement. If it fails, nothing of it is stored,
/// and each create is tried alone: one create that cannot be stored must
/// not fail the others that happened to share its statement.
async fn write(pool: PgPool, batch: Vec<Pending>, metrics: Metrics, _writer: OwnedSemaphorePermit) {
    metrics.create_batch_size.observe(batch.len() as f64);
    let rows: Vec<NewTodo<'_>> = batch.iter().map(Pending::row).collect();
    let result = todos::insert_with_events(&pool, &rows).await;
    drop(rows);
    match result {
        Ok(()) => {
            for pending in batch {
                answer(pending, Ok(()), &metrics.todos_created);
            }
        }
        Err(e) if batch.len() == 1 => {
            let pending = batch.into_iter().next().expect("one create");
            answer(pending, Err(e), &metrics.todos_created);
        }
        Err(e) => {
            tracing::debug!(error = %e, creates = batch.len(), "a batch of creates failed; trying each alone");
            futures::future::join_all(batch.into_iter().map(|pending| {
                let (pool, created) = (&pool, &metrics.todos_created);
                async move {
                    let result = todos::insert_with_events(pool, &[pending.row()]).await;
                    answer(pending, result, created);
                }
            }))
            .await;
        }
    }
}

/// Counts and logs a stored create, and tells its caller, if still there.
fn answer(pending: Pending, result: sqlx::Result<()>, created: &IntCounter) {
    if result.is_ok() {
        created.inc();
        pending
            .span
            .in_scope(|| tracing::info!(todo.id = %pending.todo.id, "todo created"));
    }
    let _ = pending.answer.send(result.map(|()| pending.todo));
}
