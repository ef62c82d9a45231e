//! `cargo xtask up`: Docket on this machine, until Ctrl-C.
//!
//! Installs what is missing, builds the binaries with the same command as
//! `cargo xtask test` (so one build serves both), starts PostgreSQL and
//! nats-server (JetStream) with their data under `target/stack/` (kept
//! between runs; `--fresh` wipes it), then a local OpenID provider (the
//! tests' `OidcProvider`: users `ada` and `grace`, passwords made up per
//! run and printed), then the services from [`SERVICES`], each on a free
//! loopback port and ready before the next one starts; the app runs with
//! `AUTH=oidc` against the provider, as staging and production do. Every
//! process's output is shown prefixed by its name.
//!
//! Ctrl-C, SIGTERM or SIGHUP stops everything in reverse order (services
//! with SIGTERM so they drain, then the provider, NATS, then PostgreSQL)
//! and exits 0. If a process dies, its last output is shown, the rest is
//! stopped and the command fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use test_support::{Nats, OidcProvider, OidcUser, Postgres, Role, Service, Stack, StackBuilder};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::{JoinHandle, block_in_place};

use crate::install::{self, Tool};
use crate::stack::Ports;
use crate::tail;
use crate::workspace::{Workspace, run_checked as run_command};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Wipe target/stack (database, JetStream data, remembered ports) first.
    #[arg(long)]
    fresh: bool,
}

/// What `up` runs on top of PostgreSQL and NATS, in start order: each
/// service's name (its key in `ports.json` and its pid file) and binary.
///
/// The webhook receiver (`broadcaster sink`) prints one line per message the
/// broadcaster sends, so every todo added or changed in the browser shows up
/// in this terminal.
const SERVICES: &[(&str, &str)] = &[
    ("webhooks", "broadcaster"),
    ("app", "todo-app"),
    ("broadcaster", "broadcaster"),
];

/// Width of the name column in front of every output line.
const NAME_WIDTH: usize = 11;

/// How long services get to drain after SIGTERM before they are killed.
const SERVICE_STOP_DEADLINE: Duration = Duration::from_secs(15);

pub fn run(workspace: &Workspace, args: Args) -> anyhow::Result<()> {
    install::ensure(
        workspace,
        &[
            Tool::Postgres,
            Tool::NatsServer,
            Tool::Node,
            Tool::OidcProvider,
        ],
    )?;

    let stack_dir = workspace.stack_dir();
    let _lock = UpLock::acquire(&stack_dir, args.fresh)?;

    // Built before anything starts: a compile error then leaves nothing to
    // clean up, and Ctrl-C during the build simply ends the command.
    run_command(&mut workspace.build_binaries(), "building the services")?;

    tokio::runtime::Runtime::new()
        .context("failed to start a tokio runtime")?
        .block_on(up(&stack_dir))
}

async fn up(stack_dir: &Path) -> anyhow::Result<()> {
    // What a killed run left behind is stopped before ports are chosen, so
    // that theirs are free again: services first, while the servers they
    // drain into still run.
    for (name, bin) in SERVICES {
        stop_leftover_service(&stack_dir.join(format!("{name}.pid")), bin).await;
    }
    block_in_place(|| Nats::stop_leftover(&stack_dir.join("nats")))?;
    block_in_place(|| Postgres::stop_leftover(&stack_dir.join("postgres")))?;

    let mut ports = Ports::load(&stack_dir.join("ports.json"));
    let postgres_port = ports.take("postgres");
    let nats_port = ports.take("nats");
    let builder = StackBuilder::new()
        .postgres_in(&stack_dir.join("postgres"), postgres_port)
        .nats_in(&stack_dir.join("nats"), nats_port)
        .app_port(ports.take("app"))
        .sink(Some(ports.take("webhooks")), true)
        .broadcaster_port(ports.take("broadcaster"))
        // Sign-in as deployed: the app's port is known, so the provider
        // starts first with its redirect URI.
        .sign_in()
        .logs("pretty", None)
        // The receiver's line per message is what people watch.
        .broadcaster_env("RUST_LOG", "warn")
        .echo()
        // The first start applies migrations and may wait for a cold disk.
        .ready_timeout(Duration::from_secs(60))
        // Lets the next run stop a service if this one is killed first.
        .pid_files(stack_dir);
    ports.save()?;

    // From here on, signals are ours: stop what was started, in order.
    let mut shutdown = ShutdownSignals::install()?;
    let mut running = Vec::new();
    let started = tokio::select! {
        started = start_all(stack_dir, builder, &mut running) => Some(started),
        signal = shutdown.received() => {
            println!("\n{signal} during start-up: stopping");
            None
        }
    };
    let result = match started {
        None => Ok(()),
        Some(Ok(banner)) => {
            println!("{banner}");
            supervise(&mut running, &mut shutdown).await
        }
        Some(Err(error)) => Err(error),
    };
    stop_all(&mut running).await;
    result
}

