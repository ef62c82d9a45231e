//! The whole stack as real processes: a private PostgreSQL and nats-server,
//! one `todo-app`, three `broadcaster` replicas forwarding to a [`Receiver`].
//!
//! nats-server runs with the configuration shipped to the cluster, so the
//! app and each broadcaster connect as their own least-privileged users, as
//! in production; the harness itself inspects streams as `admin`.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use test_support::{Nats, Postgres, Role, Service, free_port, workspace_binary};

use test_support::webhook::{Receiver, Reply, SECRET};

/// The app's API token in every scenario.
pub const API_TOKEN: &str = "fault-suite-token";

/// How long a replica waits for one webhook answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(4);

/// Broadcaster settings every scenario shares besides [`WEBHOOK_TIMEOUT`]:
/// a retry schedule long enough to outlast any fault a scenario injects
/// (about 3.5 minutes in all), so nothing is dead-lettered by a fault.
const BROADCASTER_ENV: &[(&str, &str)] = &[
    (
        "WEBHOOK_RETRY_SCHEDULE",
        "500ms,1s,2s,5s,10s,20s,30s,60s,90s",
    ),
    ("WEBHOOK_BREAKER_THRESHOLD", "5"),
    ("WEBHOOK_BREAKER_COOLDOWN", "2s"),
];

pub const REPLICAS: usize = 3;

pub struct Stack {
    pub postgres: Postgres,
    pub nats: Nats,
    pub app: App,
    pub broadcasters: Vec<Option<Replica>>,
    pub receiver: Receiver,
    /// Replicas started so far, which names the next one.
    replicas_started: AtomicUsize,
    app_args: Vec<String>,
    app_env: Vec<(String, String)>,
    log_filter: &'static str,
}

/// The running app, on a port that stays the same across restarts so the
/// load keeps one address.
pub struct App {
    pub service: Option<Service>,
    pub port: u16,
}

/// A broadcaster replica, delivering to its own path on the receiver
/// ([`Receiver::url_for`] with its name), so a scenario can tell its
/// requests apart.
pub struct Replica {
    pub name: String,
    pub service: Service,
}

impl Deref for Replica {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

impl DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.service
    }
}

impl App {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Stack {
    /// Starts everything and waits until each part is ready.
    pub async fn start() -> anyhow::Result<Stack> {
        Stack::start_with_app(&[], &[]).await
    }

    /// As [`Stack::start`], with extra app arguments and environment (the
    /// app's test-only fault switch).
    pub async fn start_with_app(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Stack> {
        let nats = Nats::start_secured().context("nats-server starts")?;
        Stack::start_full(args, env, nats, "info").await
    }

    /// As [`Stack::start`], with the app and every replica logging at debug
    /// level: everything a process can write to its log, for checks that
    /// read the logs.
    pub async fn start_logging_debug() -> anyhow::Result<Stack> {
        let nats = Nats::start_secured().context("nats-server starts")?;
        Stack::start_full(&[], &[], nats, "debug").await
    }

    /// As [`Stack::start`], on a nats-server the scenario started (e.g. with
    /// its store on a small disk; start it secured, as [`Stack::start`] does).
    pub async fn start_on(nats: Nats) -> anyhow::Result<Stack> {
        Stack::start_full(&[], &[], nats, "info").await
    }

    async fn start_full(
        args: &[&str],
        env: &[(&str, &str)],
        nats: Nats,
        log_filter: &'static str,
    ) -> anyhow::Result<Stack> {
        telemetry::init_for_tests();
        let postgres = Postgres::start().context("PostgreSQL starts")?;
        let receiver = Receiver::try_start(|_| Reply::Status(200)).await?;
        let mut stack = Stack {
            app: App {
                service: None,
                port: free_port(),
            },
            app_args: args.iter().map(|a| a.to_string()).collect(),
            app_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_filter,
            postgres,
            nats,
            broadcasters: Vec::new(),
            receiver,
            replicas_started: AtomicUsize::new(0),
        };
        stack.start_app().await?;
        for _ in 0..REPLICAS {
            let replica = stack.spawn_broadcaster().await?;
            stack.broadcasters.push(Some(replica));
        }
        Ok(stack)
    }

    /// Starts the app (again) on its port.
    pub async fn start_app(&mut self) -> anyhow::Result<()> {
        let mut env = self.nats.service_env(Role::App);
        env.extend([
            ("DATABASE_URL", self.postgres.url()),
            ("PORT", self.app.port.to_string()),
            ("API_TOKEN", API_TOKEN.to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", self.log_filter.to_owned()),
            // The suite's load comes from one address, far above what the
            // default allows one client; the limit has tests of its own.
            ("WRITE_RATE_LIMIT", "off".to_owned()),
        ]);
        env.extend(self.app_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let args: Vec<&str> = self.app_args.iter().map(String::as_str).collect();
        let service = Service::spawn(
            &workspace_binary("todo-app"),
            &args,
            &env,
            &format!("{}/readyz", self.app.url()),
        )
        .await
        .context("todo-app starts")?;
        self.app.service = Some(service);
        Ok(())
    }

    /// A new broadcaster replica, ready.
    pub async fn spawn_broadcaster(&self) -> anyhow::Result<Replica> {
        let name = format!(
            "replica-{}",
            self.replicas_started.fetch_add(1, Ordering::Relaxed)
        );
        let port = free_port();
        let mut env = self.nats.service_env(Role::Broadcaster);
        env.extend([
            ("PORT", port.to_string()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", self.log_filter.to_owned()),
            ("WEBHOOK_URL", self.receiver.url_for(&name)),
            ("WEBHOOK_SECRET", SECRET.to_owned()),
            ("WEBHOOK_TIMEOUT", format!("{}s", WEBHOOK_TIMEOUT.as_secs())),
        ]);
        env.extend(BROADCASTER_ENV.iter().map(|(k, v)| (*k, v.to_string())));
        let service = Service::spawn(
            &workspace_binary("broadcaster"),
            &[],
            &env,
            &format!("http://127.0.0.1:{port}/readyz"),
        )
        .await
        .context("a broadcaster replica starts")?;
        Ok(Replica { name, service })
    }

    /// SIGKILLs nats-server (no flush, no goodbye) and reaps it.
    pub fn kill_nats(&mut self) -> anyhow::Result<()> {
        let pid = self.nats.pid().context("nats-server is not running")?;
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
        // The process is gone; `stop` only reaps it.
        self.nats.stop()
    }

    /// A jetstream handle on the stack's server, as `admin`.
    pub async fn jetstream(&self) -> anyhow::Result<async_nats::jetstream::Context> {
        let client = self.nats.connect(Role::Admin).await?;
        Ok(async_nats::jetstream::new(client))
    }

    /// Every broadcaster's and the app's output, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Some(app) = &self.app.service {
            out.push_str("--- todo-app ---\n");
            out.push_str(&tail(&app.output(), 40));
        }
        for (i, b) in self.broadcasters.iter().enumerate() {
            if let Some(b) = b {
                out.push_str(&format!("--- broadcaster {i} ---\n"));
                out.push_str(&tail(&b.output(), 20));
            }
        }
        out
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n") + "\n"
}

/// Waits for a process to exit; `Err` names it.
pub async fn wait_exit(service: &mut Service, within: Duration) -> anyhow::Result<()> {
    service.wait(within).await.map(|_| ())
}
