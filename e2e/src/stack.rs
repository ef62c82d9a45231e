//! The private stack a local run tests against: PostgreSQL, NATS, the app,
//! and (for the webhook story) the broadcaster delivering to a local
//! receiver as production does: in Discord's format, to a `broadcaster
//! sink` answering as a Discord channel's webhook; and (for the sign-in
//! stories) the OpenID provider the app then signs people in with.
//!
//! One stack per test process, which under nextest means one per test: each
//! story starts from an empty database, and a failing story cannot disturb
//! another. Everything is the real binary on a free loopback port, and
//! everything stops when the stack is dropped.

use reqwest::Url;
use test_support::StackBuilder;

use crate::config::Person;

/// How often a start that lost its port to another process is tried again.
const ATTEMPTS: usize = 3;

/// Which parts run besides PostgreSQL, NATS and the app.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    /// The broadcaster, posting in Discord's format to `broadcaster sink`.
    pub webhook: bool,
    /// The OpenID provider, and the app with `AUTH=oidc` against it.
    pub sign_in: bool,
}

/// A running stack; dropping it stops every part.
pub struct Stack {
    stack: test_support::Stack,
    base_url: Url,
}

impl Stack {
    /// Starts PostgreSQL (or a new database in `DATABASE_URL`'s server when
    /// set, as `cargo xtask test` does), a private NATS, and the app; plus
    /// the broadcaster (forward mode, Discord's format, as production) and
    /// the `broadcaster sink` receiver standing in for the Discord channel
    /// with `parts.webhook`; the OpenID provider first, and the app signing
    /// people in with it, with `parts.sign_in`.
    ///
    /// NATS is always private: the broadcaster's durable consumer must see
    /// this stack's events only.
    ///
    /// Ports are picked free but only taken when each server binds, so with
    /// many tests starting at once another process sometimes gets there
    /// first; such a start is retried on new ports (any other failure is
    /// not).
    pub async fn start(parts: Parts) -> anyhow::Result<Stack> {
        let mut attempt = 1;
        loop {
            match Stack::start_once(parts).await {
                Err(error) if attempt < ATTEMPTS && lost_a_port(&error) => {
                    eprintln!("a port was taken while starting the stack, retrying: {error:#}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(parts: Parts) -> anyhow::Result<Stack> {
        let mut builder = StackBuilder::new()
            .test_database()
            .api_token(format!("e2e-{}", uuid::Uuid::new_v4().simple()));
        if parts.webhook {
            builder = builder.sink(None, true).discord();
        }
        if parts.sign_in {
            builder = builder.sign_in();
        }
        let stack = builder.start().await?;
        let base_url = Url::parse(&format!("{}/", stack.app.url()))?;
        Ok(Stack { stack, base_url })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn api_token(&self) -> &str {
        &self.stack.api_token
    }

    /// The receiver's `/messages`, when the broadcaster runs.
    pub fn webhook_messages(&self) -> Option<Url> {
        let sink = self.stack.sink.as_ref()?;
        Url::parse(&format!("{}/messages", sink.url())).ok()
    }

    /// Whom to sign in as, with `parts.sign_in`: the provider's Ada
    /// Lovelace.
    pub fn person(&self) -> Option<Person> {
        let user = self.stack.oidc.as_ref()?.user("ada");
        Some(Person {
            username: user.username.clone(),
            password: user.password.clone(),
            name: Some(user.name.clone()),
        })
    }

    /// The services' output so far, for failure messages.
    pub fn logs(&self) -> String {
        self.stack.logs()
    }
}

/// Whether a start failed because another process bound the chosen port
/// first: test-support's check, or a service's own bind error.
fn lost_a_port(error: &anyhow::Error) -> bool {
    let message = format!("{error:#}");
    message.contains("is taken by another process") || message.contains("Address already in use")
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