/// Starts PostgreSQL, NATS and the services, then pushes each onto
/// `running` so that a failure or a signal stops them in order; returns the
/// banner to print.
async fn start_all(
    stack_dir: &Path,
    builder: StackBuilder,
    running: &mut Vec<Process>,
) -> anyhow::Result<String> {
    println!(
        "starting PostgreSQL, nats-server and the services (data in {})",
        stack_dir.display()
    );
    let postgres_log = stack_dir.join("postgres/postgres.log");
    let nats_log = stack_dir.join("nats/nats-server.log");
    let (postgres_start, nats_start) = (file_len(&postgres_log), file_len(&nats_log));
    let stack = builder.start().await?;
    let banner = banner(&stack);
    let parts = stack.into_parts();
    if let Some(postgres) = parts.postgres {
        running.push(Process::followed(
            "postgres".to_owned(),
            Kind::Postgres(postgres),
            postgres_log,
            postgres_start,
        ));
    }
    running.push(Process::followed(
        "nats".to_owned(),
        Kind::Nats(parts.nats),
        nats_log,
        nats_start,
    ));
    if let Some(provider) = parts.oidc {
        // It exits with this process too: its stdin is a pipe from here.
        running.push(Process {
            name: "oidc".to_owned(),
            kind: Kind::Oidc(Box::new(provider)),
            log: None,
            pid_file: None,
        });
    }
    for (name, service) in parts.services {
        let pid_file = Some(stack_dir.join(format!("{name}.pid")));
        running.push(Process {
            name,
            kind: Kind::Service(service),
            log: None,
            pid_file,
        });
    }
    Ok(banner)
}

/// What to open and how to connect, with every URL the stack serves.
fn banner(stack: &Stack) -> String {
    let rule = "─".repeat(64);
    let mut lines = vec![String::new(), rule.clone()];
    lines.push(format!("  Docket is running:  {}", stack.app.url()));
    if let Some(provider) = &stack.oidc {
        lines.extend(sign_in_lines(provider.users()));
        lines.push(format!("  OpenID provider:    {}", provider.issuer_url()));
    }
    if let Some(sink) = &stack.sink {
        lines.push(format!("  webhooks: {}", sink.url()));
    }
    for replica in stack.broadcasters.iter().flatten() {
        lines.push(format!(
            "  {}: http://127.0.0.1:{}",
            replica.name, replica.port
        ));
    }
    lines.push(format!("  API token:          {}", stack.api_token));
    lines.push(format!(
        "                      (curl -H 'Authorization: Bearer {}' ...)",
        stack.api_token
    ));
    lines.push(format!("  PostgreSQL:         {}", stack.database_url));
    lines.push(format!("  NATS:               {}", stack.nats.url()));
    let admin = stack.nats_env(Role::Admin);
    if let [_, (_, user), (_, password)] = admin.as_slice() {
        // Services have their own users; this one is for people (nats CLI).
        lines.push(format!(
            "                      (--user {user} --password {password})"
        ));
    }
    if let Some(postgres) = &stack.postgres {
        lines.push(format!(
            "  psql:               psql -h 127.0.0.1 -p {} -U postgres docket",
            postgres.port()
        ));
    }
    lines.push("  Press Ctrl-C to stop everything.".to_owned());
    lines.push(rule);
    lines.join("\n") + "\n"
}

