//! Configuration, read once from the environment at start-up.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `NATS_URL` | required | NATS server with JetStream |
//! | `NATS_USER` | with a password | the broadcaster's NATS user |
//! | `NATS_PASSWORD` or `NATS_PASSWORD_FILE` | with `NATS_USER` | its password, or a file holding it (see `nats-connect`) |
//! | `BROADCASTER_MODE` | `forward` | `forward` sends to the webhook, `log` only logs each message |
//! | `WEBHOOK_URL` | required in forward mode | where messages go (treated as a secret: chat URLs carry tokens) |
//! | `WEBHOOK_FORMAT` | `generic` | `generic`, `discord`, `slack` or `telegram` |
//! | `WEBHOOK_SECRET` | required for `generic` | Standard Webhooks secret, `whsec_<base64>` |
//! | `TELEGRAM_CHAT_ID` | required for `telegram` | the chat to post to |
//! | `WEBHOOK_TIMEOUT` | `5s` | limit for one attempt |
//! | `WEBHOOK_RETRY_SCHEDULE` | `5s,30s,2m,10m,30m` | waits between attempts; one attempt more than entries |
//! | `WEBHOOK_BREAKER_THRESHOLD` | `5` | consecutive failures that open the circuit |
//! | `WEBHOOK_BREAKER_COOLDOWN` | `30s` | how long the circuit stays open before a probe |
//! | `BROADCASTER_MAX_IN_FLIGHT` | `32` | events one replica handles at once |
//! | `BROADCASTER_DEDUPE_TTL` | `7d` | how long delivered event ids are remembered |
//! | `PORT` | `8081` | health and metrics |
//! | `LOG_FORMAT`, `RUST_LOG` | `json`, `info` | see the `telemetry` crate |
//!
//! Every value is parsed into its final type here ("parse, don't
//! validate"), and every error names its variable, so a bad deployment stops
//! at start-up with a message that says what to fix. Secrets are held in
//! [`SecretString`] and never reach a log line.

use std::time::Duration;

use nats_connect::NatsSettings;
use secrecy::{ExposeSecret, SecretString};

