//! What the app shows, read in one place as changes are made in one place
//! ([`crate::changes`]): handlers ask here, never the database directly.

use std::sync::Arc;

use crate::db::todos;
use crate::domain::{Cursor, Limit, Todo, TodoId, TodoLists};
use crate::error::{AppError, Result};
use crate::state::AppState;

/// What the page shows: the newest todos of each list and each list's
/// total, from a read that started after this call (one shared with the
/// requests that want them at the same time: [`crate::read_together`]).
pub async fn lists(state: &AppState) -> Result<Arc<TodoLists>> {
    state
        .lists
        .read(|| async { Ok(todos::lists(&state.pool).await?) })
        .await
}

/// One todo, or [`AppError::TodoNotFound`].
pub async fn todo(state: &AppState, id: TodoId) -> Result<Todo> {
    todos::find(&state.pool, id)
        .await?
        .ok_or(AppError::TodoNotFound)
}

/// One page of the JSON list, newest first, and where the next one starts.
pub async fn page(
    state: &AppState,
    limit: Limit,
    cursor: Option<Cursor>,
) -> Result<(Vec<Todo>, Option<Cursor>)> {
    Ok(todos::page(&state.pool, limit, cursor).await?)
}
