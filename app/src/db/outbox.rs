//! The `outbox` table: events written with the change, read by the relay.
//! Only this module writes it.
//!
//! A row keeps the event's fields; the relay serialises the event
//! ([`events::TodoEvent`]) when it reads the row ([`oldest`]). So each
//! change and its events are one statement, with no transaction around
//! it: a statement that edits or deletes todos writes their events from
//! the rows it changes, and holds their locks only while it runs. (Events
//! serialised by the app had to be built from the locked rows and sent back
//! before `COMMIT`: three waits on the app with the rows locked, and under
//! 64 connections toggling the same todos the writers queued on those
//! locks.)

use events::{EventType, SCHEMA_VERSION, TodoEvent, TodoField, TodoSnapshot};
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use super::todos::{TodoRow, actor};
use crate::domain::{Actor, Todo, TodoId, TodoText};

/// One todo's change: `None` leaves a field as it is.
pub struct Edit {
    pub id: TodoId,
    pub done: Option<bool>,
    pub text: Option<TodoText>,
    /// Who asked for it: the todo's `updated_by`, and its event's actor.
    pub by: Actor,
}

/// Stores new todos, each with who made it (its `created_by` and
/// `updated_by`), and their `todo.created` events in one statement: one
/// round trip, one commit and one outbox notification for all of them, all
/// rows or none, the events in the order given. (A transaction of two
/// inserts made about 40 % fewer creates per second at 16 and 64
/// connections in `cargo xtask bench`.) A keyed create runs it inside its
/// own transaction, with the key.
pub async fn create<'c>(
    executor: impl PgExecutor<'c>,
    new: &[(&Todo, &Actor)],
) -> sqlx::Result<()> {
    let todos = TodoColumns::of(new.iter().copied());
    let event_ids = fresh_event_ids(new.len());
    sqlx::query!(
        "with todo as (insert into todos (id, text, done, created_at, updated_at,
                                          created_by, updated_by)
                       select id, text, done, created_at, updated_at, by::jsonb, by::jsonb
                       from unnest($1::uuid[], $2::text[], $3::bool[],
                                   $4::timestamptz[], $5::timestamptz[], $6::text[])
                            as new (id, text, done, created_at, updated_at, by))
         insert into outbox (event_id, event_type, occurred_at, todo_id, todo_text,
                             todo_done, todo_created_at, todo_updated_at, actor)
         select event_id, 'todo.created', created_at, id, text, done, created_at,
                updated_at, by::jsonb
         from unnest($1::uuid[], $2::text[], $3::bool[], $4::timestamptz[],
                     $5::timestamptz[], $6::text[], $7::uuid[])
              with ordinality as new (id, text, done, created_at, updated_at, by,
                                      event_id, position)
         order by position",
        &todos.ids,
        &todos.texts as _,
        &todos.dones,
        &todos.created,
        &todos.updated,
        &todos.by,
        &event_ids,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Makes the edits, in the order given, each with its `todo.updated`
