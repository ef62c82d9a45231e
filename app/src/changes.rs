//! The three changes a todo can undergo. Each runs in one transaction (a
//! create in one statement, shared with the creates that queued beside it:
//! [`crate::create_queue`]) that writes the todo and its event to the
//! outbox together: either both are stored or neither is, so no accepted
//! change goes unpublished.

use events::{EventType, TodoEvent};
use tracing::Instrument;

use crate::db::outbox::{self, OutboxEvent};
use crate::db::todos;
use crate::domain::{Todo, TodoId, TodoText};
use crate::error::{AppError, Result};
use crate::state::AppState;

/// The create queue's writers run each write to its end, whatever happens
/// to the request.
pub async fn create(state: &AppState, text: &TodoText) -> Result<Todo> {
    let todo = Todo::new(text);
    let event = serialise(&TodoEvent::new(EventType::Created, todo.snapshot()))?;
    state.creates.create(todo, event).await
}

pub async fn update(
    state: &AppState,
    id: TodoId,
    done: Option<bool>,
    text: Option<&TodoText>,
) -> Result<Todo> {
    let state = state.clone();
    let text = text.cloned();
    to_completion(async move {
        let mut tx = state.pool.begin().await?;
        let (todo, changed) = todos::update(&mut tx, id, done, text.as_ref())
            .await?
            .ok_or(AppError::TodoNotFound)?;
        let event = serialise(&TodoEvent::updated(todo.snapshot(), changed))?;
        outbox::enqueue(&mut tx, &event).await?;
        tx.commit().await?;
        tracing::info!(todo.id = %todo.id, todo.done = todo.done, "todo updated");
        Ok(todo)
    })
    .await
}

pub async fn delete(state: &AppState, id: TodoId) -> Result<Todo> {
    let state = state.clone();
    to_completion(async move {
        let mut tx = state.pool.begin().await?;
        let todo = todos::delete(&mut tx, id)
            .await?
            .ok_or(AppError::TodoNotFound)?;
        let event = serialise(&TodoEvent::new(EventType::Deleted, todo.snapshot()))?;
        outbox::enqueue(&mut tx, &event).await?;
        tx.commit().await?;
        tracing::info!(todo.id = %todo.id, "todo deleted");
        Ok(todo)
    })
    .await
}

fn serialise(event: &TodoEvent) -> Result<OutboxEvent> {
    OutboxEvent::new(event)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("serializing an event")))
}

/// Runs a change to its end even when the request that asked for it goes
/// away (the client hung up, the request timed out). Cut off inside sqlx's
/// `BEGIN` (sqlx#4393, in 0.8 and 0.9.0), a connection goes back to the pool
/// with its transaction open, and the next request on it runs inside that
/// transaction: its writes are answered as stored and then committed or
/// rolled back by a stranger. Seen under load when wrk stops mid-request;
/// `tests/api/cancelled_changes.rs` reproduces it without this task.
async fn to_completion<T: Send + 'static>(
    change: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    // In the request's span, so the change's log lines carry its id.
    tokio::spawn(change.in_current_span()).await.map_err(|e| {
        AppError::Internal(anyhow::Error::new(e).context("the task making a change failed"))
    })?
}
