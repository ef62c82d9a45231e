//! Black-box tests of the `cronjobs` binary against a real todo app, a real
//! PostgreSQL, a real nats-server and local HTTP servers standing in for
//! Wikipedia (which is not reachable from tests).
//!
//! The todo app runs as its own binary, as in production (a service never
//! links another service's crate), so it must be built first:
//! `cargo build -p app && cargo nextest run -p cronjobs`. `cargo xtask test`
//! builds every binary before running any test.

mod backup;
mod helpers;
mod listen;
mod next_request;
mod wikipedia;
