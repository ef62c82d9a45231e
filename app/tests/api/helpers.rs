//! `spawn_app` and friends: the app on a random port, with request helpers.

use std::borrow::Cow;
use std::time::Duration;

use app::api_tokens::TokenSource;
use app::client::ClientIp;
use app::db::MIGRATOR;
use app::domain::ApiTokens;
use app::rate_limit::RateLimit;
use app::{Application, Config};
use async_nats::jetstream::{self, consumer};
use events::TodoEvent;
use futures::StreamExt;
use secrecy::SecretString;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use test_support::{
    Service, TestDatabase, TestNats, eventually, free_port, test_database, test_nats,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A migrated database of its own and one connection to it, made as the
/// app makes its connections ([`app::db::connect_options`]): for tests of
/// how the app's statements are planned and what they read. Keep the
/// database while the pool is used.
pub async fn connected_as_the_app() -> (TestDatabase, PgPool) {
    let database = test_database().await.unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(app::db::connect_options(&database.url.parse().unwrap()))
        .await
        .unwrap();
    app::db::MIGRATOR.run(&pool).await.unwrap();
    (database, pool)
}

/// What this transaction has read of `table`: rows fetched through its
/// indexes (counted per index), and rows read by scanning the table.
pub async fn rows_read(conn: &mut sqlx::PgConnection, table: &str) -> (i64, i64) {
    sqlx::query_as(
        "select (select sum(pg_stat_get_xact_tuples_fetched(indexrelid))::bigint
                 from pg_index where indrelid = $1::regclass),
                pg_stat_get_xact_tuples_returned($1::regclass)",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

pub const API_TOKEN: &str = "test-token-0123456789";
/// How long anything asynchronous may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct TestApp {
    pub address: String,
    /// The admin port's address, when the config sets one.
    pub admin_address: Option<String>,
    pub db: PgPool,
    pub nats_url: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _database: Option<TestDatabase>,
    _nats: Option<TestNats>,
}

/// The real `todo-app` binary, where a test needs the process: its signals,
/// its exit status, its output.
pub struct AppProcess {
    pub service: Service,
    pub port: u16,
    database: TestDatabase,
    _nats: TestNats,
}

impl AppProcess {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn database_url(&self) -> &str {
        &self.database.url
    }
}

/// Starts the binary on a free port against a fresh database and the test
/// NATS, with `envs` besides, and waits until it is ready (on `ADMIN_PORT`
/// when `envs` sets it).
pub async fn spawn_binary(envs: &[(&str, String)]) -> AppProcess {
    let database = test_database().await.expect("a test database");
    let nats = test_nats().expect("a test nats-server");
    let port = free_port();
    let mut all = vec![
        ("DATABASE_URL", database.url.clone()),
        ("NATS_URL", nats.url.clone()),
        ("PORT", port.to_string()),
    ];
    all.extend_from_slice(envs);
    let ready_port = envs
        .iter()
        .find(|(name, _)| *name == "ADMIN_PORT")
        .map_or_else(|| port.to_string(), |(_, admin)| admin.clone());
    let service = Service::spawn(
        env!("CARGO_BIN_EXE_todo-app").as_ref(),
        &[],
        &all,
        &format!("http://127.0.0.1:{ready_port}/readyz"),
    )
    .await
    .expect("todo-app starts and gets ready");
    AppProcess {
        service,
        port,
        database,
        _nats: nats,
    }
}

/// Starts the app against a fresh database and the test NATS, ready to serve.
pub async fn spawn_app() -> TestApp {
    spawn_app_adjusted(|_| {}).await
}

/// Like [`spawn_app`], with the configuration changed by `adjust` first.
pub async fn spawn_app_adjusted(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let database = test_database().await.expect("a test database");
    let nats = test_nats().expect("a test nats-server");
    let mut app = spawn_app_with(&database.url, &nats.url, Some(API_TOKEN), adjust).await;
    app.wait_until_ready().await;
    app._database = Some(database);
    app._nats = Some(nats);
    app
}

/// Starts the app against given servers; does not wait for readiness.
pub async fn spawn_app_on(database_url: &str, nats_url: &str, token: Option<&str>) -> TestApp {
    spawn_app_with(database_url, nats_url, token, |_| {}).await
}

/// Like [`spawn_app_on`], with the configuration changed by `adjust` first.
pub async fn spawn_app_with(
    database_url: &str,
    nats_url: &str,
    token: Option<&str>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    telemetry::init_for_tests();
    let mut config = Config {
        database: database_url
            .parse::<PgConnectOptions>()
            .expect("a database URL"),
        pool_size: app::config::DEFAULT_POOL_SIZE,
        nats: service_kit::NatsSettings::new(nats_url.parse().expect("a NATS URL"), None),
        todos_stream: events::TodosStream::SINGLE_NODE,
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        api_tokens: token
            .map(|t| TokenSource::Fixed(ApiTokens::single(&SecretString::from(t.to_owned())))),
        cookie_key: None,
        write_limit: Some(RateLimit::DEFAULT),
        client_ip: ClientIp::Peer,
        page_cache_max_age: app::page_cache::DEFAULT_MAX_AGE,
        stream_limits: app::open_streams::StreamLimits::DEFAULT,
        picture: None,
        auth: app::auth::Auth::Off,
    };
    adjust(&mut config);
    let application = Application::build(config).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let admin_address = application
        .admin_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        admin_address,
        db: PgPool::connect_lazy(database_url).expect("a pool"),
        nats_url: nats_url.to_owned(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown,
        handle: Some(handle),
        _database: None,
        _nats: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `path` on the admin port; panics if the app has none.
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self
            .admin_address
            .as_ref()
            .expect("the app has an admin port");
        format!("{admin}{path}")
    }

    /// Waits for `/readyz`, on the admin port when there is one.
    pub async fn wait_until_ready(&self) {
        let readyz = match &self.admin_address {
            Some(_) => self.admin_url("/readyz"),
            None => self.url("/readyz"),
        };
        eventually(DEADLINE, "the app to become ready", || async {
            let response = self.client.get(&readyz).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await
        .unwrap();
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A counter's value from `/metrics`, by its series (`name{label="value"}`);
    /// 0 when the series is not there yet.
    pub async fn counter(&self, series: &str) -> u64 {
        let metrics = self.get("/metrics").await.text().await.unwrap();
        let prefix = format!("{series} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |value| value.trim().parse().unwrap())
    }

    /// A GET on the admin port.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.admin_url(path)).send().await.unwrap()
    }

    /// A form post as a browser without JavaScript sends it.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A request as htmx sends it.
    pub async fn htmx(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .header("hx-request", "true")
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(API_TOKEN)
    }

    /// Creates a todo through the JSON API and returns its id.
    pub async fn create_todo(&self, text: &str) -> Uuid {
        let response = self
            .api(reqwest::Method::POST, "/api/todos")
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn todo_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from todos")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn outbox_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from outbox")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Waits until the relay has published everything in the outbox.
    pub async fn wait_for_outbox_drained(&self) {
        eventually(DEADLINE, "the outbox to be drained", || async {
            (self.outbox_count().await == 0).then_some(())
        })
        .await
        .unwrap();
    }

    /// Every event in `TODOS` about the given todos, in stream order. Call
    /// after `wait_for_outbox_drained`: it reads up to the stream's current end.
    pub async fn events_about(&self, todo_ids: &[Uuid]) -> Vec<TodoEvent> {
        read_stream(&self.nats_url)
            .await
            .into_iter()
            .filter(|event| todo_ids.contains(&event.todo.id))
            .collect()
    }

    /// Stops the app as SIGTERM would and waits for it to finish.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("the app stops within 10 s")
                .expect("the app task did not panic")
                .expect("the app stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Every event in the `TODOS` stream, from the first to the current last.
pub async fn read_stream(nats_url: &str) -> Vec<TodoEvent> {
    let client = async_nats::connect(nats_url).await.expect("NATS answers");
    let js = jetstream::new(client);
    let mut stream = js
        .get_stream(events::STREAM)
        .await
        .expect("the TODOS stream exists");
    let last = stream.info().await.unwrap().state.last_sequence;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut events = Vec::new();
    if last == 0 {
        return events;
    }
    loop {
        let message = tokio::time::timeout(DEADLINE, messages.next())
            .await
            .expect("the stream delivers its messages")
            .expect("the stream does not end")
            .expect("a message");
        let info = message.info().unwrap();
        let sequence = info.stream_sequence;
        events.push(TodoEvent::from_json(&message.payload).expect("a valid event"));
        if sequence >= last {
            break;
        }
    }
    events
}

/// A tokens file in a folder of its own, as `API_TOKENS_FILE` names it.
pub struct TokensFile {
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TokensFile {
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = Self {
            path: dir.path().join("tokens"),
            _dir: dir,
        };
        file.replace(text);
        file
    }

    /// Replaces the content at once, by renaming a new file over the old,
    /// as editors and Kubernetes's Secret updates do.
    pub fn replace(&self, text: &str) {
        let next = self.path.with_extension("next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &self.path).unwrap();
    }
}

/// Starts the app with its API tokens read from `file`, as
/// `API_TOKENS_FILE` does, and kept current with it.
pub async fn spawn_app_with_tokens(file: &TokensFile) -> TestApp {
    let text = std::fs::read_to_string(&file.path).unwrap();
    let tokens = ApiTokens::parse(&file.path, &text).expect("a valid tokens file");
    let path = file.path.clone();
    spawn_app_adjusted(|config| config.api_tokens = Some(TokenSource::File { path, tokens })).await
}

/// Applies every migration older than `version` to `pool`: the schema as it
/// was before that migration, for tests of what it does to rows already
/// there.
pub async fn migrate_to_before(pool: &PgPool, version: i64) {
    let before = Migrator {
        migrations: Cow::Owned(
            MIGRATOR
                .iter()
                .filter(|migration| migration.version < version)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    assert!(
        before.iter().count() < MIGRATOR.iter().count(),
        "migration {version} exists"
    );
    before.run(pool).await.unwrap();
}
