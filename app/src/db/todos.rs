//! Reads of the `todos` table. Its writes go with their events, in
//! [`super::outbox`].

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Cursor, Limit, Shown, Todo, TodoId, TodoLists};

/// A row of `todos` as the queries here and in [`super::outbox`] read it.
pub(super) struct TodoRow {
    pub id: Uuid,
    pub text: String,
    pub done: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_by: Option<serde_json::Value>,
    pub updated_by: Option<serde_json::Value>,
}

impl From<TodoRow> for Todo {
    fn from(row: TodoRow) -> Self {
        Todo {
            id: row.id.into(),
            text: row.text,
            done: row.done,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: actor(row.created_by),
            updated_by: actor(row.updated_by),
        }
    }
}

/// An actor column as the contract reads it. Only the app writes these
/// columns, from [`events::Actor`]; a kind it does not know reads as
/// [`events::Actor::Unknown`], so only a value of some other shape, which
/// nothing writes, is shown as no one rather than failing the read.
pub(super) fn actor(column: Option<serde_json::Value>) -> Option<events::Actor> {
    column.and_then(|value| serde_json::from_value(value).ok())
}

pub async fn find(pool: &PgPool, id: TodoId) -> sqlx::Result<Option<Todo>> {
    let row = sqlx::query_as!(
        TodoRow,
        r#"select id, text, done, created_at, updated_at,
                  created_by as "created_by?", updated_by as "updated_by?"
           from todos where id = $1"#,
        id.as_uuid(),
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Todo::from))
}

/// The newest todos of each list, as many as `shown` asks for, and each
/// list's total, in one round trip: what the page shows.
pub async fn lists(db: impl PgExecutor<'_>, shown: Shown) -> sqlx::Result<TodoLists> {
    let rows = sqlx::query!(
        // Two index scans (todos_open_idx, todos_done_idx: one per list, see
        // the migration that makes them) merged in id order; each list's
        // total is the sum of its maintained slots (see the migration that
        // creates `todo_counts`), read once, as an init plan.
        r#"select id as "id!", text as "text!", done as "done!",
                  created_at as "created_at!", updated_at as "updated_at!",
                  created_by as "created_by?", updated_by as "updated_by?",
                  case when done then (select sum(total) from todo_counts where done)
                       else (select sum(total) from todo_counts where not done)
                  end::bigint as "total!"
           from ((select id, text, done, created_at, updated_at, created_by, updated_by
                  from todos where not done order by id desc limit $1)
                 union all
                 (select id, text, done, created_at, updated_at, created_by, updated_by
                  from todos where done order by id desc limit $2)) as shown
           order by id desc"#,
        i64::from(shown.open()),
        i64::from(shown.done()),
    )
    .fetch_all(db)
    .await?;
    let mut lists = TodoLists {
        shown,
        ..TodoLists::default()
    };
    for row in rows {
        let total = u64::try_from(row.total).unwrap_or_default();
        let todo = Todo {
            id: row.id.into(),
            text: row.text,
            done: row.done,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: actor(row.created_by),
            updated_by: actor(row.updated_by),
        };
        if todo.done {
            lists.done_total = total;
            lists.done.push(todo);
        } else {
            lists.open_total = total;
            lists.open.push(todo);
        }
    }
    Ok(lists)
}

/// One page of the JSON list, newest first, starting after `cursor`.
/// Fetches one extra row to know whether another page follows.
pub async fn page(
    pool: &PgPool,
    limit: Limit,
    cursor: Option<Cursor>,
) -> sqlx::Result<(Vec<Todo>, Option<Cursor>)> {
    let wanted = usize::from(limit.get());
    // No cursor: below the greatest uuid, which no todo has (the app
    // makes v7 ids). A bound in both cases keeps it an index condition
    // in the one plan the statement gets (`super::connect_options`).
    let below = cursor.map_or(Uuid::max(), |c| c.todo_id().as_uuid());
    let rows = sqlx::query_as!(
        TodoRow,
        r#"select id, text, done, created_at, updated_at,
                  created_by as "created_by?", updated_by as "updated_by?"
           from todos
           where id < $1
           order by id desc
           limit $2"#,
        below,
        i64::from(limit.get()) + 1,
    )
    .fetch_all(pool)
    .await?;
    let mut todos: Vec<Todo> = rows.into_iter().map(Todo::from).collect();
    let next = if todos.len() > wanted {
        todos.truncate(wanted);
        todos.last().map(|last| Cursor::after(last.id))
    } else {
        None
    };
    Ok((todos, next))
}
