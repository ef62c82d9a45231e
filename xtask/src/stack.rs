//! The infrastructure the commands start: ports remembered between `up` runs,
//! and the PostgreSQL + NATS pair `test` runs the suite against.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use test_support::{Nats, Postgres, free_port, port_is_free};

/// Loopback ports by service name, kept in `target/stack/ports.json` so that
/// `cargo xtask up` comes back on the same URL when it can.
#[derive(Debug)]
pub struct Ports {
    file: PathBuf,
    ports: BTreeMap<String, u16>,
}

impl Ports {
    /// Reads the remembered ports (a missing or unreadable file means none).
    pub fn load(file: &Path) -> Ports {
        let ports = fs::read_to_string(file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Ports {
            file: file.to_path_buf(),
            ports,
        }
    }

    /// The port for `name`: the remembered one if it is still free, else a
    /// new free one (remembered from now on).
    pub fn take(&mut self, name: &str) -> u16 {
        let port = match self.ports.get(name) {
            Some(&port) if port_is_free(port) => port,
            _ => loop {
                let port = free_port();
                // Two services must not be handed the same port.
                if !self
                    .ports
                    .iter()
                    .any(|(other, &p)| other != name && p == port)
                {
                    break port;
                }
            },
        };
        self.ports.insert(name.to_string(), port);
        port
    }

    /// Writes the ports back for the next run.
    pub fn save(&self) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.ports)?;
        fs::write(&self.file, text + "\n")
            .with_context(|| format!("failed to write {}", self.file.display()))
    }
}

/// PostgreSQL and NATS for the test suite: the ones `DATABASE_URL` and
/// `NATS_URL` name, or private ones stopped when this is dropped.
#[derive(Debug)]
pub struct TestStack {
    pub database_url: String,
    pub nats_url: String,
    _postgres: Option<Postgres>,
    _nats: Option<Nats>,
}

impl TestStack {
    pub fn from_env_or_start() -> anyhow::Result<TestStack> {
        let (database_url, postgres) =
            named_or_started("DATABASE_URL", "PostgreSQL", Postgres::start, Postgres::url)?;
        let (nats_url, nats) = named_or_started("NATS_URL", "nats-server", Nats::start, Nats::url)?;
        Ok(TestStack {
            database_url,
            nats_url,
            _postgres: postgres,
            _nats: nats,
        })
    }
}

/// The URL of the server `variable` names, or of a private `what` started
/// for the tests (kept in the second half, stopped when dropped). The named
/// URL is not printed: it may carry a password.
fn named_or_started<S>(
    variable: &str,
    what: &str,
    start: impl FnOnce() -> anyhow::Result<S>,
    url: impl Fn(&S) -> String,
) -> anyhow::Result<(String, Option<S>)> {
    if let Some(named) = non_empty_env(variable) {
        println!("using {what} from {variable}");
        return Ok((named, None));
    }
    let server = start().with_context(|| format!("starting the tests' {what}"))?;
    println!("started {what} for the tests at {}", url(&server));
    Ok((url(&server), Some(server)))
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_ports_are_reused_while_free_and_replaced_when_taken() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ports.json");
        let mut ports = Ports::load(&file);
        let app = ports.take("app");
        let nats = ports.take("nats");
        assert_ne!(app, nats);
        ports.save().unwrap();

        let mut again = Ports::load(&file);
        assert_eq!(again.take("app"), app);

        let squatter = std::net::TcpListener::bind(("127.0.0.1", nats)).unwrap();
        let mut third = Ports::load(&file);
        assert_ne!(third.take("nats"), nats, "a taken port was handed out");
        drop(squatter);
    }
}
