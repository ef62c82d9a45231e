//! What the app shows, read in one place as changes are made in one place
//! ([`crate::changes`]): handlers ask here, never the database directly.

use std::sync::Arc;

use crate::db::todos;
use crate::domain::{PageKey, Todo, TodoId, TodoLists};
use crate::error::{AppError, Result};
use crate::read_together::KeyedReads;
use crate::state::AppState;
use crate::views::json_page::JsonPage;

/// The JSON list's pages, each read and encoded once for the requests that
/// want it at once.
pub type Pages = KeyedReads<PageKey, JsonPage>;

/// The most pages whose reads are shared at once. Clients mostly ask for
/// the first page; a cursor is the client's to choose, so the record is
/// bounded (see [`KeyedReads`]).
pub const SHARED_PAGES: usize = 256;

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

/// One page of the JSON list, as sent, from a read that started after this
/// call (one shared with the requests that want the same page at the same
/// time, as the lists are, and encoded once for all of them).
pub async fn page(state: &AppState, page: PageKey) -> Result<Arc<JsonPage>> {
    state
        .pages
        .read(page, || async {
            let (todos, next) = todos::page(&state.pool, page.limit, page.cursor).await?;
            JsonPage::encode(&todos, next).map_err(|e| {
                AppError::Internal(anyhow::Error::new(e).context("serializing a page"))
            })
        })
        .await
}
