//! The whole Docket stack as real processes: PostgreSQL, nats-server,
//! `todo-app`, and the broadcaster replicas delivering to a webhook
//! receiver, each on a private loopback port; with sign-in, the OpenID
//! provider the app signs people in with.
//!
//! The one way to start it, for the E2E stories, the fault suite,
//! `cargo xtask up` and `cargo xtask bench`: a [`StackBuilder`] says which
//! parts run and how (a throwaway or a kept data folder, open or secured
//! NATS, the in-process [`Receiver`] or the `broadcaster sink` process),
//! and [`StackBuilder::start`] starts them in order, each ready before the
//! next. Dropping the [`Stack`] stops everything, services first.

use std::ffi::OsString;
use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::task::spawn_blocking;

use crate::webhook::{Receiver, Reply, SECRET};
use crate::{
    Nats, OidcClient, OidcProvider, PORT_ATTEMPTS, Postgres, Role, ServiceCommand, TestDatabase,
    eventually, free_port, workspace_binary,
};

/// Where the database comes from.
#[derive(Debug)]
enum DatabaseFrom {
    /// A private PostgreSQL, removed when the stack stops.
    Private,
    /// [`crate::test_database`]: a new database on `DATABASE_URL`'s server
    /// when set, else on a private PostgreSQL.
    Test,
    /// PostgreSQL with its data kept in a folder, database `docket`.
    Kept { dir: PathBuf, port: u16 },
    /// A server the caller started, reached at `url` (which may lead
    /// through a [`crate::Forwarder`], as a Service would).
    Given { postgres: Postgres, url: String },
}

/// Where nats-server comes from.
enum NatsFrom {
    Private { secured: bool },
    Kept { dir: PathBuf, port: u16 },
    Given(Nats),
}

/// Where the broadcasters deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WebhookTo {
    /// The in-process [`Receiver`], each replica on a path of its own.
    Receiver,
    /// A `broadcaster sink` process (prints and lists what it receives).
    Sink { port: Option<u16> },
}

/// How each spawned process runs.
#[derive(Debug, Clone)]
struct Spawning {
    binaries: Option<PathBuf>,
    /// `LOG_FORMAT` and `RUST_LOG` of every service (unset: their defaults).
    log_format: Option<String>,
    log_filter: Option<String>,
    /// Echoes output with the service's name (`cargo xtask up`), in a process
    /// group of its own so a terminal's Ctrl-C reaches the supervisor only.
    echo: bool,
    ready_timeout: Option<Duration>,
    /// Writes `<dir>/<name>.pid` as each service starts.
    pid_files: Option<PathBuf>,
}

/// What the app and broadcasters run with, kept for restarts.
#[derive(Debug, Clone)]
struct Settings {
    spawning: Spawning,
    app_port: Option<u16>,
    app_args: Vec<OsString>,
    app_env: Vec<(String, String)>,
    broadcaster_port: Option<u16>,
    broadcaster_env: Vec<(String, String)>,
    sink_env: Vec<(String, String)>,
    /// Appended to each broadcaster's `WEBHOOK_URL` after a `?`.
    webhook_query: Option<String>,
}

/// Says which parts of the stack run and how; [`StackBuilder::start`]
/// starts them.
pub struct StackBuilder {
    database: DatabaseFrom,
    nats: NatsFrom,
    app: bool,
    api_token: String,
    broadcasters: usize,
    webhook: Option<WebhookTo>,
    sign_in: bool,
    settings: Settings,
}

impl Default for StackBuilder {
    fn default() -> Self {
        StackBuilder::new()
    }
}

