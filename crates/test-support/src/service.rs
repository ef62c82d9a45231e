//! A workspace binary spawned as a real process, ready once its readiness
//! URL answers 200.
//!
//! Its stdout and stderr are captured (tests assert on logs) and, when asked
//! (`TEST_LOG=1` for tests, always for `cargo xtask up`), echoed line by line
//! with a prefix.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Url;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// How long a service may take to become ready unless told otherwise.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How much output is kept; older output is dropped first.
const OUTPUT_LIMIT: usize = 8 * 1024 * 1024;

/// What to spawn and how; [`ServiceCommand::spawn`] starts it.
#[derive(Debug, Clone)]
pub struct ServiceCommand {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    ready_url: String,
    ready_timeout: Duration,
    echo_prefix: Option<String>,
    own_process_group: bool,
    stdin_lifeline: bool,
}

impl ServiceCommand {
    /// `program`, ready once `ready_url` (on a loopback address) answers 200.
    pub fn new(program: impl AsRef<Path>, ready_url: impl Into<String>) -> Self {
        ServiceCommand {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            ready_url: ready_url.into(),
            ready_timeout: READY_DEADLINE,
            echo_prefix: None,
            own_process_group: false,
            stdin_lifeline: false,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable (the rest of the environment is inherited).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// How long to wait for readiness (30 s by default).
    pub fn ready_timeout(mut self, ready_timeout: Duration) -> Self {
        self.ready_timeout = ready_timeout;
        self
    }

    /// Echoes each output line to stdout as `<prefix> | <line>`.
    pub fn echo(mut self, prefix: impl Into<String>) -> Self {
        self.echo_prefix = Some(prefix.into());
        self
    }

    /// Runs the process in its own process group, so a terminal's Ctrl-C goes
    /// to the supervisor only, which then stops it in order.
    pub fn own_process_group(mut self) -> Self {
        self.own_process_group = true;
        self
    }

    /// Gives the process a stdin pipe that stays open while the [`Service`]
    /// lives, for programs that exit when their stdin closes: they then also
    /// stop when this process dies without dropping it (a SIGKILLed test
    /// run), which `kill_on_drop` cannot cover.
    pub fn stdin_lifeline(mut self) -> Self {
        self.stdin_lifeline = true;
        self
    }

    /// Spawns the process and waits until the readiness URL answers 200.
    ///
    /// Fails early, with the captured output, if the process exits first;
    /// fails (and kills it) if the deadline passes.
    pub async fn spawn(self) -> anyhow::Result<Service> {
        let ready_url = loopback_url(&self.ready_url)?;
        let name = self
            .program
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.program.display().to_string());
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin_lifeline {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if self.own_process_group {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to run {}", self.program.display()))?;
        let pid = child.id().context("a just-spawned process has an id")?;
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(capture(stdout, output.clone(), self.echo_prefix.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(capture(stderr, output.clone(), self.echo_prefix.clone()));
        }
        let lifeline = child.stdin.take();
        let mut service = Service {
            name,
            _lifeline: lifeline,
            child,
            pid,
            output,
            readers,
        };
        service.wait_ready(ready_url, self.ready_timeout).await?;
        Ok(service)
    }
}

/// A spawned binary, SIGKILLed when dropped.
#[derive(Debug)]
pub struct Service {
    name: String,
    /// Held, never written: see [`ServiceCommand::stdin_lifeline`].
    _lifeline: Option<ChildStdin>,
    child: Child,
    pid: u32,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Service {
    /// Spawns `program` with `args` and extra `envs`, and waits until
    /// `ready_url` answers 200 (deadline 30 s). Output is echoed to stdout
    /// when `TEST_LOG` is set.
    pub async fn spawn(
        program: &Path,
        args: &[&str],
        envs: &[(&str, String)],
        ready_url: &str,
    ) -> anyhow::Result<Service> {
        let mut command = ServiceCommand::new(program, ready_url);
        for arg in args {
            command = command.arg(arg);
        }
        for (key, value) in envs {
            command = command.env(key, value);
        }
        if std::env::var_os("TEST_LOG").is_some() {
            let prefix = program
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            command = command.echo(prefix);
        }
        command.spawn().await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGTERM (graceful shutdown); see [`Service::wait`].
    pub fn terminate(&self) {
        // Fails only if the process is already gone, which is what was wanted.
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
    }

    /// Sends SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Waits for the process to exit, then for its remaining output.
    pub async fn wait(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let status = timeout(within, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {within:?}", self.name))?
            .with_context(|| format!("failed to wait for {}", self.name))?;
        self.drain_output().await;
        Ok(status)
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("failed to check on {}", self.name))
    }

    /// Stdout and stderr captured so far, interleaved by line.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }

    /// Waits until the process has printed a line containing `needle`;
    /// fails after `within` with what it printed.
    pub async fn wait_for_output(&self, needle: &str, within: Duration) -> anyhow::Result<()> {
        crate::eventually(
            within,
            &format!("`{needle}` in {}'s output", self.name),
            || async { self.output().contains(needle).then_some(()) },
        )
        .await
        .with_context(|| format!("{} printed:\n{}", self.name, self.output()))
    }

    /// Waits (briefly) for the reader tasks to take the last output after exit.
    async fn drain_output(&mut self) {
        for reader in self.readers.drain(..) {
            // A grandchild holding the pipe open must not block us forever.
            let _ = timeout(Duration::from_secs(2), reader).await;
        }
    }

    async fn wait_ready(&mut self, url: Url, within: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("failed to build the readiness HTTP client")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait()? {
                self.drain_output().await;
                bail!(
                    "{} exited ({status}) before {url} answered 200; its output:\n{}",
                    self.name,
                    self.output()
                );
            }
            let last = match client.get(url.clone()).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    format!("{status}: {}", body.trim())
                }
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                self.kill();
                let _ = self.wait(Duration::from_secs(5)).await;
                bail!(
                    "{} was not ready within {within:?} ({url} last said: {last}); its output:\n{}",
                    self.name,
                    self.output()
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Reads lines from a child's pipe into the shared buffer, echoing them if asked.
fn capture<R>(pipe: R, output: Arc<Mutex<String>>, echo: Option<String>) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            match reader.read_until(b'\n', &mut bytes).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&bytes);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(prefix) = &echo {
                println!("{prefix} | {line}");
            }
            let mut output = output.lock().expect("output lock");
            if output.len() > OUTPUT_LIMIT {
                let cut = output.len() - OUTPUT_LIMIT / 2;
                let cut = (cut..output.len())
                    .find(|&i| output.is_char_boundary(i))
                    .unwrap_or(output.len());
                output.drain(..cut);
            }
            output.push_str(line);
            output.push('\n');
        }
    })
}

/// Parses the readiness URL and insists on a loopback host: tests and dev
/// tooling never send traffic off the machine.
fn loopback_url(raw: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw).with_context(|| format!("invalid readiness URL {raw}"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("readiness URL {raw} must point at a loopback address such as 127.0.0.1");
    }
    Ok(url)
}
