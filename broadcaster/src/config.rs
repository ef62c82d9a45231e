//! Configuration, read once from the environment at start-up.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `NATS_URL` | required | NATS server with JetStream |
//! | `NATS_USER` | with a password | the broadcaster's NATS user |
//! | `NATS_PASSWORD` or `NATS_PASSWORD_FILE` | with `NATS_USER` | its password, or a file holding it (see `service-kit`) |
//! | `BROADCASTER_MODE` | `forward` | `forward` sends to the webhook, `log` only logs each message |
//! | `WEBHOOK_URL` | required in forward mode | where messages go (treated as a secret: chat URLs carry tokens) |
//! | `WEBHOOK_FORMAT` | `generic` | `generic`, `discord`, `slack` or `telegram` |
//! | `WEBHOOK_SECRET` | required for `generic` | Standard Webhooks secret, `whsec_<base64>` |
//! | `TELEGRAM_CHAT_ID` | required for `telegram` | the chat to post to |
//! | `WEBHOOK_TIMEOUT` | `5s` | limit for one attempt |
//! | `WEBHOOK_RETRY_SCHEDULE` | `5s,30s,2m,10m,30m` | waits between attempts; one attempt more than entries |
//! | `WEBHOOK_BREAKER_THRESHOLD` | `5` | consecutive failures that open the circuit |
//! | `WEBHOOK_BREAKER_COOLDOWN` | `30s` | how long the circuit stays open before a probe |
//! | `BROADCASTER_MAX_IN_FLIGHT` | `128` | events one replica handles at once |
//! | `BROADCASTER_DEDUPE_TTL` | `7d` | how long delivered event ids are remembered |
//! | `NATS_STREAM_REPLICAS` | `1` | copies of each stream and the bucket: 1 on one server, 3 on a three-node cluster (`events::StreamReplicas`) |
//! | `NATS_DUPLICATE_WINDOW` | `2m` | how long `TODOS` drops a republished event id; set the app's the same (`events::DuplicateWindow`) |
//! | `PORT` | `8081` | health and metrics |
//! | `LOG_FORMAT`, `RUST_LOG` | `json`, `info` | see the `telemetry` crate |
//!
//! Every value is parsed into its final type here ("parse, don't
//! validate") through `service_kit::Env`, and every error names its
//! variable, so a bad deployment stops at start-up with a message that says
//! what to fix. Secrets are held in [`SecretString`] and never reach a log
//! line.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use service_kit::env::{self, duration, positive};
use service_kit::{Env, EnvError, NatsSettings};

use crate::circuit::BreakerConfig;
use events::{DuplicateWindow, StreamReplicas, TodosStream};

use crate::delivery::{Format, SigningSecret, Target};
use crate::retry::RetrySchedule;

/// Events one replica handles at once unless `BROADCASTER_MAX_IN_FLIGHT`
/// says otherwise.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 128;

/// Everything the service needs, typed.
#[derive(Debug, Clone)]
pub struct Config {
    pub nats: NatsSettings,
    pub port: u16,
    pub mode: Mode,
    pub webhook_timeout: Duration,
    pub retry: RetrySchedule,
    pub breaker: BreakerConfig,
    pub max_in_flight: usize,
    pub dedupe_ttl: Duration,
    pub todos_stream: TodosStream,
}

/// What the broadcaster does with each event.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Send it to the webhook.
    Forward(Target),
    /// Log the message as JSON and send nothing (staging).
    Log,
}

