//! NATS security: the configuration shipped in `kustomize/base/nats/nats.conf`
//! gives each service a user of its own with only the permissions it needs.
//!
//! Against a real nats-server running that file: each service's user is
//! refused (a "Permissions Violation", and nothing delivered) where it must
//! not publish or subscribe, `admin` is not (so a refusal is the user's
//! permissions, not the test), wrong and missing passwords are refused, and
//! the real app and broadcasters deliver end to end as their own users
//! without a single violation in the server's log.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event};
use faults::eventually;
use faults::stack::{self, API_TOKEN};
use futures::StreamExt;
use test_support::webhook::{Receiver, Reply, SECRET};
use test_support::{Credentials, Nats, Role, Service, free_port, workspace_binary};
use tokio::sync::mpsc;
use uuid::Uuid;

/// How long a refusal may take to come back from the server.
const ANSWER: Duration = Duration::from_secs(5);

/// A client that collects the errors the server sends it.
struct Watched {
    client: Client,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Watched {
    async fn connect(nats: &Nats, role: Role) -> anyhow::Result<Watched> {
        let (sender, errors) = mpsc::unbounded_channel();
        let options = ConnectOptions::new().event_callback(move |event| {
            let sender = sender.clone();
            async move {
                if let Event::ServerError(error) = event {
                    let _ = sender.send(error.to_string());
                }
            }
        });
        let client = nats.settings(role).connect(options).await?;
        Ok(Watched { client, errors })
    }

    /// Publishes to `subject` and returns the server's error about it.
    async fn publish(&mut self, subject: &str) -> anyhow::Result<Option<String>> {
        self.client
            .publish(subject.to_owned(), "refuse me".into())
            .await?;
        self.error_within(ANSWER).await
    }

    /// Subscribes to `subject` and returns the server's error about it.
    async fn subscribe(&mut self, subject: &str) -> anyhow::Result<Option<String>> {
        let _subscriber = self.client.subscribe(subject.to_owned()).await?;
        self.error_within(ANSWER).await
    }

    /// The next error from the server, if one comes within `wait`.
    ///
    /// The server answers in order, so an error about what we sent arrives
    /// before the PONG that ends the flush; the event callback then runs on
    /// a task of its own, hence the wait.
    async fn error_within(&mut self, wait: Duration) -> anyhow::Result<Option<String>> {
        tokio::time::timeout(ANSWER, self.client.flush()).await??;
        Ok(tokio::time::timeout(wait, self.errors.recv())
            .await
            .ok()
            .flatten())
    }
}

/// How long to wait for an error that should not come, after a round trip.
const NO_ERROR: Duration = Duration::from_millis(500);

fn assert_refused(refusal: Option<String>, what: &str, subject: &str) {
    let refusal = refusal.unwrap_or_else(|| panic!("{what} `{subject}` was not refused"));
    assert!(
        refusal.contains("Permissions Violation") && refusal.contains(subject),
        "{what} `{subject}`: unexpected error {refusal}"
    );
}

/// The `TODOS` stream, created as the app creates it, holding one message.
async fn todos_stream(nats: &Nats) -> anyhow::Result<jetstream::stream::Stream> {
    let js = jetstream::new(nats.connect(Role::Admin).await?);
    let stream = js
        .get_or_create_stream(events::stream_config(events::TodosStream::SINGLE_NODE))
        .await?;
    js.publish("todos.created", "one".into()).await?.await?;
    Ok(stream)
}

/// Where each service must never publish, and who it is.
const FORBIDDEN_PUBLISHES: &[(Role, &str)] = &[
    // The app publishes todo events only: no jobs, no dead letters, no
    // stream administration beyond creating TODOS.
    (Role::App, "jobs.wikipedia-todo"),
    (Role::App, "todos_dlq.created"),
    (Role::App, "$JS.API.STREAM.DELETE.TODOS"),
    (Role::App, "$JS.API.STREAM.PURGE.TODOS"),
    (Role::App, "$JS.API.CONSUMER.DELETE.TODOS.broadcaster"),
    (Role::App, "$KV.broadcaster_delivered.forged"),
    // Its picture's buckets are its own to write, never to drop.
    (Role::App, "$JS.API.STREAM.DELETE.OBJ_docket_picture"),
    (
        Role::App,
        "$JS.API.STREAM.DELETE.KV_docket_picture_schedule",
    ),
    (Role::App, "$JS.API.STREAM.PURGE.KV_docket_picture_schedule"),
    (Role::Broadcaster, "$O.docket_picture.M.forged"),
    (Role::Jobs, "$KV.docket_picture_schedule.next_fetch_due"),
    // The broadcaster reads events; it never makes them, nor drops streams.
    (Role::Broadcaster, "todos.created"),
    (Role::Broadcaster, "jobs.wikipedia-todo"),
    (Role::Broadcaster, "$JS.API.STREAM.DELETE.TODOS"),
    (Role::Broadcaster, "$JS.API.STREAM.PURGE.TODOS"),
    (Role::Broadcaster, "$JS.API.CONSUMER.CREATE.TODOS.other"),
    (Role::Broadcaster, "$JS.API.STREAM.MSG.DELETE.TODOS"),
    // The jobs listener only answers requests it received.
    (Role::Jobs, "todos.created"),
    (Role::Jobs, "jobs.wikipedia-todo"),
    (Role::Jobs, "$JS.API.STREAM.INFO.TODOS"),
    (Role::Jobs, "$JS.API.CONSUMER.CREATE.TODOS.jobs"),
    (Role::Jobs, "_INBOX.anyone"),
    // With components/keda-wikipedia it pulls and acks JOBS/wikipedia-todo
    // only: no other consumer, no stream administration.
    (Role::Jobs, "$JS.API.CONSUMER.MSG.NEXT.TODOS.broadcaster"),
    (Role::Jobs, "$JS.API.CONSUMER.MSG.NEXT.JOBS.other"),
    (Role::Jobs, "$JS.API.STREAM.PURGE.JOBS"),
    (Role::Jobs, "$JS.ACK.TODOS.broadcaster.1.1.1.1.1"),
];

#[tokio::test]
async fn each_service_user_is_refused_where_it_must_not_publish() -> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    let mut stream = todos_stream(&nats).await?;
    // Everything published anywhere, as seen by an operator.
    let mut everything = nats.connect(Role::Admin).await?.subscribe(">").await?;

