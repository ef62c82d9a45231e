//! Reads and writes of the `todos` table.

use events::TodoField;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Cursor, Limit, Todo, TodoId, TodoLists, TodoText, storage_now};

struct TodoRow {
    id: Uuid,
    text: String,
    done: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<TodoRow> for Todo {
    fn from(row: TodoRow) -> Self {
        Todo {
            id: row.id.into(),
            text: row.text,
            done: row.done,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Changes what is given; `None` leaves a field as it is. Returns the todo
/// after the change and which fields changed value. The row stays locked
/// until the transaction ends, which orders concurrent changes.
pub async fn update(
    conn: &mut PgConnection,
    id: TodoId,
    done: Option<bool>,
    text: Option<&TodoText>,
) -> sqlx::Result<Option<(Todo, Vec<TodoField>)>> {
    let row = sqlx::query!(
        r#"update todos as t
           set done = coalesce($2, t.done), text = coalesce($3, t.text), updated_at = $4
           from (select id, text, done from todos where id = $1 for update) as old
           where t.id = old.id
           returning t.id, t.text, t.done, t.created_at, t.updated_at,
                     old.text as "old_text!", old.done as "old_done!""#,
        id.as_uuid(),
        done,
        text.map(TodoText::as_str),
        storage_now(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| {
        let mut changed = Vec::new();
        if row.text != row.old_text {
            changed.push(TodoField::Text);
        }
        if row.done != row.old_done {
            changed.push(TodoField::Done);
        }
        let todo = Todo {
            id: row.id.into(),
            text: row.text,
            done: row.done,
            created_at: row.created_at,
            updated_at: row.updated_at,
        };
        (todo, changed)
    }))
}

pub async fn delete(conn: &mut PgConnection, id: TodoId) -> sqlx::Result<Option<Todo>> {
    let row = sqlx::query_as!(
        TodoRow,
        "delete from todos where id = $1
         returning id, text, done, created_at, updated_at",
        id.as_uuid(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Todo::from))
}

pub async fn find(pool: &PgPool, id: TodoId) -> sqlx::Result<Option<Todo>> {
    let row = sqlx::query_as!(
        TodoRow,
        "select id, text, done, created_at, updated_at from todos where id = $1",
        id.as_uuid(),
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Todo::from))
}

/// The newest [`TodoLists::SHOWN`] todos of each list and each list's total,
/// in one round trip: what the page shows.
pub async fn lists(pool: &PgPool) -> sqlx::Result<TodoLists> {
    let rows = sqlx::query!(
        // Two index scans (todos_done_id_idx) merged in id order; each list's
        // total is counted once, as an init plan.
        r#"select id as "id!", text as "text!", done as "done!",
                  created_at as "created_at!", updated_at as "updated_at!",
                  case when done then (select count(*) from todos where done)
                       else (select count(*) from todos where not done) end as "total!"
           from ((select id, text, done, created_at, updated_at from todos
                  where not done order by id desc limit $1)
                 union all
                 (select id, text, done, created_at, updated_at from todos
                  where done order by id desc limit $1)) as shown
           order by id desc"#,
        i64::from(TodoLists::SHOWN),
    )
    .fetch_all(pool)
    .await?;
    let mut lists = TodoLists::default();
    for row in rows {
        let total = u64::try_from(row.total).unwrap_or_default();
        let todo = Todo {
            id: row.id.into(),
            text: row.text,
            done: row.done,
            created_at: row.created_at,
            updated_at: row.updated_at,
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
    let rows = sqlx::query_as!(
        TodoRow,
        "select id, text, done, created_at, updated_at from todos
         where $1::uuid is null or id < $1
         order by id desc
         limit $2",
        cursor.map(|c| c.todo_id().as_uuid()),
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