impl Config {
    /// Reads from any lookup (the fuzz target passes generated values).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, EnvError> {
        Config::read(&Env::new(&lookup))
    }

    /// Reads from any [`Env`]; tests pass pairs instead of mutating the environment.
    pub fn read(env: &Env<'_>) -> Result<Config, EnvError> {
        let mode = match env.optional("BROADCASTER_MODE").as_deref() {
            None | Some("forward") => Mode::Forward(target(env)?),
            Some("log") => Mode::Log,
            Some(other) => {
                return Err(EnvError::invalid(
                    "BROADCASTER_MODE",
                    format!("must be `forward` or `log`, got `{other}`"),
                ));
            }
        };
        let webhook_timeout =
            env.parse_or("WEBHOOK_TIMEOUT", "5s", |value| match duration(value)? {
                Duration::ZERO => Err("must be longer than zero".to_owned()),
                timeout => Ok(timeout),
            })?;
        Ok(Config {
            nats: NatsSettings::read(env)?,
            port: env.parse_or("PORT", "8081", env::port)?,
            mode,
            webhook_timeout,
            retry: env.parse_or(
                "WEBHOOK_RETRY_SCHEDULE",
                "5s,30s,2m,10m,30m",
                RetrySchedule::parse,
            )?,
            breaker: BreakerConfig {
                threshold: env.parse_or("WEBHOOK_BREAKER_THRESHOLD", "5", positive)?,
                cooldown: env.parse_or("WEBHOOK_BREAKER_COOLDOWN", "30s", duration)?,
            },
            max_in_flight: env.parse_or(
                "BROADCASTER_MAX_IN_FLIGHT",
                &DEFAULT_MAX_IN_FLIGHT.to_string(),
                positive,
            )? as usize,
            dedupe_ttl: env.parse_or("BROADCASTER_DEDUPE_TTL", "7d", duration)?,
            todos_stream: TodosStream {
                replicas: env.parse_or(
                    events::STREAM_REPLICAS_VARIABLE,
                    "1",
                    StreamReplicas::parse,
                )?,
                duplicate_window: env.parse_or(events::DUPLICATE_WINDOW_VARIABLE, "2m", |raw| {
                    DuplicateWindow::new(duration(raw)?)
                })?,
            },
        })
    }

    /// How long JetStream waits for an ack before redelivering to another replica.
    ///
    /// The consumer sends an in-progress ack right before each attempt, so
    /// this only has to cover one attempt (bounded by the timeout) plus the
    /// key-value write and the ack itself.
    pub fn ack_wait(&self) -> Duration {
        self.webhook_timeout + Duration::from_secs(5)
    }
}

/// Reads the webhook target for forward mode.
fn target(env: &Env<'_>) -> Result<Target, EnvError> {
    let url = SecretString::from(env.required("WEBHOOK_URL")?);
    check_url(&url)?;
    let format = match env.optional("WEBHOOK_FORMAT").as_deref() {
        None | Some("generic") => {
            let secret = SecretString::from(env.required("WEBHOOK_SECRET")?);
            let secret = SigningSecret::parse(secret)
                .map_err(|reason| EnvError::invalid("WEBHOOK_SECRET", reason))?;
            Format::Generic(secret)
        }
        Some("discord") => Format::Discord,
        Some("slack") => Format::Slack,
        Some("telegram") => Format::Telegram {
            chat_id: env.required("TELEGRAM_CHAT_ID")?,
        },
        Some(other) => {
            return Err(EnvError::invalid(
                "WEBHOOK_FORMAT",
                format!("must be `generic`, `discord`, `slack` or `telegram`, got `{other}`"),
            ));
        }
    };
    Ok(Target { url, format })
}

