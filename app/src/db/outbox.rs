//! The `outbox` table: events written with the change, read by the relay.

use events::TodoEvent;
use sqlx::PgConnection;
use uuid::Uuid;

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
/// order given: the only way events enter the outbox. The insert trigger
/// notifies the relay when that transaction commits.
pub async fn enqueue(conn: &mut PgConnection, events: &[OutboxEvent]) -> sqlx::Result<()> {
    let event_ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let subjects: Vec<&str> = events.iter().map(|event| event.subject).collect();
    let payloads: Vec<&str> = events.iter().map(|event| event.payload.as_str()).collect();
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