/// Who can sign in, and with which password (made up for this run).
fn sign_in_lines(users: &[OidcUser]) -> Vec<String> {
    users
        .iter()
        .enumerate()
        .map(|(n, user)| {
            let label = if n == 0 { "sign in as:" } else { "or:" };
            format!(
                "  {label:<20}{}  password {}  ({})",
                user.username, user.password, user.name
            )
        })
        .collect()
}

/// Waits for a shutdown signal (then `Ok`) or for a process to die (then
/// `Err` with its last output).
async fn supervise(running: &mut [Process], shutdown: &mut ShutdownSignals) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            signal = shutdown.received() => {
                println!("\n{signal}: stopping");
                return Ok(());
            }
            _ = tick.tick() => {
                for process in running.iter_mut() {
                    if let Some(how) = process.exited() {
                        bail!(
                            "{} {how}; its last output:\n{}\n(everything else was stopped)",
                            process.name,
                            process.last_output(30)
                        );
                    }
                }
            }
        }
    }
}

/// Stops everything that runs, newest first.
async fn stop_all(running: &mut Vec<Process>) {
    while let Some(mut process) = running.pop() {
        println!("stopping {}", process.name);
        if let Err(error) = process.stop().await {
            eprintln!("warning: stopping {}: {error:#}", process.name);
        }
    }
}

/// One process `up` supervises.
struct Process {
    name: String,
    kind: Kind,
    /// The log file being followed, where this run's part starts, and the
    /// task echoing it.
    log: Option<(PathBuf, u64, JoinHandle<()>)>,
    /// Where a service's pid is kept while it runs.
    pid_file: Option<PathBuf>,
}

enum Kind {
    Postgres(Postgres),
    Nats(Nats),
    /// Boxed: far larger than the others.
    Oidc(Box<OidcProvider>),
    Service(Service),
}

impl Process {
    /// A server whose log file is echoed from `log_start` on.
    fn followed(name: String, kind: Kind, log: PathBuf, log_start: u64) -> Process {
        let follower = tail::follow(log.clone(), log_start, format!("{name:<NAME_WIDTH$}"));
        Process {
            name,
            kind,
            log: Some((log, log_start, follower)),
            pid_file: None,
        }
    }

    /// How it ended, if it has.
    fn exited(&mut self) -> Option<String> {
        match &mut self.kind {
            Kind::Postgres(postgres) => (!postgres.is_running()).then(|| "stopped".to_string()),
            Kind::Nats(nats) => (!nats.is_running()).then(|| "exited".to_string()),
            Kind::Oidc(provider) => service_exited(provider.service_mut()),
            Kind::Service(service) => service_exited(service),
        }
    }

    fn last_output(&self, lines: usize) -> String {
        match (&self.kind, &self.log) {
            (_, Some((path, start, _))) => tail::last_lines(path, *start, lines),
            (Kind::Service(service), None) => last_lines(&service.output(), lines),
            (Kind::Oidc(provider), None) => last_lines(&provider.log(), lines),
            _ => String::new(),
        }
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        let result = match &mut self.kind {
            Kind::Postgres(postgres) => block_in_place(|| postgres.stop()),
            Kind::Nats(nats) => block_in_place(|| nats.stop()),
            Kind::Oidc(provider) => stop_service(provider.service_mut()).await,
            Kind::Service(service) => stop_service(service).await,
        };
        if let Some(pid_file) = self.pid_file.take() {
            let _ = fs::remove_file(pid_file);
        }
        if let Some((_, _, follower)) = self.log.take() {
            // Let the follower print the shutdown lines before it goes.
            tokio::time::sleep(Duration::from_millis(250)).await;
            follower.abort();
        }
        result
    }
}

