//! The one writer of changes.
//!
//! Every change runs in a task of the writer's, so a caller that stops
//! waiting (the client hung up, the request timed out) cannot cut it off.
//! Cut off inside sqlx's `BEGIN` (sqlx#4393, in 0.8 and 0.9.0), a
//! connection goes back to the pool with its transaction open, and the next
//! request on it runs inside that transaction: its writes are answered as
//! stored and then committed or rolled back by a stranger. Seen under load
//! when wrk stops mid-request; `tests/api/cancelled_changes.rs` reproduces
//! it.
//!
//! Changes that arrive while others are being written are taken together
//! (group commit). Under load a create's cost is mostly per statement, not
//! per row: PostgreSQL's parse, commit and outbox trigger, the NOTIFY that
//! signals every listening backend, and a round trip each way. So the
//! creates of a batch share one statement; updates and deletes each run
//! in their own, since each locks its row and its event depends on what the
//! row held. Nothing waits to fill a batch: a change is written at once
//! when a writer is free, and a batch is whatever queued while the writers
//! were busy.

use std::slice;
use std::sync::Arc;

use events::{EventType, TodoEvent};
use futures::future::join_all;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::db::outbox::{self, OutboxEvent};
use crate::db::todos;
use crate::domain::{Todo, TodoId, TodoText};
use crate::error::{AppError, Result};
use crate::metrics::Metrics;

/// Batches written at once. Two keep PostgreSQL's two cores busy while the
/// next batch fills; more split the queue into smaller batches.
const WRITERS: usize = 2;
/// The most changes taken in one batch, and so todos in one create statement.
const MAX_BATCH: usize = 128;
/// Changes waiting for a writer; a full queue holds the callers back.
const QUEUE: usize = 1024;

/// A change to make. A create carries the whole new todo (its id and times
/// are chosen by the app, not the database).
pub enum Change {
    Create(Todo),
    /// `None` leaves a field as it is.
    Update {
        id: TodoId,
        done: Option<bool>,
        text: Option<TodoText>,
    },
    Delete(TodoId),
}

/// Where changes are handed to the writers. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Pending>,
}

struct Pending {
    change: Change,
    reply: Reply,
}

/// Where a change's outcome goes, and the request's span, so the writer's
/// log lines carry its id.
struct Reply {
    answer: oneshot::Sender<Result<Todo>>,
    span: tracing::Span,
}

impl Reply {
    /// Tells the caller, if still there.
    fn send(self, result: Result<Todo>) {
        let _ = self.answer.send(result);
    }
}

impl Writer {
    /// Starts the writers on the current tokio runtime. They stop once
    /// every clone of the writer is dropped and the queue is empty.
    pub fn start(pool: PgPool, metrics: &Metrics) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(dispatch(receiver, pool, metrics.clone()));
        Self { sender }
    }

    /// Makes `change` and stores its event with it; returns the todo as the
    /// change left it once both are committed, or why neither is.
    pub async fn make(&self, change: Change) -> Result<Todo> {
        let (answer, answered) = oneshot::channel();
        let reply = Reply {
            answer,
            span: tracing::Span::current(),
        };
        let pending = Pending { change, reply };
        self.sender.send(pending).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Changes handed in and not yet taken by a writer.
    pub fn waiting(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

fn stopped() -> AppError {
    AppError::Internal(anyhow::anyhow!("the writers have stopped"))
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

/// Writes a batch: its creates together, the other changes each alone.
async fn write(pool: PgPool, batch: Vec<Pending>, metrics: Metrics, _writer: OwnedSemaphorePermit) {
    let mut creates = Vec::new();
    let mut others = Vec::new();
    for Pending { change, reply } in batch {
        match change {
            Change::Create(todo) => creates.push((todo, reply)),
            change => others.push(make_alone(&pool, change, reply, &metrics)),
        }
    }
    tokio::join!(create_together(&pool, creates, &metrics), join_all(others));
}

/// Stores creates in one statement. If it fails, nothing of it is stored,
/// and each create is tried alone: one create that cannot be stored must
/// not fail the others that happened to share its statement.
async fn create_together(pool: &PgPool, creates: Vec<(Todo, Reply)>, metrics: &Metrics) {
    if creates.is_empty() {
        return;
    }
    let (todos, replies): (Vec<Todo>, Vec<Reply>) = creates.into_iter().unzip();
    match store_created(pool, &todos, metrics).await {
        Ok(()) => {
            for (todo, reply) in todos.into_iter().zip(replies) {
                reply.span.in_scope(|| created(&todo, metrics));
                reply.send(Ok(todo));
            }
        }
        Err(e) if todos.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, creates = todos.len(), "a batch of creates failed; trying each alone");
            join_all(
                todos
                    .into_iter()
                    .zip(replies)
                    .map(|(todo, reply)| make_alone(pool, Change::Create(todo), reply, metrics)),
            )
            .await;
        }
    }
}

async fn make_alone(pool: &PgPool, change: Change, reply: Reply, metrics: &Metrics) {
    let result = make(pool, change, metrics)
        .instrument(reply.span.clone())
        .await;
    reply.send(result);
}

async fn make(pool: &PgPool, change: Change, metrics: &Metrics) -> Result<Todo> {
    match change {
        Change::Create(todo) => {
            store_created(pool, slice::from_ref(&todo), metrics).await?;
            created(&todo, metrics);
            Ok(todo)
        }
        Change::Update { id, done, text } => {
            let mut tx = pool.begin().await?;
            let (todo, changed) = todos::update(&mut tx, id, done, text.as_ref())
                .await?
                .ok_or(AppError::TodoNotFound)?;
            let event = serialise(&TodoEvent::updated(todo.snapshot(), changed))?;
            outbox::enqueue(&mut tx, &[event]).await?;
            tx.commit().await?;
            tracing::info!(todo.id = %todo.id, todo.done = todo.done, "todo updated");
            Ok(todo)
        }
        Change::Delete(id) => {
            let mut tx = pool.begin().await?;
            let todo = todos::delete(&mut tx, id)
                .await?
                .ok_or(AppError::TodoNotFound)?;
            let event = serialise(&TodoEvent::new(EventType::Deleted, todo.snapshot()))?;
            outbox::enqueue(&mut tx, &[event]).await?;
            tx.commit().await?;
            tracing::info!(todo.id = %todo.id, "todo deleted");
            Ok(todo)
        }
    }
}

/// Stores new todos and their `todo.created` events, all or none, the
/// events in the order given.
async fn store_created(pool: &PgPool, new: &[Todo], metrics: &Metrics) -> Result<()> {
    metrics.create_batch_size.observe(new.len() as f64);
    let events = new
        .iter()
        .map(|todo| serialise(&TodoEvent::new(EventType::Created, todo.snapshot())))
        .collect::<Result<Vec<_>>>()?;
    outbox::enqueue_created(pool, new, &events).await?;
    Ok(())
}

/// Counts and logs a stored create.
fn created(todo: &Todo, metrics: &Metrics) {
    metrics.todos_created.inc();
    tracing::info!(todo.id = %todo.id, "todo created");
}

fn serialise(event: &TodoEvent) -> Result<OutboxEvent> {
    OutboxEvent::new(event)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("serializing an event")))
}
