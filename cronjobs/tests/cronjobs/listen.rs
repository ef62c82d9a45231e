//! `cronjobs listen`: replicas in one queue group, replies, health, shutdown.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::join_all;
use test_support::{Role, Service, free_port};
use uuid::Uuid;

use crate::helpers::{Answer, ArticleServer, CRONJOBS, DEADLINE, TodoApp};

const SUBJECT: &str = "jobs.wikipedia-todo";

async fn spawn_listener(app: &TodoApp, articles: &ArticleServer) -> (Service, u16) {
    let nats = vec![("NATS_URL", app.nats.url.clone())];
    spawn_listen(app, articles, nats, "readyz")
        .await
        .expect("cronjobs listen becomes ready")
}

/// `cronjobs listen` for `app` with `nats` as its NATS variables, started
/// once `/<probe>` (`healthz` or `readyz`) answers 200; and its port.
async fn spawn_listen(
    app: &TodoApp,
    articles: &ArticleServer,
    nats: Vec<(&'static str, String)>,
    probe: &str,
) -> anyhow::Result<(Service, u16)> {
    let port = free_port();
    let mut env = app.job_env(articles);
    env.extend(nats);
    env.push(("PORT", port.to_string()));
    env.push(("LOG_FORMAT", "pretty".to_owned()));
    let service = Service::spawn(
        CRONJOBS.as_ref(),
        &["listen"],
        &env,
        &format!("http://127.0.0.1:{port}/{probe}"),
    )
    .await?;
    Ok((service, port))
}

/// What one replica's `/metrics` says.
async fn metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `cronjobs_wikipedia_todo_runs_total{outcome="created"}` of one replica.
async fn created_count(port: u16) -> u64 {
    metrics(port)
        .await
        .lines()
        .find(|line| line.starts_with(r#"cronjobs_wikipedia_todo_runs_total{outcome="created"}"#))
        .and_then(|line| line.split_whitespace().last())
        .expect("the counter is exported")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn three_replicas_turn_20_requests_into_exactly_20_todos_and_reply_with_their_ids() {
    let app = TodoApp::spawn().await;
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Queue")).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(spawn_listener(&app, &articles).await);
    }
    let nats = async_nats::connect(&app.nats.url).await.unwrap();

    let replies = join_all((0..20).map(|_| {
        let nats = nats.clone();
        async move {
            let reply = tokio::time::timeout(DEADLINE, nats.request(SUBJECT, "".into()))
                .await
                .expect("a reply in time")
                .expect("a reply");
            serde_json::from_slice::<serde_json::Value>(&reply.payload).unwrap()
        }
    }))
    .await;

    let replied: HashSet<Uuid> = replies
        .iter()
        .map(|reply| {
            assert_eq!(
                reply["text"], "Read https://en.wikipedia.org/wiki/Queue",
                "{reply}"
            );
            reply["id"]
                .as_str()
                .expect("the reply carries the id")
                .parse()
                .unwrap()
        })
        .collect();
    let stored: HashSet<Uuid> = sqlx::query_scalar("select id from todos")
        .fetch_all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(replied.len(), 20, "20 different todos");
    assert_eq!(stored, replied, "exactly the replied todos exist");
    let mut per_replica = Vec::new();
    for (_, port) in &replicas {
        per_replica.push(created_count(*port).await);
    }
    assert_eq!(
        per_replica.iter().sum::<u64>(),
        20,
        "each request ran once across the group: {per_replica:?}"
    );
}

#[tokio::test]
async fn a_failed_request_is_answered_with_its_reason() {
    let app = TodoApp::spawn().await;
    let articles = ArticleServer::start(Answer::Page).await;
    let (_listener, port) = spawn_listener(&app, &articles).await;
    let nats = async_nats::connect(&app.nats.url).await.unwrap();

    let reply = tokio::time::timeout(DEADLINE, nats.request(SUBJECT, "".into()))
        .await
        .unwrap()
        .unwrap();

    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let error = reply["error"].as_str().expect("an error reply");
    assert!(error.contains("instead of redirecting"), "{error}");
    assert!(reply.get("id").is_none());
    assert!(app.texts().await.is_empty());
    let metrics = metrics(port).await;
    assert!(
        metrics.contains(r#"cronjobs_wikipedia_todo_runs_total{outcome="failed"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn health_answers_and_sigterm_stops_listen_cleanly() {
    let app = TodoApp::spawn().await;
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Signal")).await;
    let (mut listener, port) = spawn_listener(&app, &articles).await;

    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    listener.terminate();
    let status = listener.wait(Duration::from_secs(5)).await.unwrap();
    assert!(status.success(), "exit {status:?}\n{}", listener.output());
}

#[tokio::test]
async fn listen_is_not_ready_until_nats_is_up() {
    let app = TodoApp::spawn().await;
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Patience")).await;
    let nats_port = free_port();
    let nats_url = vec![("NATS_URL", format!("nats://127.0.0.1:{nats_port}"))];
    let (_listener, port) = spawn_listen(&app, &articles, nats_url, "healthz")
        .await
        .unwrap();

    let readyz = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);

    let dir = tempfile::tempdir().unwrap();
    let nats = test_support::Nats::start_in(dir.path(), nats_port).unwrap();
    test_support::eventually(DEADLINE, "listen to become ready", || async {
        let readyz = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .ok()?;
        (readyz.status() == 200).then_some(())
    })
    .await
    .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let reply = tokio::time::timeout(DEADLINE, client.request(SUBJECT, "".into()))
        .await
        .unwrap()
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(reply["id"].is_string(), "{reply}");
}

#[tokio::test]
async fn as_the_jobs_user_listen_answers_requests_on_a_least_privilege_server() {
    let app = TodoApp::spawn_secured().await;
    let nats = app.nats.server.as_ref().expect("a private server");
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Privilege")).await;
    let _listener = spawn_listen(&app, &articles, nats.service_env(Role::Jobs), "readyz")
        .await
        .expect("cronjobs listen becomes ready as the jobs user");
    // Operators send requests as `admin` (`nats request jobs.wikipedia-todo ''`).
    let admin = nats.connect(Role::Admin).await.unwrap();

    let reply = tokio::time::timeout(DEADLINE, admin.request(SUBJECT, "".into()))
        .await
        .expect("a reply in time")
        .expect("a reply");

    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(
        reply["text"], "Read https://en.wikipedia.org/wiki/Privilege",
        "{reply}"
    );
    assert_eq!(
        app.texts().await,
        ["Read https://en.wikipedia.org/wiki/Privilege"]
    );
    let log = std::fs::read_to_string(nats.log_path()).unwrap();
    assert!(!log.contains("Violation"), "{log}");
}
