//! A stored todo and its id.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, TodoText};

/// A todo's id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TodoId(Uuid);

impl TodoId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Reads an id from a URL path. Anything that is not a UUID names no todo,
    /// so callers answer 404 for it, as for an id that does not exist.
    pub fn parse(input: &str) -> Option<Self> {
        Uuid::try_parse(input).ok().map(Self)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for TodoId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for TodoId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for TodoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A todo as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Todo {
    #[schema(value_type = Uuid)]
    pub id: TodoId,
    pub text: String,
    pub done: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Who made it, as events carry it: `{"kind": "person", "subject",
    /// "name"}`, `{"kind": "token", "name"}` or `{"kind": "anonymous"}`;
    /// null for todos made before this was recorded.
    #[schema(value_type = Option<Object>)]
    pub created_by: Option<events::Actor>,
    /// Who changed it last, in the same shape as `created_by`.
    #[schema(value_type = Option<Object>)]
    pub updated_by: Option<events::Actor>,
}

impl Todo {
    /// A new, open todo, made now. Its times come from this clock, as do
    /// its events'; they are cut to microseconds, what PostgreSQL keeps, so
    /// the todo answered equals the todo read back. Who made it is set when
    /// it is stored ([`Self::made_by`]).
    pub fn new(text: &TodoText) -> Self {
        let now = storage_now();
        Todo {
            id: TodoId::new(),
            text: text.as_str().to_owned(),
            done: false,
            created_at: now,
            updated_at: now,
            created_by: None,
            updated_by: None,
        }
    }

    /// The new todo as `by` made it.
    pub fn made_by(self, by: &Actor) -> Self {
        Self {
            created_by: Some(by.to_event()),
            updated_by: Some(by.to_event()),
            ..self
        }
    }
}

/// Now, to the microsecond.
pub fn storage_now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .expect("a whole number of microseconds is a valid nanosecond")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_sort_by_creation() {
        let first = TodoId::new();
        let second = TodoId::new();
        assert!(second > first);
    }

    #[test]
    fn a_new_todo_keeps_only_what_the_database_keeps() {
        let todo = Todo::new(&TodoText::parse(" Water plants ").unwrap());
        assert_eq!(todo.text, "Water plants");
        assert!(!todo.done);
        assert_eq!(todo.created_at, todo.updated_at);
        assert_eq!(todo.created_at.nanosecond() % 1_000, 0);
    }

    #[test]
    fn a_path_that_is_not_a_uuid_names_no_todo() {
        assert_eq!(TodoId::parse("42"), None);
        assert_eq!(TodoId::parse("../etc/passwd"), None);
        let id = TodoId::new();
        assert_eq!(TodoId::parse(&id.to_string()), Some(id));
    }
}