    for &(role, subject) in FORBIDDEN_PUBLISHES {
        let mut client = Watched::connect(&nats, role).await?;
        let refusal = client.publish(subject).await?;
        assert_refused(refusal, &format!("{} publishing to", role.user()), subject);
    }

    // None of it reached anyone, and the stream is whole.
    let delivered = tokio::time::timeout(Duration::from_millis(300), everything.next()).await;
    assert!(
        delivered.is_err(),
        "a refused message was delivered: {delivered:?}"
    );
    let info = stream.info().await?;
    assert_eq!(info.state.messages, 1, "{info:?}");

    // The control: the same publishes as `admin` pass, so the refusals
    // above come from each user's permissions. Deleting TODOS comes last.
    let mut admin = Watched::connect(&nats, Role::Admin).await?;
    for &(_, subject) in FORBIDDEN_PUBLISHES {
        admin.client.publish(subject, "allowed".into()).await?;
    }
    assert_eq!(admin.error_within(NO_ERROR).await?, None);
    assert!(
        tokio::time::timeout(ANSWER, everything.next())
            .await
            .is_ok(),
        "the admin's publishes are delivered"
    );
    Ok(())
}

#[tokio::test]
async fn only_the_broadcaster_and_the_app_may_read_todo_events() -> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    todos_stream(&nats).await?;

    // The jobs listener has no business with todo events, nor with other
    // users' replies (the pulled messages and acks travel there).
    let mut jobs = Watched::connect(&nats, Role::Jobs).await?;
    for subject in ["todos.>", "_INBOX.>", "_INBOX_broadcaster.>", ">"] {
        assert_refused(
            jobs.subscribe(subject).await?,
            "jobs subscribing to",
            subject,
        );
    }
    // The broadcaster pulls from its consumer; it does not listen in on
    // core todo subjects or on the app's replies.
    let mut broadcaster = Watched::connect(&nats, Role::Broadcaster).await?;
    for subject in ["todos.>", "_INBOX_app.>", "jobs.>"] {
        assert_refused(
            broadcaster.subscribe(subject).await?,
            "broadcaster subscribing to",
            subject,
        );
    }
    let mut app = Watched::connect(&nats, Role::App).await?;
    for subject in [
        "jobs.>",
        "_INBOX_broadcaster.>",
        "$KV.broadcaster_delivered.>",
    ] {
        assert_refused(app.subscribe(subject).await?, "app subscribing to", subject);
    }
    // What they need passes.
    let _todos = app.client.subscribe("todos.>").await?;
    assert_eq!(app.error_within(NO_ERROR).await?, None);
    let _jobs = jobs.client.subscribe("jobs.>").await?;
    assert_eq!(jobs.error_within(NO_ERROR).await?, None);
    Ok(())
}

