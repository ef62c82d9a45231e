//! Docket's todo app: HTML pages with htmx, a JSON API, PostgreSQL storage,
//! and every change published to NATS JetStream through a transactional outbox.

pub mod api_tags;
pub mod api_tokens;
pub mod auth;
pub mod build;
pub mod changes;
pub mod client;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod faults;
pub mod generation;
pub mod live;
pub mod metrics;
pub mod open_streams;
pub mod outbox;
pub mod outbox_listener;
pub mod page_cache;
pub mod picture;
pub mod rate_limit;
pub mod read_together;
pub mod reads;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod views;
pub mod write_marker;

pub use config::Config;
pub use startup::Application;
