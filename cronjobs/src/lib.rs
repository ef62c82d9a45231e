//! Docket's jobs, as one binary with subcommands (see `cli`):
//!
//! - `wikipedia-todo`: adds "Read <random Wikipedia article>" through the
//!   app's JSON API (hourly, from a Kubernetes CronJob);
//! - `listen`: runs that job for every request on the NATS subject
//!   `jobs.wikipedia-todo`, with health and metrics on `PORT`;
//! - `next-request`: runs it for one request taken from the JetStream
//!   consumer `JOBS/wikipedia-todo`, then exits (a scale-to-zero Job);
//! - `backup` / `restore <file>`: `pg_dump` / `pg_restore` of `DATABASE_URL`.
//!
//! The jobs talk to the app over HTTP only, like any other client.

pub mod backup;
pub mod cli;
pub mod config;
pub mod error;
pub mod listen;
pub mod metrics;
pub mod next_request;
pub mod ops;
pub mod pg_tools;
pub mod retry;
pub mod todo_api;
pub mod wikipedia;

pub use error::Error;