/// event, in one statement: all or none. A todo edited twice gets both
/// edits, each event showing the todo as its edit left it. Returns, for
/// each edit, the todo as it left it, or `None` if there was no such todo.
///
/// The todos are locked in id order, so two such statements never
/// deadlock, and the locks are held only while the statement runs.
pub async fn edit<'c>(
    executor: impl PgExecutor<'c>,
    edits: &[Edit],
    now: OffsetDateTime,
) -> sqlx::Result<Vec<Option<Todo>>> {
    let ids: Vec<Uuid> = edits.iter().map(|edit| edit.id.as_uuid()).collect();
    let dones: Vec<Option<bool>> = edits.iter().map(|edit| edit.done).collect();
    let texts: Vec<Option<&str>> = edits
        .iter()
        .map(|edit| edit.text.as_ref().map(|text| text.as_str()))
        .collect();
    let by: Vec<String> = edits.iter().map(|edit| edit.by.to_json()).collect();
    let event_ids = fresh_event_ids(edits.len());
    let rows = sqlx::query!(
        r#"with edit as (
               select * from unnest($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::uuid[])
                    with ordinality as edit (id, done, text, by, event_id, position)
           ),
           locked as (
               select id, text, done, created_at, created_by
               from todos where id = any($1) order by id for update
           ),
           -- Each edit with all the values given to its todo so far.
           given as (
               select edit.position, edit.id, edit.by, edit.event_id,
                      locked.text as stored_text, locked.done as stored_done,
                      locked.created_at, locked.created_by,
                      array_remove(array_agg(edit.text) over so_far, null) as texts,
                      array_remove(array_agg(edit.done) over so_far, null) as dones
               from edit join locked on locked.id = edit.id
               window so_far as (partition by edit.id order by edit.position)
           ),
           -- The todo as each edit leaves it: the last value given, else
           -- the stored one.
           after as (
               select position, id, by, event_id, created_at, created_by,
                      stored_text, stored_done,
                      coalesce(texts[cardinality(texts)], stored_text) as text,
                      coalesce(dones[cardinality(dones)], stored_done) as done
               from given
           ),
           -- And as it was before the edit.
           step as (
               select after.*,
                      coalesce(lag(text) over todo, stored_text) as text_before,
                      coalesce(lag(done) over todo, stored_done) as done_before,
                      position = max(position) over (partition by id) as last
               from after
               window todo as (partition by id order by position)
           ),
           updated as (
               update todos as t
               set text = step.text, done = step.done, updated_at = $6,
                   updated_by = step.by::jsonb
               from step
               -- The ids again, as an index condition: a join alone may be
               -- planned (once, on a small table) as a walk of the whole
               -- table.
               where step.last and t.id = step.id and t.id = any($1)
           ),
           queued as (
               insert into outbox (event_id, event_type, occurred_at, todo_id, todo_text,
                                   todo_done, todo_created_at, todo_updated_at, changed,
                                   actor)
               select event_id, 'todo.updated', $6, id, text, done, created_at, $6,
                      array_remove(array[case when text <> text_before then 'text' end,
                                         case when done <> done_before then 'done' end],
                                   null),
                      by::jsonb
               from step
               order by position
           )
           select position as "position!", id as "id!", text as "text!", done as "done!",
                  created_at as "created_at!", created_by as "created_by?"
           from step
           order by position"#,
        &ids,
        &dones as _,
        &texts as _,
        &by,
        &event_ids,
        now,
    )
    .fetch_all(executor)
    .await?;
    // One row per edit whose todo exists, in the edits' order, numbered
    // from 1 as `with ordinality` numbers them.
    let mut rows = rows.into_iter().peekable();
    Ok(edits
        .iter()
        .zip(1..)
        .map(|(edit, position)| {
            let row = rows.next_if(|row| row.position == position)?;
            Some(Todo {
                id: row.id.into(),
                text: row.text,
                done: row.done,
                created_at: row.created_at,
                updated_at: now,
                created_by: actor(row.created_by),
                updated_by: Some(edit.by.to_event()),
            })
        })
        .collect())
}

/// Deletes the todos, each with its `todo.deleted` event (the todo as it
/// was, and who deleted it), in one statement: all or none, the events in
/// the order given. Returns the todos that existed, as they were; a todo
/// given twice is deleted by the first. Locks in id order, as [`edit`]
/// does. The ids bound the delete as well as the lock, so neither side of
/// the join is ever planned as a walk of the whole table.
pub async fn delete<'c>(
    executor: impl PgExecutor<'c>,
    deletes: &[(TodoId, &Actor)],
    now: OffsetDateTime,
) -> sqlx::Result<Vec<Todo>> {
    let ids: Vec<Uuid> = deletes.iter().map(|(id, _)| id.as_uuid()).collect();
    let by: Vec<String> = deletes.iter().map(|(_, by)| by.to_json()).collect();
    let event_ids = fresh_event_ids(deletes.len());
    let rows = sqlx::query_as!(
        TodoRow,
        r#"with doomed as (select id from todos where id = any($1) order by id for update),
           deleted as (
               delete from todos as t using doomed
               where t.id = doomed.id and t.id = any($1)
               returning t.id, t.text, t.done, t.created_at, t.updated_at,
                         t.created_by, t.updated_by
           ),
           -- Each todo's first delete: the one that finds it.
           asked as (
               select distinct on (id) id, by, event_id, position
               from unnest($1::uuid[], $2::text[], $3::uuid[])
                    with ordinality as asked (id, by, event_id, position)
               order by id, position
           ),
           queued as (
               insert into outbox (event_id, event_type, occurred_at, todo_id, todo_text,
                                   todo_done, todo_created_at, todo_updated_at, actor)
               select asked.event_id, 'todo.deleted', $4, deleted.id, deleted.text,
                      deleted.done, deleted.created_at, deleted.updated_at, asked.by::jsonb
               from deleted join asked on asked.id = deleted.id
               order by asked.position
           )
           select id as "id!", text as "text!", done as "done!",
                  created_at as "created_at!", updated_at as "updated_at!",
                  created_by as "created_by?", updated_by as "updated_by?"
           from deleted"#,
        &ids,
        &by,
        &event_ids,
        now,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(Todo::from).collect())
}

