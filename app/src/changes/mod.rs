//! The three changes a todo can undergo, and the one way they are made:
//! handed to the [`Writer`], which stores each change and its event in the
//! outbox in one transaction (either both are stored or neither is, so no
//! accepted change goes unpublished) and runs it to its end whatever
//! happens to the request that asked for it. Every change names who made
//! it ([`Actor`]): the todo records it and its event carries it.

mod keyed;
mod writer;

pub use keyed::{KeyedAnswer, KeyedCreate, create_once};
pub use writer::{Change, Writer};

use crate::domain::{Actor, Todo, TodoId, TodoText};
use crate::error::Result;

pub async fn create(writer: &Writer, text: &TodoText, by: Actor) -> Result<Todo> {
    writer.make(Change::Create(Todo::new(text)), by).await
}

/// Changes what is given; `None` leaves a field as it is.
pub async fn update(
    writer: &Writer,
    id: TodoId,
    done: Option<bool>,
    text: Option<&TodoText>,
    by: Actor,
) -> Result<Todo> {
    let text = text.cloned();
    writer.make(Change::Update { id, done, text }, by).await
}

pub async fn delete(writer: &Writer, id: TodoId, by: Actor) -> Result<Todo> {
    writer.make(Change::Delete(id), by).await
}
