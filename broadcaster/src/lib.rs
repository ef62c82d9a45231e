//! The Docket broadcaster: every todo event, delivered to a webhook once.
//!
//! Replicas share one durable JetStream consumer on the `TODOS` stream
//! ([`consumer`]), remember delivered event ids in a key-value bucket
//! ([`dedupe`]), send each event in the configured format ([`delivery`]),
//! retry transient failures with backoff ([`retry`]) behind a circuit
//! breaker ([`circuit`]), and park what cannot be delivered in `TODOS_DLQ`
//! ([`dlq`]). The same binary carries a local webhook receiver ([`sink`]).

pub mod circuit;
pub mod cli;
pub mod config;
pub mod consumer;
pub mod dedupe;
pub mod delivery;
pub mod dlq;
pub mod error;
pub mod health;
pub mod lag;
pub mod metrics;
pub mod ordering;
pub mod retry;
pub mod sink;
pub mod startup;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
pub use startup::Application;