/// Checks the URL without ever echoing it: it may carry a token.
fn check_url(url: &SecretString) -> Result<(), EnvError> {
    let parsed = reqwest::Url::parse(url.expose_secret())
        .map_err(|e| EnvError::invalid("WEBHOOK_URL", format!("is not a URL ({e})")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        _ => Err(EnvError::invalid(
            "WEBHOOK_URL",
            "must be an http:// or https:// URL",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn config(vars: &[(&str, &str)]) -> Result<Config, EnvError> {
        Config::read(&Env::from_pairs(vars))
    }

    fn error_of(vars: &[(&str, &str)]) -> String {
        config(vars).unwrap_err().to_string()
    }

    #[test]
    fn defaults_to_forwarding_generic_signed_webhooks() {
        let config = config(&[
            ("NATS_URL", "nats://127.0.0.1:4222"),
            ("WEBHOOK_URL", "http://127.0.0.1:9000/hook"),
            ("WEBHOOK_SECRET", SECRET),
        ])
        .unwrap();
        assert_eq!(config.port, 8081);
        assert_eq!(config.webhook_timeout, Duration::from_secs(5));
        assert_eq!(config.retry.attempts(), 6);
        assert!(matches!(
            config.mode,
            Mode::Forward(Target {
                format: Format::Generic(_),
                ..
            })
        ));
    }

    #[test]
    fn log_mode_needs_no_webhook() {
        let config = config(&[("NATS_URL", "nats://x"), ("BROADCASTER_MODE", "log")]).unwrap();
        assert!(matches!(config.mode, Mode::Log));
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            error_of(&[]),
            "WEBHOOK_URL is not set; see the configuration table in the README"
        );
        let e = error_of(&[("NATS_URL", "n"), ("WEBHOOK_URL", "http://x")]);
        assert!(e.starts_with("WEBHOOK_SECRET is not set"), "{e}");
        let e = error_of(&[("WEBHOOK_URL", "http://x"), ("WEBHOOK_SECRET", SECRET)]);
        assert_eq!(
            e,
            "NATS_URL is not set; see the configuration table in the README"
        );
        let e = error_of(&[
            ("NATS_URL", "n"),
            ("NATS_USER", "broadcaster"),
            ("BROADCASTER_MODE", "log"),
        ]);
        assert!(e.starts_with("NATS_PASSWORD is not set"), "{e}");
        let e = error_of(&[("WEBHOOK_URL", "http://x"), ("WEBHOOK_FORMAT", "telegram")]);
        assert!(e.starts_with("TELEGRAM_CHAT_ID is not set"), "{e}");
        let e = error_of(&[("BROADCASTER_MODE", "loud")]);
        assert!(
            e.starts_with("BROADCASTER_MODE is not valid: must be"),
            "{e}"
        );
        let e = error_of(&[("WEBHOOK_URL", "ftp://x"), ("WEBHOOK_FORMAT", "slack")]);
        assert!(
            e.starts_with("WEBHOOK_URL is not valid: must be an http"),
            "{e}"
        );
        let e = error_of(&[
            ("NATS_URL", "n"),
            ("BROADCASTER_MODE", "log"),
            ("WEBHOOK_RETRY_SCHEDULE", "5s,soon"),
        ]);
        assert!(
            e.starts_with("WEBHOOK_RETRY_SCHEDULE is not valid: `5s,soon`"),
            "{e}"
        );
        let e = error_of(&[
            ("NATS_URL", "n"),
            ("BROADCASTER_MODE", "log"),
            ("PORT", "http"),
        ]);
        assert!(e.starts_with("PORT is not valid: `http`"), "{e}");
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug_output() {
        let token_url = "https://api.telegram.org/bot123:SECRET-TOKEN/sendMessage";
        let telegram = config(&[
            ("NATS_URL", "n"),
            ("WEBHOOK_URL", token_url),
            ("WEBHOOK_FORMAT", "telegram"),
            ("TELEGRAM_CHAT_ID", "42"),
        ])
        .unwrap();
        let debug = format!("{telegram:?}");
        assert!(!debug.contains("SECRET-TOKEN"), "{debug}");

        let e = error_of(&[
            ("WEBHOOK_URL", "not a url SECRET-TOKEN"),
            ("WEBHOOK_FORMAT", "slack"),
        ]);
        assert!(!e.contains("SECRET-TOKEN"), "{e}");

        let generic = config(&[
            ("NATS_URL", "n"),
            ("WEBHOOK_URL", "http://x"),
            ("WEBHOOK_SECRET", SECRET),
        ])
        .unwrap();
        assert!(!format!("{generic:?}").contains("C2FVsBQIhrsc"));
        let e = error_of(&[
            ("WEBHOOK_URL", "http://x"),
            ("WEBHOOK_SECRET", "whsec_!!notbase64"),
        ]);
        assert!(e.starts_with("WEBHOOK_SECRET"), "{e}");
        assert!(!e.contains("notbase64"), "{e}");
    }
}
