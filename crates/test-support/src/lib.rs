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
//! Sign-in is tested against a real OpenID provider, [`OidcProvider`].

pub mod articles;
mod database;
mod eventually;
mod forwarder;
mod nats;
mod nats_users;
mod oidc;
mod ports;
mod postgres;
mod process;
mod prometheus;
mod service;
mod stack;
pub mod webhook;
mod workspace;

pub use database::{TestDatabase, ensure_database, test_database};
pub use eventually::eventually;
pub use forwarder::Forwarder;
pub use nats::{
    NATS_SERVER_VENV, NATS_SERVER_VERSION, Nats, TestNats, installed_nats_server, nats_server_path,
    start_secured_cluster, stored_messages, test_nats,
};
pub use nats_users::{Role, nats_config_path};
pub use oidc::{
    OIDC_PROVIDER_VERSION, OidcClient, OidcProvider, OidcUser, installed_oidc_provider_version,
    oidc_provider_dir,
};
pub use ports::free_port;
pub use postgres::{Postgres, postgres_bin_dir};
pub use process::{port_is_free, process_is_running};
pub use prometheus::{Prometheus, ScrapeTarget};
pub use service::{Service, ServiceCommand};
pub use service_kit::Credentials;
pub use stack::{App, Parts, Replica, Sink, Stack, StackBuilder};
pub use workspace::{workspace_binary, workspace_root};

/// How many free ports a start is tried on before its error counts.
pub(crate) const PORT_ATTEMPTS: usize = 3;

/// Starts a server with `start` on a [`free_port`], and again on another one
/// if it fails: no test is handed the port again, but a process outside the
/// tests can still take it between being picked and being bound, which is
/// no fault of the server. A real fault fails every time and is reported
/// with the last attempt's error.
pub(crate) fn start_on_a_free_port<T>(
    what: &str,
    mut start: impl FnMut(u16) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut attempt = 1;
    loop {
        match start(free_port()) {
            Ok(server) => return Ok(server),
            Err(error) if attempt == PORT_ATTEMPTS => {
                return Err(error.context(format!(
                    "{what} did not start on any of {PORT_ATTEMPTS} free ports"
                )));
            }
            Err(_) => attempt += 1,
        }
    }
}

/// [`start_on_a_free_port`] for servers whose start is awaited.
pub(crate) async fn start_on_a_free_port_async<T, F>(
    what: &str,
    mut start: impl FnMut(u16) -> F,
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match start(free_port()).await {
            Ok(server) => return Ok(server),
            Err(error) if attempt == PORT_ATTEMPTS => {
                return Err(error.context(format!(
                    "{what} did not start on any of {PORT_ATTEMPTS} free ports"
                )));
            }
            Err(_) => attempt += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_tried_again_on_another_port_and_a_lasting_fault_is_reported() {
        let mut ports = Vec::new();
        let started = start_on_a_free_port("server", |port| {
            ports.push(port);
            if ports.len() < 3 {
                anyhow::bail!("port {port} is taken")
            }
            Ok(port)
        })
        .expect("the third attempt starts");
        assert_eq!(started, ports[2]);

        let error = start_on_a_free_port("server", |_| -> anyhow::Result<()> {
            anyhow::bail!("no such binary")
        })
        .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "server did not start on any of 3 free ports: no such binary"
        );
    }
}
