//! The private stack a local run tests against: PostgreSQL, NATS, the app,
//! and (for the webhook story) the broadcaster delivering to a local
//! receiver.
//!
//! One stack per test process, which under nextest means one per test: each
//! story starts from an empty database, and a failing story cannot disturb
//! another. Everything is the real binary on a free loopback port, and
//! everything stops when the stack is dropped.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Url;
use test_support::{Nats, Service, TestDatabase, free_port, workspace_binary};

/// A running stack; dropping it stops every part.
pub struct Stack {
    // Fields drop in order: the services before what they depend on.
    webhook: Option<Webhook>,
    app: Service,
    base_url: Url,
    api_token: String,
    _database: TestDatabase,
    _nats: Nats,
}

/// The broadcaster in forward mode (generic format, signed) and the
/// `broadcaster sink` receiver it delivers to.
struct Webhook {
    broadcaster: Service,
    sink: Service,
    messages: Url,
}

impl Stack {
    /// Starts PostgreSQL (or a new database in `DATABASE_URL`'s server when
    /// set, as `cargo xtask test` does), a private NATS, and the app; plus
    /// the broadcaster and its receiver when `webhook` is true.
    ///
    /// NATS is always private: the broadcaster's durable consumer must see
    /// this stack's events only.
    pub async fn start(webhook: bool) -> anyhow::Result<Stack> {
        let (database, nats) = tokio::try_join!(test_support::test_database(), async {
            tokio::task::spawn_blocking(Nats::start)
                .await
                .context("the nats-server start-up task failed")?
        })?;

        let port = free_port();
        let api_token = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let app = Service::spawn(
            &workspace_binary("todo-app"),
            &[],
            &[
                ("DATABASE_URL", database.url.clone()),
                ("NATS_URL", nats.url()),
                ("PORT", port.to_string()),
                ("API_TOKEN", api_token.clone()),
            ],
            &format!("http://127.0.0.1:{port}/readyz"),
        )
        .await
        .context("failed to start todo-app")?;
        let base_url = Url::parse(&format!("http://127.0.0.1:{port}/"))?;

        let webhook = if webhook {
            Some(Webhook::start(&nats).await?)
        } else {
            None
        };
        Ok(Stack {
            webhook,
            app,
            base_url,
            api_token,
            _database: database,
            _nats: nats,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn api_token(&self) -> &str {
        &self.api_token
    }

    /// The receiver's `/messages`, when the broadcaster runs.
    pub fn webhook_messages(&self) -> Option<&Url> {
        self.webhook.as_ref().map(|webhook| &webhook.messages)
    }

    /// The services' output so far, for failure messages.
    pub fn logs(&self) -> String {
        let mut logs = format!("--- todo-app ---\n{}", self.app.output());
        if let Some(webhook) = &self.webhook {
            logs.push_str(&format!(
                "--- broadcaster ---\n{}--- broadcaster sink ---\n{}",
                webhook.broadcaster.output(),
                webhook.sink.output()
            ));
        }
        logs
    }
}

impl Webhook {
    async fn start(nats: &Nats) -> anyhow::Result<Webhook> {
        let broadcaster_binary = workspace_binary("broadcaster");
        // A fresh Standard Webhooks secret: 32 random bytes.
        let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        let secret = format!("whsec_{}", BASE64.encode(key));

        let sink_port = free_port();
        let sink = Service::spawn(
            &broadcaster_binary,
            &["sink", "--port", &sink_port.to_string()],
            &[("WEBHOOK_SECRET", secret.clone())],
            &format!("http://127.0.0.1:{sink_port}/healthz"),
        )
        .await
        .context("failed to start `broadcaster sink`")?;

        let port = free_port();
        let broadcaster = Service::spawn(
            &broadcaster_binary,
            &[],
            &[
                ("NATS_URL", nats.url()),
                ("BROADCASTER_MODE", "forward".into()),
                ("WEBHOOK_FORMAT", "generic".into()),
                ("WEBHOOK_URL", format!("http://127.0.0.1:{sink_port}/hook")),
                ("WEBHOOK_SECRET", secret),
                ("PORT", port.to_string()),
            ],
            &format!("http://127.0.0.1:{port}/readyz"),
        )
        .await
        .context("failed to start the broadcaster")?;

        Ok(Webhook {
            broadcaster,
            sink,
            messages: Url::parse(&format!("http://127.0.0.1:{sink_port}/messages"))?,
        })
    }
}
