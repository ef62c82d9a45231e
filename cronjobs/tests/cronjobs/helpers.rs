//! The todo app as a process, a stand-in for Wikipedia's random-article
//! endpoint, and running `cronjobs` itself.

use std::process::Output;
use std::time::Duration;

use sqlx::PgPool;
use test_support::{
    Nats, Role, Service, TestDatabase, TestNats, free_port, test_database, test_nats,
};

pub use test_support::articles::{Answer, ArticleServer};

pub const API_TOKEN: &str = "cronjobs-test-token";
pub const CRONJOBS: &str = env!("CARGO_BIN_EXE_cronjobs");
/// How long anything asynchronous may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// `todo-app` on a free port, with its own database and NATS.
pub struct TodoApp {
    pub url: String,
    pub db: PgPool,
    pub database: TestDatabase,
    pub nats: TestNats,
    _service: Service,
}

impl TodoApp {
    pub async fn spawn() -> TodoApp {
        let nats = test_nats().expect("a test nats-server");
        let nats_env = vec![("NATS_URL", nats.url.clone())];
        TodoApp::spawn_with(nats, nats_env).await
    }

    /// As [`TodoApp::spawn`], on a private nats-server running the shipped
    /// least-privilege configuration, the app logged in as its own user.
    pub async fn spawn_secured() -> TodoApp {
        let server = Nats::start_secured().expect("a secured nats-server");
        let nats_env = server.service_env(Role::App);
        let nats = TestNats {
            url: server.url(),
            server: Some(server),
        };
        TodoApp::spawn_with(nats, nats_env).await
    }

    async fn spawn_with(nats: TestNats, nats_env: Vec<(&'static str, String)>) -> TodoApp {
        let database = test_database().await.expect("a test database");
        let port = free_port();
        let mut env = nats_env;
        env.extend([
            ("DATABASE_URL", database.url.clone()),
            ("PORT", port.to_string()),
            ("API_TOKEN", API_TOKEN.to_owned()),
            ("LOG_FORMAT", "pretty".to_owned()),
        ]);
        let service = Service::spawn(
            &test_support::workspace_binary("todo-app"),
            &[],
            &env,
            &format!("http://127.0.0.1:{port}/readyz"),
        )
        .await
        .expect("todo-app starts (build it first: cargo build -p app)");
        TodoApp {
            url: format!("http://127.0.0.1:{port}"),
            db: PgPool::connect(&database.url).await.expect("a pool"),
            database,
            nats,
            _service: service,
        }
    }

    /// Every todo's text, oldest first.
    pub async fn texts(&self) -> Vec<String> {
        sqlx::query_scalar("select text from todos order by created_at, id")
            .fetch_all(&self.db)
            .await
            .unwrap()
    }

    /// Creates a todo through the JSON API and returns its id.
    pub async fn create(&self, text: &str) -> uuid::Uuid {
        let response = reqwest::Client::new()
            .post(format!("{}/api/todos", self.url))
            .bearer_auth(API_TOKEN)
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// The environment `wikipedia-todo` and `listen` need to reach this app.
    pub fn job_env(&self, articles: &ArticleServer) -> Vec<(&'static str, String)> {
        vec![
            ("TODO_API_URL", self.url.clone()),
            ("API_TOKEN", API_TOKEN.to_owned()),
            ("RANDOM_ARTICLE_URL", articles.random_url()),
            ("HTTP_TIMEOUT_SECS", "5".to_owned()),
        ]
    }
}

/// Runs `cronjobs <args>` to completion with only `envs` (and `PATH`) set.
pub async fn cronjobs(args: &[&str], envs: &[(&str, String)]) -> Output {
    let mut command = tokio::process::Command::new(CRONJOBS);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // Under `cargo xtask coverage` the child writes its profile there.
        .envs(std::env::var_os("LLVM_PROFILE_FILE").map(|file| ("LLVM_PROFILE_FILE", file)))
        .env("LOG_FORMAT", "pretty")
        .kill_on_drop(true);
    for (key, value) in envs {
        command.env(key, value);
    }
    tokio::time::timeout(DEADLINE, command.output())
        .await
        .expect("cronjobs finishes")
        .expect("cronjobs runs")
}

/// stderr, asserting the failure was reported on exactly one line.
pub fn one_line_failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure\nstdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
