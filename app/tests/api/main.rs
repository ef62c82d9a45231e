//! Black-box tests of the todo app over HTTP, against a real PostgreSQL and
//! a real nats-server (private ones, or `DATABASE_URL`/`NATS_URL` when set).

mod actors;
mod api;
mod cancelled_changes;
mod counts;
mod events;
mod health;
mod helpers;
mod idempotency;
mod list_reads;
mod live;
mod not_modified;
mod openapi;
mod outbox;
mod page_cache;
mod pages;
mod picture;
mod rate_limit;
mod relay;
mod router;
mod security;
mod shutdown;
mod sign_in;
mod tokens;
mod write_reads;
mod writer;