impl StackBuilder {
    /// A private PostgreSQL, an open private nats-server and the app with a
    /// random API token; no broadcaster.
    pub fn new() -> StackBuilder {
        StackBuilder {
            database: DatabaseFrom::Private,
            nats: NatsFrom::Private { secured: false },
            app: true,
            api_token: uuid::Uuid::new_v4().simple().to_string(),
            broadcasters: 0,
            webhook: None,
            sign_in: false,
            settings: Settings {
                spawning: Spawning {
                    binaries: None,
                    log_format: None,
                    log_filter: None,
                    echo: false,
                    ready_timeout: None,
                    pid_files: None,
                },
                app_port: None,
                app_args: Vec::new(),
                app_env: Vec::new(),
                broadcaster_port: None,
                broadcaster_env: Vec::new(),
                sink_env: Vec::new(),
                webhook_query: None,
            },
        }
    }

    /// A new database from [`crate::test_database`] instead of a private
    /// PostgreSQL of its own.
    pub fn test_database(mut self) -> Self {
        self.database = DatabaseFrom::Test;
        self
    }

    /// `postgres`, started by the caller, which the app and the ledger reach
    /// at `url`; [`Stack::postgres_mut`] is `postgres`.
    pub fn on_postgres(mut self, postgres: Postgres, url: impl Into<String>) -> Self {
        self.database = DatabaseFrom::Given {
            postgres,
            url: url.into(),
        };
        self
    }

    /// Adds `?<query>` to each broadcaster's `WEBHOOK_URL`, as a chat
    /// webhook's URL carries its token (the receiver ignores it).
    pub fn webhook_url_query(mut self, query: impl Into<String>) -> Self {
        self.settings.webhook_query = Some(query.into());
        self
    }

    /// PostgreSQL with its data kept in `dir` between runs, on `port`, and
    /// the database `docket`.
    pub fn postgres_in(mut self, dir: &Path, port: u16) -> Self {
        self.database = DatabaseFrom::Kept {
            dir: dir.to_path_buf(),
            port,
        };
        self
    }

    /// nats-server with the configuration shipped to the cluster: each
    /// service connects as its own least-privileged user.
    pub fn secured_nats(mut self) -> Self {
        self.nats = NatsFrom::Private { secured: true };
        self
    }

    /// A secured nats-server with its JetStream data kept in `dir`, on `port`.
    pub fn nats_in(mut self, dir: &Path, port: u16) -> Self {
        self.nats = NatsFrom::Kept {
            dir: dir.to_path_buf(),
            port,
        };
        self
    }

    /// A nats-server the caller started (e.g. with its store on a small disk).
    pub fn on_nats(mut self, nats: Nats) -> Self {
        self.nats = NatsFrom::Given(nats);
        self
    }

