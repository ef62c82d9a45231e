//! `cronjobs next-request` as the `jobs` user on a server secured with the
//! shipped `nats.conf`: one request, one todo, acknowledged; a failed job
//! hands its request back; nothing pending is not a failure.

use std::time::Duration;

use async_nats::jetstream;
use test_support::{Nats, Role};

use crate::helpers::{Answer, ArticleServer, TodoApp, assert_success, cronjobs};

/// The stream and consumer `kustomize/components/keda-wikipedia/stream.yaml`
/// declares (NACK creates them in a cluster), made here as `admin`.
async fn jobs_stream(nats: &Nats) -> jetstream::stream::Stream {
    let admin = jetstream::new(nats.connect(Role::Admin).await.unwrap());
    let stream = admin
        .create_stream(jetstream::stream::Config {
            name: "JOBS".to_owned(),
            subjects: vec!["jobs.wikipedia-todo".to_owned()],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            max_age: Duration::from_secs(3600),
            max_messages: 1000,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .unwrap();
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("wikipedia-todo".to_owned()),
            filter_subject: "jobs.wikipedia-todo".to_owned(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(120),
            max_deliver: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    stream
}

async fn request(nats: &Nats) {
    let admin = jetstream::new(nats.connect(Role::Admin).await.unwrap());
    admin
        .publish("jobs.wikipedia-todo", "".into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// The consumer's counts: (waiting to be delivered, delivered and not yet acknowledged).
async fn pending(stream: &jetstream::stream::Stream) -> (u64, usize) {
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.get_consumer("wikipedia-todo").await.unwrap();
    let info = consumer.info().await.unwrap();
    (info.num_pending, info.num_ack_pending)
}

async fn next_request(app: &TodoApp, articles: &ArticleServer) -> std::process::Output {
    let nats = app.nats.server.as_ref().unwrap();
    let mut env = app.job_env(articles);
    env.extend(nats.service_env(Role::Jobs));
    env.push(("REQUEST_WAIT", "2s".to_owned()));
    cronjobs(&["next-request"], &env).await
}

#[tokio::test]
async fn each_run_serves_one_request_and_acknowledges_it() {
    let app = TodoApp::spawn_secured().await;
    let nats = app.nats.server.as_ref().unwrap();
    let stream = jobs_stream(nats).await;
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Queue")).await;
    request(nats).await;
    request(nats).await;

    assert_success(&next_request(&app, &articles).await);
    assert_eq!(app.texts().await.len(), 1, "one request, one todo");
    assert_eq!(pending(&stream).await, (1, 0));

    assert_success(&next_request(&app, &articles).await);
    assert_eq!(
        app.texts().await,
        ["Read https://en.wikipedia.org/wiki/Queue"; 2]
    );
    assert_eq!(pending(&stream).await, (0, 0));
    let mut stream = stream;
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        0,
        "acknowledged requests leave the work queue"
    );
    let log = std::fs::read_to_string(nats.log_path()).unwrap();
    assert!(
        !log.contains("Violation"),
        "the jobs user's permissions suffice: {log}"
    );
}

#[tokio::test]
async fn nothing_pending_exits_cleanly_after_the_wait() {
    let app = TodoApp::spawn_secured().await;
    let nats = app.nats.server.as_ref().unwrap();
    jobs_stream(nats).await;
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Idle")).await;

    let output = next_request(&app, &articles).await;

    assert_success(&output);
    assert!(app.texts().await.is_empty());
}

#[tokio::test]
async fn a_failed_job_hands_its_request_back_for_another_run() {
    let app = TodoApp::spawn_secured().await;
    let nats = app.nats.server.as_ref().unwrap();
    let stream = jobs_stream(nats).await;
    // Not a redirect: the job cannot make a todo of it.
    let broken = ArticleServer::start(Answer::Page).await;
    request(nats).await;

    let output = next_request(&app, &broken).await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("will be retried"), "{stderr}");
    assert!(app.texts().await.is_empty());
    // Handed back (a delayed nak): not lost, and not held by the dead run.
    let (waiting, held) = pending(&stream).await;
    assert_eq!(waiting + held as u64, 1, "the request is still there");
    let mut stream = stream;
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}