use crate::circuit::BreakerConfig;
use crate::delivery::{Format, SigningSecret, Target};
use crate::error::{Error, Result};
use crate::retry::RetrySchedule;

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
    /// Reads the process environment.
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads from any lookup; tests pass a map instead of mutating the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let env = Env(&lookup);
        let mode = match env.optional("BROADCASTER_MODE")?.as_deref() {
            None | Some("forward") => Mode::Forward(target(&env)?),
            Some("log") => Mode::Log,
            Some(other) => {
                return Err(invalid(
                    "BROADCASTER_MODE",
                    format!("must be `forward` or `log`, got `{other}`"),
                ));
            }
        };
        let webhook_timeout = env.parsed("WEBHOOK_TIMEOUT", "5s", parse_duration)?;
        if webhook_timeout.is_zero() {
            return Err(invalid(
                "WEBHOOK_TIMEOUT",
                "must be longer than zero".into(),
            ));
        }
        let nats = NatsSettings::from_lookup(&lookup).map_err(|e| Error::Config {
            variable: e.variable(),
            reason: e.reason(),
        })?;
        Ok(Config {
            nats,
            port: env.parsed("PORT", "8081", |v| v.parse().map_err(|e| format!("{e}")))?,
            mode,
            webhook_timeout,
            retry: env.parsed(
                "WEBHOOK_RETRY_SCHEDULE",
                "5s,30s,2m,10m,30m",
                RetrySchedule::parse,
            )?,
            breaker: BreakerConfig {
                threshold: env.parsed("WEBHOOK_BREAKER_THRESHOLD", "5", positive)?,
                cooldown: env.parsed("WEBHOOK_BREAKER_COOLDOWN", "30s", parse_duration)?,
            },
            max_in_flight: env.parsed("BROADCASTER_MAX_IN_FLIGHT", "32", positive)? as usize,
            dedupe_ttl: env.parsed("BROADCASTER_DEDUPE_TTL", "7d", parse_duration)?,
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
fn target(env: &Env<'_>) -> Result<Target> {
    let url = env
        .required("WEBHOOK_URL")
        .map(SecretString::from)
        .and_then(|url| parse_url(&url).map(|_| url))?;
    let format = match env.optional("WEBHOOK_FORMAT")?.as_deref() {
        None | Some("generic") => {
            let secret = env.required("WEBHOOK_SECRET")?;
            let secret = SigningSecret::parse(SecretString::from(secret))
                .map_err(|reason| invalid("WEBHOOK_SECRET", reason))?;
            Format::Generic(secret)
        }
        Some("discord") => Format::Discord,
        Some("slack") => Format::Slack,
        Some("telegram") => Format::Telegram {
            chat_id: env.required("TELEGRAM_CHAT_ID")?,
        },
        Some(other) => {
            return Err(invalid(
                "WEBHOOK_FORMAT",
                format!("must be `generic`, `discord`, `slack` or `telegram`, got `{other}`"),
            ));
        }
    };
    Ok(Target { url, format })
}

/// Checks the URL without ever echoing it: it may carry a token.
fn parse_url(url: &SecretString) -> Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url.expose_secret())
        .map_err(|e| invalid("WEBHOOK_URL", format!("is not a URL ({e})")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        _ => Err(invalid(
            "WEBHOOK_URL",
            "must be an http:// or https:// URL".into(),
        )),
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn optional(&self, name: &'static str) -> Result<Option<String>> {
        Ok((self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()))
    }

    fn required(&self, name: &'static str) -> Result<String> {
        self.optional(name)?
            .ok_or_else(|| invalid(name, "is required but not set".into()))
    }

    fn parsed<T>(
        &self,
        name: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T> {
        let value = self.optional(name)?.unwrap_or_else(|| default.to_owned());
        parse(&value).map_err(|reason| invalid(name, format!("`{value}` is invalid: {reason}")))
    }
}

fn invalid(variable: &'static str, reason: String) -> Error {
    Error::Config { variable, reason }
}

fn positive(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `7d`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| "needs a unit: ms, s, m, h or d".to_owned())?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "must start with a whole number".to_owned())?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown unit `{unit}` (use ms, s, m, h or d)")),
    };
    // Checked: an absurd value must be a start-up error naming the variable,
    // not a panic (debug) or a silently wrapped duration (release).
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| "is too long".to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
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
        assert_eq!(error_of(&[]), "WEBHOOK_URL is required but not set");
        let e = error_of(&[("NATS_URL", "n"), ("WEBHOOK_URL", "http://x")]);
        assert_eq!(e, "WEBHOOK_SECRET is required but not set");
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
        assert_eq!(e, "TELEGRAM_CHAT_ID is required but not set");
        let e = error_of(&[("BROADCASTER_MODE", "loud")]);
        assert!(e.starts_with("BROADCASTER_MODE must be"), "{e}");
        let e = error_of(&[("WEBHOOK_URL", "ftp://x"), ("WEBHOOK_FORMAT", "slack")]);
        assert!(e.starts_with("WEBHOOK_URL must be an http"), "{e}");
        let e = error_of(&[
            ("NATS_URL", "n"),
            ("BROADCASTER_MODE", "log"),
            ("WEBHOOK_RETRY_SCHEDULE", "5s,soon"),
        ]);
        assert!(
            e.starts_with("WEBHOOK_RETRY_SCHEDULE `5s,soon` is invalid"),
            "{e}"
        );
        let e = error_of(&[
            ("NATS_URL", "n"),
            ("BROADCASTER_MODE", "log"),
            ("PORT", "http"),
        ]);
        assert!(e.starts_with("PORT `http` is invalid"), "{e}");
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

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn a_duration_too_long_to_count_is_an_error_not_an_overflow() {
        // 213503982335 days is just over u64::MAX milliseconds.
        let e = parse_duration("213503982335d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        assert!(parse_duration("18446744073709551615ms").is_ok());
    }
}