    /// Only PostgreSQL, NATS and the webhook receiver: the caller starts the
    /// app itself (the bench times it).
    pub fn without_app(mut self) -> Self {
        self.app = false;
        self
    }

    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.api_token = token.into();
        self
    }

    /// The app's port (free by default); it keeps it across restarts.
    pub fn app_port(mut self, port: u16) -> Self {
        self.settings.app_port = Some(port);
        self
    }

    pub fn app_arg(mut self, arg: impl Into<OsString>) -> Self {
        self.settings.app_args.push(arg.into());
        self
    }

    /// An app variable, over the stack's own.
    pub fn app_env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.settings.app_env.push((key.to_owned(), value.into()));
        self
    }

    /// `count` broadcaster replicas (forward mode, generic format, signed)
    /// delivering to the in-process [`Receiver`].
    pub fn broadcasters_to_receiver(mut self, count: usize) -> Self {
        self.broadcasters = count;
        self.webhook = Some(WebhookTo::Receiver);
        self
    }

    /// One broadcaster delivering to a `broadcaster sink` process on `port`
    /// (free if `None`), signed with a new secret; with `broadcaster: false`
    /// only the sink starts and the caller starts the broadcaster.
    pub fn sink(mut self, port: Option<u16>, broadcaster: bool) -> Self {
        self.broadcasters = usize::from(broadcaster);
        self.webhook = Some(WebhookTo::Sink { port });
        self
    }

    /// Production's delivery: the broadcaster posts in Discord's format
    /// (`WEBHOOK_FORMAT=discord`) and the sink answers as a Discord
    /// channel's webhook does (`--accept discord`). Use with [`Self::sink`].
    pub fn discord(mut self) -> Self {
        self = self.broadcaster_env("WEBHOOK_FORMAT", "discord");
        self.settings
            .sink_env
            .push(("SINK_ACCEPT".to_owned(), "discord".to_owned()));
        self
    }

    /// Sign-in as production runs it: an [`OidcProvider`] starts before
    /// the app, knowing the app's redirect URI
    /// (`http://127.0.0.1:<app port>/auth/callback`), and the app runs with
    /// `AUTH=oidc` against it (its `OIDC_*`, `PUBLIC_URL` and a new
    /// `COOKIE_KEY`). The app's port is therefore chosen first and kept: a
    /// start that loses it to another process fails instead of moving.
    pub fn sign_in(mut self) -> Self {
        self.sign_in = true;
        self
    }

    /// The first broadcaster's operations port (free by default).
    pub fn broadcaster_port(mut self, port: u16) -> Self {
        self.settings.broadcaster_port = Some(port);
        self
    }

    /// A broadcaster variable, over the stack's own.
    pub fn broadcaster_env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.settings
            .broadcaster_env
            .push((key.to_owned(), value.into()));
        self
    }

    /// Runs the binaries in `dir` (e.g. `target/release`) instead of the
    /// ones [`workspace_binary`] finds.
    pub fn binaries_in(mut self, dir: &Path) -> Self {
        self.settings.spawning.binaries = Some(dir.to_path_buf());
        self
    }

    /// `LOG_FORMAT` and, if given, `RUST_LOG` for every service.
    pub fn logs(mut self, format: &str, filter: Option<&str>) -> Self {
        self.settings.spawning.log_format = Some(format.to_owned());
        self.settings.spawning.log_filter = filter.map(str::to_owned);
        self
    }

    /// Echoes every service's output prefixed with its name, and runs each in
    /// a process group of its own: for a supervisor in a terminal.
    pub fn echo(mut self) -> Self {
        self.settings.spawning.echo = true;
        self
    }

    /// How long each service may take to become ready (30 s by default).
    pub fn ready_timeout(mut self, within: Duration) -> Self {
        self.settings.spawning.ready_timeout = Some(within);
        self
    }

    /// Writes each service's pid to `<dir>/<name>.pid` as it starts, so a
    /// later run can stop what a killed one left.
    pub fn pid_files(mut self, dir: &Path) -> Self {
        self.settings.spawning.pid_files = Some(dir.to_path_buf());
        self
    }

    /// Starts PostgreSQL and NATS, then the receiver, the OpenID provider,
    /// the app and the broadcasters, each ready before the next.
    pub async fn start(mut self) -> anyhow::Result<Stack> {
        // The provider must know the redirect URI before the app runs, so
        // the app's port is picked first, and held while the servers and
        // the provider pick theirs: none of them can be handed it.
        let mut app_port_held = None;
        if self.sign_in && self.settings.app_port.is_none() {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
                .context("picking a port for the app")?;
            self.settings.app_port = Some(listener.local_addr()?.port());
            app_port_held = Some(listener);
        }
        let ((postgres, database, database_url), nats) =
            tokio::try_join!(start_database(self.database), start_nats(self.nats))?;
        let webhook_secret = match self.webhook {
            Some(WebhookTo::Sink { .. }) => new_webhook_secret(),
            _ => SECRET.to_owned(),
        };
        let mut stack = Stack {
            app: App {
                service: None,
                port: self.settings.app_port.unwrap_or_else(free_port),
            },
            broadcasters: Vec::new(),
            sink: None,
            receiver: None,
            oidc: None,
            cookie_key: None,
            nats,
            database_url,
            _database: database,
            postgres,
            api_token: self.api_token,
            webhook_secret,
            settings: self.settings,
            replicas_started: AtomicUsize::new(0),
        };
        match self.webhook {
            Some(WebhookTo::Receiver) => {
                stack.receiver = Some(Receiver::try_start(|_| Reply::Status(200)).await?);
            }
            Some(WebhookTo::Sink { port }) => stack.start_sink(port).await?,
            None => {}
        }
        if self.sign_in {
            stack.start_oidc_provider().await?;
        }
        drop(app_port_held);
        if self.app {
            stack.start_app_first().await?;
            if stack.oidc.is_some() {
                stack.wait_for_sign_in().await?;
            }
        }
        for _ in 0..self.broadcasters {
            let replica = stack.spawn_broadcaster().await?;
            stack.broadcasters.push(Some(replica));
        }
        Ok(stack)
    }
}

