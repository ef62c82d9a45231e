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
//! Once a change is committed (or its commit failed, which may still have
//! happened), the writer moves the replica's [`Generation`] before it
//! answers: whoever made the change, and anyone after, is never answered
//! from a read made before it (the page cache, the API's known tags), with
//! no wait for the `NOTIFY` to come back.
//!
//! Changes that arrive while others are being written are taken together
//! (group commit). Under load a change's cost is mostly per statement, not
//! per row: PostgreSQL's parse, commit and outbox trigger, the NOTIFY that
//! signals every listening backend, and a round trip each way. So the
//! creates of a batch share one statement with their events; its updates
//! another (a todo changed twice in one batch gets both changes, in order);
//! its deletes a third. Nothing waits to fill a batch: a change is written
//! at once when a writer is free, and a batch is whatever queued while the
//! writers were busy.

use std::collections::HashMap;
use std::slice;
use std::sync::Arc;

use futures::future::join_all;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::db::outbox::{self, Edit};
use crate::domain::{Actor, Todo, TodoId, TodoText, storage_now};
use crate::error::{AppError, Result};
use crate::generation::Generation;
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
    by: Actor,
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
    /// Starts the writers on the current tokio runtime, moving
    /// `generation` after each commit. They stop once every clone of the
    /// writer is dropped and the queue is empty.
    pub fn start(pool: PgPool, metrics: &Metrics, generation: Generation) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(dispatch(receiver, pool, metrics.clone(), generation));
        Self { sender }
    }

    /// Makes `change` on behalf of `by` and stores its event with it;
    /// returns the todo as the change left it once both are committed, or
    /// why neither is.
    pub async fn make(&self, change: Change, by: Actor) -> Result<Todo> {
        let (answer, answered) = oneshot::channel();
        let reply = Reply {
            answer,
            span: tracing::Span::current(),
        };
        let pending = Pending { change, by, reply };
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
async fn dispatch(
    mut receiver: mpsc::Receiver<Pending>,
    pool: PgPool,
    metrics: Metrics,
    generation: Generation,
) {
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
        tokio::spawn(write(
            pool.clone(),
            batch,
            metrics.clone(),
            generation.clone(),
            writer,
        ));
    }
}

/// Writes a batch: its creates together, its updates together and its
/// deletes together, each kind in one statement.
async fn write(
    pool: PgPool,
    batch: Vec<Pending>,
    metrics: Metrics,
    generation: Generation,
    _writer: OwnedSemaphorePermit,
) {
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut deletes = Vec::new();
    for Pending { change, by, reply } in batch {
        match change {
            Change::Create(todo) => creates.push((Create(todo.made_by(&by), by), reply)),
            Change::Update { id, done, text } => {
                updates.push((Edit { id, done, text, by }, reply));
            }
            Change::Delete(id) => deletes.push((Delete(id, by), reply)),
        }
    }
    let (pool, metrics, generation) = (&pool, &metrics, &generation);
    tokio::join!(
        store_together(pool, creates, metrics, generation),
        store_together(pool, updates, metrics, generation),
        store_together(pool, deletes, metrics, generation),
    );
}

/// A kind of change the writers store together with others of its kind.
trait Together: Sized + Sync {
    /// Stores the changes, in the order given, and their events, all or
    /// none; returns, for each change, its todo as the change left it, or
    /// `None` if there was none to change.
    fn store(
        pool: &PgPool,
        changes: &[Self],
        metrics: &Metrics,
    ) -> impl Future<Output = Result<Vec<Option<Todo>>>> + Send;

    /// Who asked for the change.
    fn by(&self) -> &Actor;

    /// Counts and logs a stored change, in its request's span.
    fn stored(todo: &Todo, by: &Actor, metrics: &Metrics);
}

struct Create(Todo, Actor);
struct Delete(TodoId, Actor);

