//! The `outbox` table: events written with the change, read by the relay.
//! Only this module writes it.

use events::TodoEvent;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Actor, Todo};

/// An event as the outbox keeps it, serialised once, here: the bytes the
/// outbox stores are the bytes the relay publishes.
pub struct OutboxEvent {
    pub event_id: Uuid,
    pub subject: &'static str,
    pub payload: String,
}

impl OutboxEvent {
    pub fn new(event: &TodoEvent) -> serde_json::Result<Self> {
        Ok(Self {
            event_id: event.id,
            subject: event.subject(),
            payload: serde_json::to_string(event)?,
        })
    }
}

/// Writes events in the caller's transaction, in one statement and in the
/// order given, after the change they describe. The insert trigger
/// notifies the relay when that transaction commits. No events, no
/// statement: the trigger fires per statement, and would wake every
/// replica for nothing.
pub async fn enqueue(conn: &mut PgConnection, events: &[OutboxEvent]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let (event_ids, subjects, payloads) = columns(events);
    sqlx::query!(
        // `json` from text keeps the text as it is.
        "insert into outbox (event_id, subject, payload)
         select event_id, subject, payload::json
         from unnest($1::uuid[], $2::text[], $3::text[])
              with ordinality as event (event_id, subject, payload, position)
         order by position",
        &event_ids,
        &subjects as _,
        &payloads as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores new todos, each with who made it (its `created_by` and
/// `updated_by`), and their `todo.created` events in one statement: one
/// round trip, one commit and one outbox notification for all of them, all
/// rows or none, the events in the order given. A create's event follows
/// from the todo alone, so unlike [`enqueue`] it needs no transaction
/// around a change first (a keyed create runs it inside its own, with the
/// key); the writer's batches of creates depend on that
/// (a transaction of two inserts made about 40 % fewer creates per second
/// at 16 and 64 connections in `cargo xtask bench`).
pub async fn enqueue_created<'c>(
    executor: impl PgExecutor<'c>,
    new: &[(&Todo, &Actor)],
    events: &[OutboxEvent],
) -> sqlx::Result<()> {
    let todos = TodoColumns::of(new.iter().copied());
    let (event_ids, subjects, payloads) = columns(events);
    sqlx::query!(
        // `json` from text keeps the text as it is.
        "with todo as (insert into todos (id, text, done, created_at, updated_at,
                                          created_by, updated_by)
                       select id, text, done, created_at, updated_at, by::jsonb, by::jsonb
                       from unnest($1::uuid[], $2::text[], $3::bool[],
                                   $4::timestamptz[], $5::timestamptz[], $9::text[])
                            as new (id, text, done, created_at, updated_at, by))
         insert into outbox (event_id, subject, payload)
         select event_id, subject, payload::json
         from unnest($6::uuid[], $7::text[], $8::text[])
              with ordinality as event (event_id, subject, payload, position)
         order by position",
        &todos.ids,
        &todos.texts as _,
        &todos.dones,
        &todos.created,
        &todos.updated,
        &event_ids,
        &subjects as _,
        &payloads as _,
        &todos.by,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Stores edited todos (text, done, updated time, who edited last) and
/// their events in one
/// statement, the events in the order given. The todos must be locked in
/// the caller's transaction ([`crate::db::todos::lock_many`]). No events,
/// nothing edited: no statement, as in [`enqueue`].
pub async fn enqueue_edited(
    conn: &mut PgConnection,
    edited: &[(&Todo, &Actor)],
    events: &[OutboxEvent],
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let todos = TodoColumns::of(edited.iter().copied());
    let (event_ids, subjects, payloads) = columns(events);
    sqlx::query!(
        // `json` from text keeps the text as it is.
        "with todo as (update todos as t
                       set text = edited.text, done = edited.done,
                           updated_at = edited.updated_at, updated_by = edited.by::jsonb
                       from unnest($1::uuid[], $2::text[], $3::bool[], $4::timestamptz[],
                                   $8::text[])
                            as edited (id, text, done, updated_at, by)
                       -- The ids again, as an index condition: a join
                       -- alone may be planned (once, on a small table) as a
                       -- walk of the whole table.
                       where t.id = edited.id and t.id = any($1))
         insert into outbox (event_id, subject, payload)
         select event_id, subject, payload::json
         from unnest($5::uuid[], $6::text[], $7::text[])
              with ordinality as event (event_id, subject, payload, position)
         order by position",
        &todos.ids,
        &todos.texts as _,
        &todos.dones,
        &todos.updated,
        &event_ids,
        &subjects as _,
        &payloads as _,
        &todos.by,
    )
    .execute(conn)
    .await?;
    Ok(())
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

/// Events as the columns `unnest` takes: ids, subjects, payloads.
fn columns(events: &[OutboxEvent]) -> (Vec<Uuid>, Vec<&str>, Vec<&str>) {
    let ids = events.iter().map(|event| event.event_id).collect();
    let subjects = events.iter().map(|event| event.subject).collect();
    let payloads = events.iter().map(|event| event.payload.as_str()).collect();
    (ids, subjects, payloads)
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

/// A row waiting to be published.
pub struct PendingEvent {
    pub seq: i64,
    pub event_id: Uuid,
    pub subject: String,
    pub payload: String,
}

/// The oldest rows not yet published, in the order they were written.
pub async fn oldest(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<PendingEvent>> {
    sqlx::query_as!(
        PendingEvent,
        r#"select seq, event_id, subject, payload::text as "payload!" from outbox
           order by seq limit $1"#,
        limit,
    )
    .fetch_all(conn)
    .await
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