async fn start_database(
    from: DatabaseFrom,
) -> anyhow::Result<(Option<Postgres>, Option<TestDatabase>, String)> {
    match from {
        DatabaseFrom::Private => {
            let postgres = spawn_blocking(Postgres::start)
                .await?
                .context("PostgreSQL starts")?;
            let url = postgres.url();
            Ok((Some(postgres), None, url))
        }
        DatabaseFrom::Test => {
            let database = crate::test_database().await?;
            let url = database.url.clone();
            Ok((None, Some(database), url))
        }
        DatabaseFrom::Kept { dir, port } => {
            let postgres = spawn_blocking(move || Postgres::start_in(&dir, port))
                .await?
                .context("PostgreSQL starts")?;
            let server_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            let url = crate::ensure_database(&server_url, "docket").await?;
            Ok((Some(postgres), None, url))
        }
        DatabaseFrom::Given { postgres, url } => Ok((Some(postgres), None, url)),
    }
}

async fn start_nats(from: NatsFrom) -> anyhow::Result<Nats> {
    let started = match from {
        NatsFrom::Given(nats) => return Ok(nats),
        NatsFrom::Private { secured: false } => spawn_blocking(Nats::start).await?,
        NatsFrom::Private { secured: true } => spawn_blocking(Nats::start_secured).await?,
        NatsFrom::Kept { dir, port } => {
            spawn_blocking(move || Nats::start_secured_in(&dir, port)).await?
        }
    };
    started.context("nats-server starts")
}