impl Together for Create {
    async fn store(
        pool: &PgPool,
        creates: &[Self],
        metrics: &Metrics,
    ) -> Result<Vec<Option<Todo>>> {
        metrics.create_batch_size.observe(creates.len() as f64);
        let new: Vec<(&Todo, &Actor)> = creates.iter().map(|Create(todo, by)| (todo, by)).collect();
        outbox::create(pool, &new).await?;
        Ok(creates
            .iter()
            .map(|create| Some(create.0.clone()))
            .collect())
    }

    fn by(&self) -> &Actor {
        &self.1
    }

    fn stored(todo: &Todo, by: &Actor, metrics: &Metrics) {
        metrics.todos_created.inc();
        tracing::info!(todo.id = %todo.id, actor = %by, "todo created");
    }
}

impl Together for Edit {
    async fn store(pool: &PgPool, edits: &[Self], _: &Metrics) -> Result<Vec<Option<Todo>>> {
        Ok(outbox::edit(pool, edits, storage_now()).await?)
    }

    fn by(&self) -> &Actor {
        &self.by
    }

    fn stored(todo: &Todo, by: &Actor, _: &Metrics) {
        tracing::info!(todo.id = %todo.id, todo.done = todo.done, actor = %by, "todo updated");
    }
}

impl Together for Delete {
    /// A todo deleted twice in the batch is found by the first delete only.
    async fn store(pool: &PgPool, deletes: &[Self], _: &Metrics) -> Result<Vec<Option<Todo>>> {
        let asked: Vec<(TodoId, &Actor)> = deletes.iter().map(|Delete(id, by)| (*id, by)).collect();
        let mut deleted = by_id(outbox::delete(pool, &asked, storage_now()).await?);
        Ok(deletes
            .iter()
            .map(|Delete(id, _)| deleted.remove(id))
            .collect())
    }

    fn by(&self) -> &Actor {
        &self.1
    }

    fn stored(todo: &Todo, by: &Actor, _: &Metrics) {
        tracing::info!(todo.id = %todo.id, actor = %by, "todo deleted");
    }
}

fn by_id(todos: Vec<Todo>) -> HashMap<TodoId, Todo> {
    todos.into_iter().map(|todo| (todo.id, todo)).collect()
}

/// Stores changes together, and answers each with its todo, or
/// [`AppError::TodoNotFound`] if there was none to change. If
/// storing them together fails, nothing of it is stored, and each is tried
/// alone: one change that cannot be stored must not fail the others that
/// happened to share its statement. Moves `generation` after each attempt,
/// before answering ([`Generation::bump_after`]).
async fn store_together<C: Together>(
    pool: &PgPool,
    changes: Vec<(C, Reply)>,
    metrics: &Metrics,
    generation: &Generation,
) {
    if changes.is_empty() {
        return;
    }
    let (changes, replies): (Vec<C>, Vec<Reply>) = changes.into_iter().unzip();
    let stored = generation
        .bump_after(C::store(pool, &changes, metrics))
        .await;
    match stored {
        Ok(todos) => {
            for ((todo, reply), change) in todos.into_iter().zip(replies).zip(&changes) {
                answer(
                    reply,
                    todo.ok_or(AppError::TodoNotFound),
                    change.by(),
                    metrics,
                    C::stored,
                );
            }
        }
        Err(e) if changes.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, changes = changes.len(), "changes stored together failed; trying each alone");
            join_all(
                changes
                    .iter()
                    .zip(replies)
                    .map(|(change, reply)| async move {
                        let stored = generation
                            .bump_after(
                                C::store(pool, slice::from_ref(change), metrics)
                                    .instrument(reply.span.clone()),
                            )
                            .await;
                        let result = stored.and_then(|todos| {
                            todos
                                .into_iter()
                                .flatten()
                                .next()
                                .ok_or(AppError::TodoNotFound)
                        });
                        answer(reply, result, change.by(), metrics, C::stored);
                    }),
            )
            .await;
        }
    }
}

fn answer(
    reply: Reply,
    result: Result<Todo>,
    by: &Actor,
    metrics: &Metrics,
    stored: fn(&Todo, &Actor, &Metrics),
) {
    if let Ok(todo) = &result {
        reply.span.in_scope(|| stored(todo, by, metrics));
    }
    reply.send(result);
}
