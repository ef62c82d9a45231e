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

/// How often a start that lost its port to another process is tried again.
const ATTEMPTS: usize = 3;

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
    ///
    /// Ports are picked free but only taken when each server binds, so with
    /// many tests starting at once another process sometimes gets there
    /// first; such a start is retried on new ports (any other failure is
    /// not).
    pub async fn start(webhook: bool) -> anyhow::Result<Stack> {
        let mut attempt = 1;
        loop {
            match Stack::start_once(webhook).await {
                Err(error) if attempt < ATTEMPTS && lost_a_port(&error) => {
                    eprintln!("a port was taken while starting the stack, retrying: {error:#}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(webhook: bool) -> anyhow::Result<Stack> {
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

/// Whether a start failed because another process bound the chosen port
/// first: test-support's check, or a service's own bind error.
fn lost_a_port(error: &anyhow::Error) -> bool {
    let message = format!("{error:#}");
    message.contains("is taken by another process") || message.contains("Address already in use")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lost_port_is_worth_another_start() {
        let taken = anyhow::anyhow!(
            "cannot start nats-server: port 38877 on 127.0.0.1 is taken by another process"
        );
        assert!(lost_a_port(&taken));
        let bind = anyhow::anyhow!("Address already in use (os error 98)")
            .context("todo-app exited before it was ready")
            .context("failed to start todo-app");
        assert!(lost_a_port(&bind));
        let other = anyhow::anyhow!("initdb failed");
        assert!(!lost_a_port(&other));
    }
}
