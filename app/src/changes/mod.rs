//! The three changes a todo can undergo, and the one way they are made:
//! handed to the [`Writer`], which stores each change and its event in the
//! outbox in one transaction (either both are stored or neither is, so no
//! accepted change goes unpublished) and runs it to its end whatever
//! happens to the request that asked for it.

mod keyed;
mod writer;

pub use keyed::{KeyedAnswer, KeyedCreate, create_once};
pub use writer::{Change, Writer};

use crate::domain::{Todo, TodoId, TodoText};
use crate::error::Result;

pub async fn create(writer: &Writer, text: &TodoText) -> Result<Todo> {
    writer.make(Change::Create(Todo::new(text))).await
}

/// Changes what is given; `None` leaves a field as it is.
pub async fn update(
    writer: &Writer,
    id: TodoId,
    done: Option<bool>,
    text: Option<&TodoText>,
) -> Result<Todo> {
    let text = text.cloned();
    writer.make(Change::Update { id, done, text }).await
}

pub async fn delete(writer: &Writer, id: TodoId) -> Result<Todo> {
    writer.make(Change::Delete(id)).await
}
