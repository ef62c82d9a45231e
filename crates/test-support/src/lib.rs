//! Private, throwaway infrastructure for Docket's tests and dev tooling.
//!
//! Tests run against real parts: a PostgreSQL cluster and a nats-server with
//! JetStream, each started privately on a free loopback port with its data in
//! a folder of its own, and the workspace's binaries spawned as real
//! processes. [`StackBuilder`] starts the whole stack the same way for the
//! E2E stories, the fault suite, `cargo xtask up` and `cargo xtask bench`,
//! so what the tests exercise is what developers run.
//!
//! Every server is stopped when its handle is dropped. Readiness is always
//! polled with a deadline, never assumed after a sleep; tests wait the same
//! way with [`eventually`]. Webhooks are delivered to the one scriptable
//! receiver in [`webhook`].

mod database;
mod eventually;
mod nats;
mod nats_users;
mod postgres;
mod process;
mod service;
mod stack;
pub mod webhook;
mod workspace;

use std::net::TcpListener;

pub use database::{TestDatabase, ensure_database, test_database};
pub use eventually::eventually;
pub use nats::{Nats, TestNats, nats_server_path, test_nats};
pub use nats_users::{Role, nats_config_path};
pub use postgres::{Postgres, postgres_bin_dir};
pub use process::{port_is_free, process_is_running};
pub use service::{Service, ServiceCommand};
pub use service_kit::Credentials;
pub use stack::{App, Parts, Replica, Sink, Stack, StackBuilder};
pub use workspace::{workspace_binary, workspace_root};

/// A loopback TCP port that was free a moment ago.
///
/// The operating system picks it, so parallel tests do not collide; another
/// process could still take it before it is used, which the servers here
/// report as "port is taken".
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("the OS should hand out a free loopback port")
}
