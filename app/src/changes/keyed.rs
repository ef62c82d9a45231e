//! Creates with an `Idempotency-Key`: the first stores its todo, its event
//! and its answer under the key, in one transaction; a retry with the same
//! key and request gets that answer back and creates nothing.
//!
//! They do not join the writer's batches of creates: those store every
//! todo of a batch in one statement, and a keyed create must first learn
//! whether its key is free. Each runs alone, in its own task like the
//! writer's (so a caller that stops waiting cannot cut it off inside
//! `BEGIN`, sqlx#4393; see [`super::writer`]), on the writer's pool, and
//! moves the replica's [`Generation`] after its commit as the writer does.
//!
//! Expired keys are deleted here, opportunistically: each keyed create
//! deletes up to `db::idempotency::EXPIRED_PER_CREATE` of them in its
//! transaction. The table holds at most a day's keys plus a backlog that
//! every keyed create shrinks; with no keyed creates it does not grow.

use sqlx::PgPool;
use tracing::Instrument;

use crate::db::idempotency::{self, NewKey};
use crate::db::outbox;
use crate::domain::{Actor, IdempotencyKey, Todo, TodoId, TodoText, TokenName};
use crate::error::{AppError, Result};
use crate::generation::Generation;
use crate::metrics::Metrics;

/// The status of a create's first answer.
const CREATED: u16 = 201;

/// A create that carries a key.
pub struct KeyedCreate {
    /// Keys are per token: two clients cannot collide, or read each
    /// other's answers.
    pub token: TokenName,
    pub key: IdempotencyKey,
    /// SHA-256 of the request, to tell a retry from a different request.
    pub request_hash: [u8; 32],
}

/// What a keyed create answers, first time or again.
pub struct KeyedAnswer {
    pub todo_id: TodoId,
    pub status: u16,
    /// The JSON body exactly as first sent.
    pub body: String,
    /// The answer was stored by an earlier request.
    pub replayed: bool,
}

/// Creates a todo of `text` under `keyed`, or answers as the first request
/// with the key did; [`AppError::IdempotencyKeyReused`] if that request
/// was a different one.
pub async fn create_once(
    pool: &PgPool,
    metrics: &Metrics,
    generation: &Generation,
    text: &TodoText,
    keyed: KeyedCreate,
) -> Result<KeyedAnswer> {
    let task = tokio::spawn(
        store_once(
            pool.clone(),
            metrics.clone(),
            generation.clone(),
            Todo::new(text),
            keyed,
        )
        .instrument(tracing::Span::current()),
    );
    task.await.map_err(|e| {
        AppError::Internal(anyhow::Error::new(e).context("the keyed create's task failed"))
    })?
}

async fn store_once(
    pool: PgPool,
    metrics: Metrics,
    generation: Generation,
    todo: Todo,
    keyed: KeyedCreate,
) -> Result<KeyedAnswer> {
    // A keyed create is an API client's: its token made it.
    let by = Actor::Token(keyed.token.clone());
    let todo = todo.made_by(&by);
    let body = serde_json::to_string(&todo)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("serializing a todo")))?;
    let new_key = NewKey {
        token_name: keyed.token.as_str(),
        key: keyed.key.as_str(),
        request_hash: &keyed.request_hash,
        todo_id: todo.id.as_uuid(),
        status: i16::try_from(CREATED).expect("a status fits"),
        response: &body,
    };
    // A key found taken is read in the next statement; if it expired
    // and was deleted in between, the second round finds it free.
    for _ in 0..2 {
        let mut tx = pool.begin().await?;
        if idempotency::claim(&mut tx, &new_key).await? {
            outbox::create(&mut *tx, &[(&todo, &by)]).await?;
            let expired = idempotency::delete_expired(&mut tx).await?;
            generation.bump_after(tx.commit()).await?;
            metrics.todos_created.inc();
            tracing::info!(todo.id = %todo.id, actor = %by, idempotency.expired_deleted = expired, "todo created");
            return Ok(KeyedAnswer {
                todo_id: todo.id,
                status: CREATED,
                body,
                replayed: false,
            });
        }
        let stored = idempotency::find(&mut tx, new_key.token_name, new_key.key).await?;
        tx.rollback().await?;
        let Some(stored) = stored else { continue };
        if stored.request_hash != keyed.request_hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        tracing::info!(todo.id = %stored.todo_id, "keyed create answered again");
        return Ok(KeyedAnswer {
            todo_id: stored.todo_id.into(),
            status: u16::try_from(stored.status)
                .map_err(|_| AppError::Internal(anyhow::anyhow!("a stored status is negative")))?,
            body: stored.response,
            replayed: true,
        });
    }
    Err(AppError::Internal(anyhow::anyhow!(
        "an Idempotency-Key was neither free nor found, twice"
    )))
}
