//! The `idempotency_keys` table: the first answer to each keyed create.

use sqlx::PgConnection;
use uuid::Uuid;

/// How long a key holds. The IETF draft leaves it to the server; a day
/// covers any client's retries and bounds the table to a day's keyed
/// creates (which the write rate limit bounds in turn).
pub const LIFETIME_HOURS: i32 = 24;

/// The most expired keys one keyed create deletes: a bound on the extra
/// work any request takes on, and still far more than it adds (one).
pub const EXPIRED_PER_CREATE: i64 = 100;

/// A keyed create's first answer, as stored.
pub struct StoredAnswer {
    pub request_hash: Vec<u8>,
    pub todo_id: Uuid,
    pub status: i16,
    pub response: String,
}

/// The key and its answer, to store with the todo.
pub struct NewKey<'a> {
    pub token_name: &'a str,
    pub key: &'a str,
    pub request_hash: &'a [u8; 32],
    pub todo_id: Uuid,
    pub status: i16,
    pub response: &'a str,
}

/// Stores `new` in the caller's transaction if its key is free or held by
/// an expired key (which it replaces); returns whether it did. A key being
/// stored by a transaction still open is waited for (the primary key's
/// check does that), so of two requests with one key only one stores it.
pub async fn claim(conn: &mut PgConnection, new: &NewKey<'_>) -> sqlx::Result<bool> {
    let claimed = sqlx::query_scalar!(
        r#"insert into idempotency_keys as k
               (token_name, key, request_hash, todo_id, status, response)
           values ($1, $2, $3, $4, $5, $6::text::json)
           on conflict (token_name, key) do update
               set request_hash = excluded.request_hash, todo_id = excluded.todo_id,
                   status = excluded.status, response = excluded.response,
                   created_at = excluded.created_at
               where k.created_at < now() - make_interval(hours => $7)
           returning true as "claimed!""#,
        new.token_name,
        new.key,
        &new.request_hash[..],
        new.todo_id,
        new.status,
        new.response,
        LIFETIME_HOURS,
    )
    .fetch_optional(conn)
    .await?;
    Ok(claimed.is_some())
}

/// The answer stored under a key that has not expired.
pub async fn find(
    conn: &mut PgConnection,
    token_name: &str,
    key: &str,
) -> sqlx::Result<Option<StoredAnswer>> {
    sqlx::query_as!(
        StoredAnswer,
        r#"select request_hash, todo_id, status, response::text as "response!"
           from idempotency_keys
           where token_name = $1 and key = $2
             and created_at >= now() - make_interval(hours => $3)"#,
        token_name,
        key,
        LIFETIME_HOURS,
    )
    .fetch_optional(conn)
    .await
}

/// Deletes up to [`EXPIRED_PER_CREATE`] expired keys, oldest first,
/// skipping any another transaction holds. Run with each keyed create, so
/// the table shrinks whenever it grows and needs no job of its own.
pub async fn delete_expired(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let deleted = sqlx::query!(
        "delete from idempotency_keys
         where (token_name, key) in (
             select token_name, key from idempotency_keys
             where created_at < now() - make_interval(hours => $1)
             order by created_at
             limit $2
             for update skip locked)",
        LIFETIME_HOURS,
        EXPIRED_PER_CREATE,
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}
