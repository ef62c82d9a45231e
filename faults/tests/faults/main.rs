//! The fault suite: one module per scenario, each starting its own stack
//! (PostgreSQL, nats-server, `todo-app`, three broadcasters, a receiver),
//! putting a steady write load through the app, injecting one fault and
//! checking with [`faults::ledger`] that nothing acknowledged was lost; the
//! frame they share is [`faults::scenario::Scenario`].
//!
//! The scenarios take 30-50 s each, so a plain `cargo nextest run` skips
//! them (`#[ignore]`); `cargo xtask test` runs them after the other suites,
//! and `cargo xtask test --faults` runs them alone (with the fuzz targets).
//! Each prints its figures and adds them to `target/faults/report.md`.
//!
//! Needs the binaries: `cargo build -p app -p broadcaster`.

mod abuse_cookies;
mod abuse_events;
mod abuse_http;
mod abuse_http_props;
mod abuse_metrics;
mod abuse_parsers;
mod abuse_streams;
mod app_sigterm;
mod broadcaster_kills;
mod nats_disk_full;
mod nats_long_outage;
mod nats_node_lost;
mod nats_permissions;
mod nats_restart;
mod postgres_primary_lost;
mod postgres_restart;
mod receiver_outage;
mod relay_frozen;
mod secrets_not_logged;