/// An id for each of `count` events.
fn fresh_event_ids(count: usize) -> Vec<Uuid> {
    (0..count).map(|_| Uuid::now_v7()).collect()
}

/// Todos as the columns `unnest` takes.
struct TodoColumns<'a> {
    ids: Vec<Uuid>,
    texts: Vec<&'a str>,
    dones: Vec<bool>,
    created: Vec<OffsetDateTime>,
    updated: Vec<OffsetDateTime>,
    /// Who made the change, as the event contract's JSON.
    by: Vec<String>,
}

impl<'a> TodoColumns<'a> {
    fn of(todos: impl IntoIterator<Item = (&'a Todo, &'a Actor)>) -> Self {
        let mut columns = Self {
            ids: Vec::new(),
            texts: Vec::new(),
            dones: Vec::new(),
            created: Vec::new(),
            updated: Vec::new(),
            by: Vec::new(),
        };
        for (todo, by) in todos {
            columns.ids.push(todo.id.as_uuid());
            columns.texts.push(&todo.text);
            columns.dones.push(todo.done);
            columns.created.push(todo.created_at);
            columns.updated.push(todo.updated_at);
            columns.by.push(by.to_json());
        }
        columns
    }
}

/// Identifies the relay's advisory lock ("docket" in ASCII).
const LEADER_LOCK: i64 = 0x646f_636b_6574;

/// Takes the relay's session-level advisory lock if no other session holds
/// it: only the holder publishes. Released when `conn` closes.
pub async fn try_lead(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select pg_try_advisory_lock($1) as "locked!""#,
        LEADER_LOCK
    )
    .fetch_one(conn)
    .await
}

/// A row waiting to be published, as published.
pub struct PendingEvent {
    pub seq: i64,
    pub event_id: Uuid,
    pub subject: &'static str,
    /// The event's JSON.
    pub payload: String,
}

/// The oldest rows not yet published, in the order they were written.
pub async fn oldest(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<PendingEvent>> {
    let rows = sqlx::query!(
        r#"select seq, event_id, event_type, occurred_at, todo_id, todo_text, todo_done,
                  todo_created_at, todo_updated_at, changed, actor as "actor?"
           from outbox
           order by seq limit $1"#,
        limit,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let event_type: EventType = named(row.event_type)?;
            let event = TodoEvent {
                id: row.event_id,
                event_type,
                schema_version: SCHEMA_VERSION,
                occurred_at: row.occurred_at,
                todo: TodoSnapshot {
                    id: row.todo_id,
                    text: row.todo_text,
                    done: row.todo_done,
                    created_at: row.todo_created_at,
                    updated_at: row.todo_updated_at,
                },
                changed: row
                    .changed
                    .into_iter()
                    .map(named::<TodoField>)
                    .collect::<sqlx::Result<_>>()?,
                actor: actor(row.actor),
            };
            let payload =
                serde_json::to_string(&event).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(PendingEvent {
                seq: row.seq,
                event_id: row.event_id,
                subject: event_type.subject(),
                payload,
            })
        })
        .collect()
}

/// A value of the event contract by its name there (`todo.updated`,
/// `done`): the names the columns' checks allow.
fn named<T: DeserializeOwned>(name: String) -> sqlx::Result<T> {
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Removes rows JetStream has acknowledged.
pub async fn remove(conn: &mut PgConnection, seqs: &[i64]) -> sqlx::Result<()> {
    sqlx::query!("delete from outbox where seq = any($1)", seqs)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows written but not yet published.
pub async fn pending_count(conn: &mut PgConnection) -> sqlx::Result<i64> {
    let count = sqlx::query_scalar!(r#"select count(*) as "count!" from outbox"#)
        .fetch_one(conn)
        .await?;
    Ok(count)
}
