//! Integration tests: the real `broadcaster` binary against a private
//! nats-server and real HTTP receivers on loopback. Events are published
//! straight into `TODOS`, as the app's outbox relay does.
//!
//! `TEST_LOG=1` echoes every spawned process's output.

mod crash;
mod formats;
mod helpers;
mod lifecycle;
mod log_mode;
mod ordering;
mod replicas;
mod retries;
mod round_trips;
mod sink;
mod through_the_app;
