//! What every Docket service does the same way, written once:
//!
//! - [`env`]: typed environment variables, with one-line errors that name
//!   the variable (and never echo a secret);
//! - [`nats`]: where NATS is and who to connect as (`NATS_URL`, `NATS_USER`,
//!   `NATS_PASSWORD` or `NATS_PASSWORD_FILE`);
//! - [`ops`]: the operations router, `/healthz`, `/readyz` and `/metrics`;
//! - [`postgres`]: where the installed PostgreSQL programs are;
//! - [`stop`]: the signals that ask a process to stop;
//! - [`backoff`]: retries with exponential backoff through `backon`;
//! - [`body`]: an HTTP answer's body read no further than a limit.
//!
//! The crate's one error type is [`EnvError`]: the other parts cannot fail
//! in a way their caller does not already describe.

pub mod backoff;
pub mod body;
pub mod env;
pub mod jetstream;
pub mod nats;
pub mod ops;
pub mod postgres;
pub mod stop;

pub use env::{Env, EnvError};
pub use nats::{Credentials, NatsSettings};