/// A Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
fn new_webhook_secret() -> String {
    use base64::Engine;
    let key = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// A running stack; dropping it stops every part, services first.
pub struct Stack {
    // Fields drop in order: the services before what they depend on.
    pub app: App,
    pub broadcasters: Vec<Option<Replica>>,
    pub sink: Option<Sink>,
    pub receiver: Option<Receiver>,
    /// The OpenID provider, with [`StackBuilder::sign_in`].
    pub oidc: Option<OidcProvider>,
    /// The app's `COOKIE_KEY`, with [`StackBuilder::sign_in`].
    pub cookie_key: Option<String>,
    pub nats: Nats,
    /// The app's `DATABASE_URL`.
    pub database_url: String,
    _database: Option<TestDatabase>,
    /// PostgreSQL, unless the database is on a shared server.
    pub postgres: Option<Postgres>,
    pub api_token: String,
    /// What the broadcasters sign with.
    pub webhook_secret: String,
    settings: Settings,
    replicas_started: AtomicUsize,
}

/// A stack taken apart by [`Stack::into_parts`].
pub struct Parts {
    pub postgres: Option<Postgres>,
    pub nats: Nats,
    /// The OpenID provider, with [`StackBuilder::sign_in`].
    pub oidc: Option<OidcProvider>,
    /// Each service's name and process, in start order.
    pub services: Vec<(String, crate::Service)>,
}

/// The app, on a port that stays the same across restarts.
pub struct App {
    pub service: Option<crate::Service>,
    pub port: u16,
}

impl App {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The `broadcaster sink` process.
pub struct Sink {
    pub service: crate::Service,
    pub port: u16,
}

impl Sink {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A broadcaster replica; with the in-process receiver it delivers to a
/// path of its own ([`Receiver::url_for`] with its name).
pub struct Replica {
    pub name: String,
    pub port: u16,
    pub service: crate::Service,
}

impl Deref for Replica {
    type Target = crate::Service;

    fn deref(&self) -> &crate::Service {
        &self.service
    }
}

impl DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut crate::Service {
        &mut self.service
    }
}

impl Stack {
    /// The in-process receiver.
    ///
    /// # Panics
    /// If the stack was built without [`StackBuilder::broadcasters_to_receiver`].
    pub fn receiver(&self) -> &Receiver {
        self.receiver
            .as_ref()
            .expect("the stack delivers to the in-process receiver")
    }

    /// The stack's own PostgreSQL.
    ///
    /// # Panics
    /// If the database is on a shared server ([`StackBuilder::test_database`]).
    pub fn postgres(&self) -> &Postgres {
        self.postgres
            .as_ref()
            .expect("the stack runs a PostgreSQL of its own")
    }

    /// As [`Stack::postgres`], to stop and start it.
    pub fn postgres_mut(&mut self) -> &mut Postgres {
        self.postgres
            .as_mut()
            .expect("the stack runs a PostgreSQL of its own")
    }

    /// Where the stack's binaries are: the folder given to
    /// [`StackBuilder::binaries_in`], else the one [`workspace_binary`] uses.
    pub fn binaries_dir(&self) -> PathBuf {
        match &self.settings.spawning.binaries {
            Some(dir) => dir.clone(),
            None => workspace_binary("todo-app")
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }

    /// The environment a service connecting to NATS as `role` needs.
    pub fn nats_env(&self, role: Role) -> Vec<(&'static str, String)> {
        self.nats.service_env(role)
    }

    /// Starts the app the first time. On a port picked here rather than
    /// asked for, a failed start is tried again on another port, as
    /// [`crate::start_on_a_free_port`] does for the servers.
    async fn start_app_first(&mut self) -> anyhow::Result<()> {
        let mut attempt = 1;
        loop {
            match self.start_app().await {
                Ok(()) => return Ok(()),
                Err(error) if attempt == PORT_ATTEMPTS || self.settings.app_port.is_some() => {
                    return Err(error);
                }
                Err(_) => {
                    attempt += 1;
                    self.app.port = free_port();
                }
            }
        }
    }

    /// Starts the app (again) on its port.
    pub async fn start_app(&mut self) -> anyhow::Result<()> {
        let mut env = self.nats_env(Role::App);
        env.extend([
            ("DATABASE_URL", self.database_url.clone()),
            ("PORT", self.app.port.to_string()),
            ("API_TOKEN", self.api_token.clone()),
        ]);
        if let (Some(provider), Some(cookie_key)) = (&self.oidc, &self.cookie_key) {
            env.extend([
                ("AUTH", "oidc".to_owned()),
                ("OIDC_ISSUER_URL", provider.issuer_url().to_owned()),
                ("OIDC_CLIENT_ID", provider.client_id().to_owned()),
                ("OIDC_CLIENT_SECRET", provider.client_secret().to_owned()),
                ("PUBLIC_URL", self.app.url()),
                ("COOKIE_KEY", cookie_key.clone()),
            ]);
        }
        let mut command = self.command(
            "app",
            "todo-app",
            &format!("{}/readyz", self.app.url()),
            env,
        );
        for arg in &self.settings.app_args {
            command = command.arg(arg);
        }
        for (key, value) in &self.settings.app_env {
            command = command.env(key, value);
        }
        let service = self.spawn("app", command).await?;
        self.app.service = Some(service);
        Ok(())
    }

    /// A new broadcaster replica, ready; the caller keeps it (the stack's
    /// own are in [`Stack::broadcasters`]).
    pub async fn spawn_broadcaster(&self) -> anyhow::Result<Replica> {
        let number = self.replicas_started.fetch_add(1, Ordering::Relaxed);
        let name = if number == 0 && self.sink.is_some() {
            "broadcaster".to_owned()
        } else {
            format!("replica-{number}")
        };
        let port = match self.settings.broadcaster_port {
            Some(port) if number == 0 => port,
            _ => free_port(),
        };
        let url = match (&self.receiver, &self.sink) {
            (Some(receiver), _) => receiver.url_for(&name),
            (None, Some(sink)) => format!("{}/hook", sink.url()),
            (None, None) => anyhow::bail!("a broadcaster needs a receiver or a sink"),
        };
        let url = match &self.settings.webhook_query {
            Some(query) => format!("{url}?{query}"),
            None => url,
        };
        let mut env = self.nats_env(Role::Broadcaster);
        env.extend([
            ("PORT", port.to_string()),
            ("BROADCASTER_MODE", "forward".to_owned()),
            ("WEBHOOK_FORMAT", "generic".to_owned()),
            ("WEBHOOK_URL", url),
            ("WEBHOOK_SECRET", self.webhook_secret.clone()),
        ]);
        let mut command = self.command(
            &name,
            "broadcaster",
            &format!("http://127.0.0.1:{port}/readyz"),
            env,
        );
        for (key, value) in &self.settings.broadcaster_env {
            command = command.env(key, value);
        }
        let service = self.spawn(&name, command).await?;
        Ok(Replica {
            name,
            port,
            service,
        })
    }

    /// Starts the OpenID provider for the app on its (already chosen) port.
    async fn start_oidc_provider(&mut self) -> anyhow::Result<()> {
        let client = OidcClient {
            redirect_uris: vec![format!("{}/auth/callback", self.app.url())],
            post_logout_redirect_uris: vec![format!("{}/", self.app.url())],
            ..OidcClient::default()
        };
        let spawning = self.settings.spawning.clone();
        let provider = OidcProvider::start_adjusted(client, Vec::new(), |mut command| {
            if spawning.echo {
                command = command
                    .echo(format!("{:<ECHO_WIDTH$}", "oidc"))
                    .own_process_group();
            }
            if let Some(within) = spawning.ready_timeout {
                command = command.ready_timeout(within);
            }
            command
        })
        .await
        .context("the OpenID provider did not start")?;
        self.oidc = Some(provider);
        // 32 random bytes, hex: as long as production's key must be.
        self.cookie_key = Some(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        Ok(())
    }

    /// Waits until the app offers sign-in: it reads the provider's
    /// discovery document in the background after it is ready, and
    /// `/auth/login` sends the browser to the provider only then.
    async fn wait_for_sign_in(&self) -> anyhow::Result<()> {
        let probe = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .context("building the sign-in probe")?;
        let login = format!("{}/auth/login", self.app.url());
        let within = self
            .settings
            .spawning
            .ready_timeout
            .unwrap_or(Duration::from_secs(30));
        eventually(within, "the app to offer sign-in", || async {
            let response = probe.get(&login).send().await.ok()?;
            (response.status() == reqwest::StatusCode::SEE_OTHER).then_some(())
        })
        .await
    }

    async fn start_sink(&mut self, port: Option<u16>) -> anyhow::Result<()> {
        let port = port.unwrap_or_else(free_port);
        let env = vec![
            ("WEBHOOK_SECRET", self.webhook_secret.clone()),
            // The sink takes its port as a flag; clap reads it from here.
            ("SINK_PORT", port.to_string()),
        ];
        let mut command = self
            .command(
                "webhooks",
                "broadcaster",
                &format!("http://127.0.0.1:{port}/healthz"),
                env,
            )
            .arg("sink");
        for (key, value) in &self.settings.sink_env {
            command = command.env(key, value);
        }
        let service = self.spawn("webhooks", command).await?;
        self.sink = Some(Sink { service, port });
        Ok(())
    }

    /// A command for `binary` with `env`, the stack's log settings on top,
    /// echoing as `name` when asked.
    fn command(
        &self,
        name: &str,
        binary: &str,
        ready_url: &str,
        env: Vec<(&'static str, String)>,
    ) -> ServiceCommand {
        let spawning = &self.settings.spawning;
        let program = match &spawning.binaries {
            Some(dir) => dir.join(binary),
            None => workspace_binary(binary),
        };
        let mut command = ServiceCommand::new(program, ready_url);
        for (key, value) in env {
            command = command.env(key, value);
        }
        if let Some(format) = &spawning.log_format {
            command = command.env("LOG_FORMAT", format);
        }
        if let Some(filter) = &spawning.log_filter {
            command = command.env("RUST_LOG", filter);
        }
        if spawning.echo {
            command = command
                .echo(format!("{name:<ECHO_WIDTH$}"))
                .own_process_group();
        } else if std::env::var_os("TEST_LOG").is_some() {
            command = command.echo(name);
        }
        if let Some(within) = spawning.ready_timeout {
            command = command.ready_timeout(within);
        }
        command
    }

    async fn spawn(&self, name: &str, command: ServiceCommand) -> anyhow::Result<crate::Service> {
        let service = command
            .spawn()
            .await
            .with_context(|| format!("{name} did not start"))?;
        if let Some(dir) = &self.settings.spawning.pid_files {
            let pid_file = dir.join(format!("{name}.pid"));
            fs::write(&pid_file, service.pid().to_string())
                .with_context(|| format!("failed to write {}", pid_file.display()))?;
        }
        Ok(service)
    }

    /// SIGKILLs nats-server (no flush, no goodbye) and reaps it;
    /// [`Nats::start_again`] brings it back on the same store.
    pub fn kill_nats(&mut self) -> anyhow::Result<()> {
        self.nats.kill()
    }

    /// Hands the running parts over to a supervisor (`cargo xtask up`), which
    /// stops them itself: the servers and the services by name, in start order.
    pub fn into_parts(self) -> Parts {
        let mut services = Vec::new();
        if let Some(sink) = self.sink {
            services.push(("webhooks".to_owned(), sink.service));
        }
        if let Some(app) = self.app.service {
            services.push(("app".to_owned(), app));
        }
        services.extend(
            self.broadcasters
                .into_iter()
                .flatten()
                .map(|replica| (replica.name, replica.service)),
        );
        Parts {
            postgres: self.postgres,
            nats: self.nats,
            oidc: self.oidc,
            services,
        }
    }

    /// A JetStream handle on the stack's server, as `admin`.
    pub async fn jetstream(&self) -> anyhow::Result<async_nats::jetstream::Context> {
        let client = self.nats.connect(Role::Admin).await?;
        Ok(async_nats::jetstream::new(client))
    }

    /// The end of each service's output, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut add = |name: &str, service: &crate::Service, lines: usize| {
            out.push_str(&format!("--- {name} ---\n"));
            out.push_str(&crate::process::last_lines(&service.output(), lines));
            out.push('\n');
        };
        if let Some(app) = &self.app.service {
            add("todo-app", app, 40);
        }
        for replica in self.broadcasters.iter().flatten() {
            add(&replica.name, replica, 20);
        }
        if let Some(sink) = &self.sink {
            add("broadcaster sink", &sink.service, 20);
        }
        if let Some(provider) = &self.oidc {
            out.push_str("--- oidc-provider ---\n");
            out.push_str(&crate::process::last_lines(&provider.log(), 20));
            out.push('\n');
        }
        out
    }
}

/// Width of the name column in front of echoed output lines.
const ECHO_WIDTH: usize = 11;
