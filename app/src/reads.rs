//! What the app shows, read in one place as changes are made in one place
//! ([`crate::changes`]): handlers ask here, never the database directly.

use std::sync::Arc;

use sqlx::PgPool;

use crate::db::todos;
use crate::domain::{PageKey, Shown, Todo, TodoId, TodoLists};
use crate::error::{AppError, Result};
use crate::read_together::{KeyedReads, ReadTogether};
use crate::views::json_page::JsonPage;

/// The most pages whose reads are shared at once. Clients mostly ask for
/// the first page; a cursor is the client's to choose, so the record is
/// bounded (see [`KeyedReads`]).
pub const SHARED_PAGES: usize = 256;

/// The most lists of other lengths than the first ([`Shown`]) whose reads
/// are shared at once; bounded as [`SHARED_PAGES`] is.
pub const SHARED_LONGER_LISTS: usize = 64;

/// The reads, each shared by the requests that want the same thing at the
/// same time ([`crate::read_together`]).
pub struct Reads {
    pool: PgPool,
    /// The lists as a page first shows them: what nearly every request wants.
    lists: ReadTogether<TodoLists>,
    /// The lists of a page whose visitor asked to see more.
    longer_lists: KeyedReads<Shown, TodoLists>,
    /// The JSON list's pages, each read and encoded once for the requests
    /// that want it at once.
    pages: KeyedReads<PageKey, JsonPage>,
}

impl Reads {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            lists: ReadTogether::default(),
            longer_lists: KeyedReads::new(SHARED_LONGER_LISTS),
            pages: KeyedReads::new(SHARED_PAGES),
        }
    }

    /// What the page shows: the newest todos of each list, as many as
    /// `shown` asks for, and each list's total, from a read that started
    /// after this call.
    pub async fn lists(&self, shown: Shown) -> Result<Arc<TodoLists>> {
        let read = || async { Ok(todos::lists(&self.pool, shown).await?) };
        if shown.is_first() {
            self.lists.read(read).await
        } else {
            self.longer_lists.read(shown, read).await
        }
    }

    /// One todo, or [`AppError::TodoNotFound`].
    pub async fn todo(&self, id: TodoId) -> Result<Todo> {
        todos::find(&self.pool, id)
            .await?
            .ok_or(AppError::TodoNotFound)
    }

    /// One page of the JSON list, as sent, from a read that started after
    /// this call (encoded once for every request that shares the read).
    pub async fn page(&self, page: PageKey) -> Result<Arc<JsonPage>> {
        self.pages
            .read(page, || async {
                let (todos, next) = todos::page(&self.pool, page.limit, page.cursor).await?;
                JsonPage::encode(&todos, next).map_err(|e| {
                    AppError::Internal(anyhow::Error::new(e).context("serializing a page"))
                })
            })
            .await
    }
}
