//! The fault suite's stack: test-support's [`Stack`] with a private
//! PostgreSQL and nats-server, one `todo-app`, three `broadcaster` replicas
//! forwarding to the in-process receiver, and the suite's settings.
//!
//! nats-server runs with the configuration shipped to the cluster, so the
//! app and each broadcaster connect as their own least-privileged users, as
//! in production; the harness itself inspects streams as `admin`.

use std::time::Duration;

use test_support::{Nats, Postgres, Stack, StackBuilder};

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

/// The suite's stack, logging at `log_filter`, not started yet.
fn builder(log_filter: &str) -> StackBuilder {
    telemetry::init_for_tests();
    let mut builder = StackBuilder::new()
        .secured_nats()
        .api_token(API_TOKEN)
        .logs("json", Some(log_filter))
        // The suite's load comes from one address, far above what the
        // default allows one client; the limit has tests of its own.
        .app_env("WRITE_RATE_LIMIT", "off")
        .broadcasters_to_receiver(REPLICAS)
        .broadcaster_env("WEBHOOK_TIMEOUT", format!("{}s", WEBHOOK_TIMEOUT.as_secs()));
    for (key, value) in BROADCASTER_ENV {
        builder = builder.broadcaster_env(key, *value);
    }
    builder
}

/// Starts everything and waits until each part is ready.
pub async fn start() -> anyhow::Result<Stack> {
    builder("info").start().await
}

/// As [`start`], with extra app arguments and environment (the app's
/// test-only fault switch).
pub async fn start_with_app(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Stack> {
    let mut builder = builder("info");
    for arg in args {
        builder = builder.app_arg(arg);
    }
    for (key, value) in env {
        builder = builder.app_env(key, *value);
    }
    builder.start().await
}

/// As [`start`], with the app and every replica logging at debug level
/// (everything a process can write to its log, for checks that read the
/// logs), and with secrets where deployments keep them besides the usual
/// ones: `database_password` in `DATABASE_URL` (this
/// PostgreSQL trusts loopback, so it connects with any password) and
/// `webhook_token` in every `WEBHOOK_URL` (chat webhooks carry theirs).
pub async fn start_logging_debug_with_secrets(
    database_password: &str,
    webhook_token: &str,
) -> anyhow::Result<Stack> {
    let postgres = Postgres::start()?;
    let url = format!(
        "postgres://postgres:{database_password}@127.0.0.1:{}/postgres",
        postgres.port()
    );
    builder("debug")
        .on_postgres(postgres, url)
        .webhook_url_query(format!("token={webhook_token}"))
        .start()
        .await
}

/// As [`start`], on a nats-server the scenario started (e.g. with its store
/// on a small disk; start it secured, as [`start`] does).
pub async fn start_on(nats: Nats) -> anyhow::Result<Stack> {
    builder("info").on_nats(nats).start().await
}

/// As [`start`], on the first node of a cluster the scenario started
/// ([`test_support::start_secured_cluster`]), with every stream and the
/// broadcasters' bucket at `replicas` copies, as production runs them.
pub async fn start_on_cluster(first_node: Nats, replicas: u8) -> anyhow::Result<Stack> {
    let replicas = replicas.to_string();
    builder("info")
        .on_nats(first_node)
        .app_env(events::STREAM_REPLICAS_VARIABLE, replicas.clone())
        .broadcaster_env(events::STREAM_REPLICAS_VARIABLE, replicas)
        .start()
        .await
}

/// As [`start`], with settings of the `TODOS` stream that the app and the
/// broadcasters must agree on (each would bring the stream back to its
/// own), set on both.
pub async fn start_with_stream_env(env: &[(&str, &str)]) -> anyhow::Result<Stack> {
    let mut builder = builder("info");
    for (key, value) in env {
        builder = builder.app_env(key, *value).broadcaster_env(key, *value);
    }
    builder.start().await
}

/// As [`start`], on a PostgreSQL the scenario started, which the app and
/// the ledger reach at `url` (through a [`test_support::Forwarder`], as
/// through CloudNativePG's `-rw` Service).
pub async fn start_on_postgres(postgres: Postgres, url: String) -> anyhow::Result<Stack> {
    builder("info").on_postgres(postgres, url).start().await
}

/// As [`start_with_app`], with the app on `port` (chosen first, e.g. so an
/// OpenID provider knows the app's redirect URI before the app starts).
pub async fn start_with_app_on(port: u16, env: &[(&str, &str)]) -> anyhow::Result<Stack> {
    let mut builder = builder("info").app_port(port);
    for (key, value) in env {
        builder = builder.app_env(key, *value);
    }
    builder.start().await
}