#[tokio::test]
async fn the_jobs_user_answers_the_request_it_received_and_nothing_else() -> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    let mut jobs = Watched::connect(&nats, Role::Jobs).await?;
    let mut requests = jobs
        .client
        .queue_subscribe("jobs.wikipedia-todo", "cronjobs".into())
        .await?;
    jobs.client.flush().await?;
    let admin = nats.connect(Role::Admin).await?;

    let request = tokio::spawn({
        let admin = admin.clone();
        async move { admin.request("jobs.wikipedia-todo", "".into()).await }
    });
    let received = tokio::time::timeout(ANSWER, requests.next())
        .await?
        .expect("the request arrives");
    let reply_to = received
        .reply
        .clone()
        .expect("a request has a reply subject");
    jobs.client
        .publish(reply_to.clone(), r#"{"id":"answered"}"#.into())
        .await?;
    let reply = tokio::time::timeout(ANSWER, request).await???;
    assert_eq!(&reply.payload[..], br#"{"id":"answered"}"#);

    // One answer per request: a second one to the same inbox is refused.
    let second = jobs.publish(reply_to.as_str()).await?;
    assert_refused(second, "jobs answering twice to", reply_to.as_str());
    Ok(())
}

#[tokio::test]
async fn the_jobs_user_takes_and_acknowledges_a_request_from_its_consumer() -> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    // What NACK declares in kustomize/components/keda-wikipedia.
    let admin = jetstream::new(nats.connect(Role::Admin).await?);
    let stream = admin
        .create_stream(jetstream::stream::Config {
            name: "JOBS".to_owned(),
            subjects: vec!["jobs.wikipedia-todo".to_owned()],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await?;
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("wikipedia-todo".to_owned()),
            filter_subject: "jobs.wikipedia-todo".to_owned(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    admin
        .publish("jobs.wikipedia-todo", "".into())
        .await?
        .await?;

    // As `cronjobs next-request` does it in a request Job: look the consumer up,
    // pull one request, acknowledge it, with replies under `_INBOX_jobs`.
    let mut jobs = Watched::connect(&nats, Role::Jobs).await?;
    let consumer: jetstream::consumer::PullConsumer = jetstream::new(jobs.client.clone())
        .get_consumer_from_stream("wikipedia-todo", "JOBS")
        .await?;
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(ANSWER)
        .messages()
        .await?;
    let request = batch
        .next()
        .await
        .expect("the pending request is delivered")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    request
        .double_ack()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // Acknowledged, so the work queue holds nothing more, and nothing the
    // user did was refused.
    let mut stream = admin.get_stream("JOBS").await?;
    assert_eq!(stream.info().await?.state.messages, 0);
    let refused = jobs.error_within(NO_ERROR).await?;
    assert!(refused.is_none(), "{refused:?}");
    Ok(())
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_refused() -> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    let app = nats
        .credentials(Role::App)
        .expect("a secured server has users");
    let attempts = [
        (
            "a wrong password",
            Some(Credentials::new("app", "not-the-password")),
        ),
        (
            "another service's password",
            Some(Credentials::new(
                "app",
                secrecy::ExposeSecret::expose_secret(
                    nats.credentials(Role::Broadcaster).unwrap().password(),
                ),
            )),
        ),
        ("an unknown user", Some(Credentials::new("mallory", "x"))),
        ("no credentials", None),
    ];
    for (what, credentials) in attempts {
        let settings = service_kit::NatsSettings::new(nats.url().parse()?, credentials);
        let error = settings
            .connect(ConnectOptions::new())
            .await
            .expect_err(what);
        assert_eq!(
            error.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {error}"
        );
    }
    // The control: the right password gets in.
    let settings = service_kit::NatsSettings::new(nats.url().parse()?, Some(app));
    settings.connect(ConnectOptions::new()).await?;
    Ok(())
}

#[tokio::test]
async fn the_app_and_broadcasters_deliver_end_to_end_as_their_own_users() -> anyhow::Result<()> {
    let stack = stack::start().await?;
    assert!(stack.nats.is_secured());
    let http = faults::http(Duration::from_secs(5));
    let mut created = Vec::new();
    for i in 0..5 {
        let response = http
            .post(format!("{}/api/todos", stack.app.url()))
            .bearer_auth(API_TOKEN)
            .json(&serde_json::json!({ "text": format!("least privilege {i}") }))
            .send()
            .await?;
        assert_eq!(response.status(), 201, "{}", stack.logs());
        let body: serde_json::Value = response.json().await?;
        created.push(body["id"].as_str().unwrap().parse::<Uuid>()?);
    }

    let delivered = eventually(
        Duration::from_secs(30),
        "every created todo at the receiver",
        || async {
            let seen = stack.receiver().seen();
            created
                .iter()
                .all(|id| {
                    seen.iter()
                        .any(|s| s.accepted() && s.todo_id() == Some(*id))
                })
                .then_some(())
        },
    )
    .await;
    let log = std::fs::read_to_string(stack.nats.log_path())?;
    delivered.map_err(|e| anyhow::anyhow!("{e}\n{}\n--- nats-server ---\n{log}", stack.logs()))?;
    // The services did everything as themselves, and nothing they tried was
    // refused (a missing permission would show here before it shows as a
    // stuck event).
    // The server accepts no anonymous connection, so the services did get
    // in with the users `Stack` gave them.
    assert!(!log.contains("Violation"), "{log}");
    Ok(())
}

#[tokio::test]
async fn a_broadcaster_started_before_the_app_sets_up_everything_as_its_own_user()
-> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    let receiver = Receiver::try_start(|_| Reply::Status(200)).await?;
    let port = free_port();
    let mut env = nats.service_env(Role::Broadcaster);
    env.extend([
        ("PORT", port.to_string()),
        ("WEBHOOK_URL", receiver.url.clone()),
        ("WEBHOOK_SECRET", SECRET.to_owned()),
    ]);

    // Ready means: TODOS, its consumer, the bucket and TODOS_DLQ all exist.
    let broadcaster = Service::spawn(
        &workspace_binary("broadcaster"),
        &[],
        &env,
        &format!("http://127.0.0.1:{port}/readyz"),
    )
    .await;

    let log = std::fs::read_to_string(nats.log_path())?;
    let _broadcaster =
        broadcaster.map_err(|e| anyhow::anyhow!("{e:#}\n--- nats-server ---\n{log}"))?;
    assert!(!log.contains("Violation"), "{log}");
    let js = jetstream::new(nats.connect(Role::Admin).await?);
    for stream in [events::STREAM, "TODOS_DLQ", "KV_broadcaster_delivered"] {
        js.get_stream(stream).await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_app_and_the_broadcaster_may_bring_their_drifted_streams_back() -> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    // Made by an older build (or by hand) as `admin`, with a shorter max age.
    let admin = jetstream::new(nats.connect(Role::Admin).await?);
    admin
        .create_stream(jetstream::stream::Config {
            max_age: Duration::from_secs(3600),
            ..events::stream_config(events::TodosStream::SINGLE_NODE)
        })
        .await?;

    for role in [Role::App, Role::Broadcaster] {
        admin
            .update_stream(jetstream::stream::Config {
                max_age: Duration::from_secs(3600),
                ..events::stream_config(events::TodosStream::SINGLE_NODE)
            })
            .await?;
        let mut watched = Watched::connect(&nats, role).await?;
        let ensured = service_kit::jetstream::ensure_stream(
            &jetstream::new(watched.client.clone()),
            events::stream_config(events::TodosStream::SINGLE_NODE),
        )
        .await?;
        assert_eq!(ensured.updated, ["max_age: 3600s → 604800s"], "{role:?}");
        let refused = watched.error_within(NO_ERROR).await?;
        assert!(refused.is_none(), "{role:?}: {refused:?}");
    }
    Ok(())
}

#[tokio::test]
async fn the_broadcaster_may_read_its_consumers_backlog_for_its_metrics() -> anyhow::Result<()> {
    let nats = Nats::start_secured()?;
    let admin = jetstream::new(nats.connect(Role::Admin).await?);
    let stream = admin
        .create_stream(events::stream_config(events::TodosStream::SINGLE_NODE))
        .await?;
    stream
        .create_consumer(broadcaster::consumer::consumer_config(Duration::from_secs(
            10,
        )))
        .await?;
    admin.publish("todos.created", "{}".into()).await?.await?;

    // What `broadcaster::lag` reads at each scrape, as the broadcaster.
    let mut watched = Watched::connect(&nats, Role::Broadcaster).await?;
    let stream = jetstream::new(watched.client.clone())
        .get_stream(events::STREAM)
        .await?;
    let info = stream.consumer_info(broadcaster::consumer::DURABLE).await?;
    assert_eq!(info.num_pending, 1);
    let oldest = stream
        .get_raw_message(info.ack_floor.stream_sequence + 1)
        .await?;
    assert_eq!(oldest.sequence, 1);
    let refused = watched.error_within(NO_ERROR).await?;
    assert!(refused.is_none(), "{refused:?}");
    Ok(())
}