/// How a service ended, if it has.
fn service_exited(service: &mut Service) -> Option<String> {
    match service.try_wait() {
        Ok(Some(status)) => Some(format!("exited ({status})")),
        Ok(None) => None,
        Err(error) => Some(format!("could not be checked on: {error:#}")),
    }
}

/// SIGTERM, so it drains; SIGKILL after [`SERVICE_STOP_DEADLINE`].
async fn stop_service(service: &mut Service) -> anyhow::Result<()> {
    service.terminate();
    match service.wait(SERVICE_STOP_DEADLINE).await {
        Ok(_) => Ok(()),
        Err(error) => {
            service.kill();
            Err(error.context("killed it"))
        }
    }
}

fn last_lines(output: &str, lines: usize) -> String {
    let all: Vec<&str> = output.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Ctrl-C, SIGTERM and SIGHUP (terminal closed), handled once installed.
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves with the signal's name when one arrives.
    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "Ctrl-C",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// One `cargo xtask up` at a time per workspace: a second one would stop
/// the first one's servers as leftovers. Holds `target/stack/up.pid`.
struct UpLock {
    file: PathBuf,
}

impl UpLock {
    /// Takes the lock, after wiping the stack folder if `fresh`.
    fn acquire(stack_dir: &Path, fresh: bool) -> anyhow::Result<UpLock> {
        let file = stack_dir.join("up.pid");
        if let Some(pid) = fs::read_to_string(&file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if pid != std::process::id() && comm.trim() == "xtask" {
                bail!("`cargo xtask up` is already running (pid {pid}); stop it first");
            }
        }
        if fresh && stack_dir.exists() {
            println!("--fresh: wiping {}", stack_dir.display());
            Postgres::stop_leftover(&stack_dir.join("postgres"))?;
            Nats::stop_leftover(&stack_dir.join("nats"))?;
            fs::remove_dir_all(stack_dir)
                .with_context(|| format!("failed to remove {}", stack_dir.display()))?;
        }
        fs::create_dir_all(stack_dir)
            .with_context(|| format!("failed to create {}", stack_dir.display()))?;
        fs::write(&file, std::process::id().to_string())
            .with_context(|| format!("failed to write {}", file.display()))?;
        Ok(UpLock { file })
    }
}

impl Drop for UpLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// Stops a service that an earlier `up`, since killed, left running: its
/// process group is its own, so it outlived its supervisor.
async fn stop_leftover_service(pid_file: &Path, bin: &str) {
    let Some(pid) = fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    else {
        return;
    };
    // The kernel keeps 15 characters of a process name; a reused pid that
    // belongs to something else is left alone.
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != bin.chars().take(15).collect::<String>() {
        return;
    }
    println!("stopping {bin} (pid {pid}), left running by an earlier run");
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + SERVICE_STOP_DEADLINE;
    while test_support::process_is_running(pid.as_raw()) {
        if tokio::time::Instant::now() >= deadline {
            let _ = kill(pid, Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_says_who_can_sign_in_with_which_password() {
        let user = |username: &str, password: &str, name: &str| OidcUser {
            username: username.to_owned(),
            password: password.to_owned(),
            name: name.to_owned(),
            email: format!("{username}@example.test"),
        };
        let lines = sign_in_lines(&[
            user("ada", "pw-ada", "Ada Lovelace"),
            user("grace", "pw-grace", "Grace Hopper"),
        ]);
        assert_eq!(
            lines,
            [
                "  sign in as:         ada  password pw-ada  (Ada Lovelace)",
                "  or:                 grace  password pw-grace  (Grace Hopper)",
            ]
        );
    }
}
