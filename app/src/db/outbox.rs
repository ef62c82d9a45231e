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

/// Writes the event in the caller's transaction; the insert trigger notifies
/// the relay when that transaction commits. Creates write theirs together
/// with their todos, in one statement: [`super::todos::insert_with_events`].
pub async fn enqueue(conn: &mut PgConnection, event: &OutboxEvent) -> sqlx::Result<()> {
    sqlx::query!(
        // `json` from text keeps the text as it is.
        "insert into outbox (event_id, subject, payload) values ($1, $2, $3::text::json)",
        event.event_id,
        event.subject,
        event.payload,
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
