//! The broadcaster's configuration, read from the environment at start-up:
//! the webhook signing secret (`SigningSecret::parse`, and through
//! `Config::from_lookup`) and the duration and schedule variables next to it.
//! Any value is accepted or refused with an error naming its variable; a
//! refused secret is never repeated in the error; an accepted one signs.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use broadcaster::Config;
use broadcaster::delivery::SigningSecret;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    secret: &'a str,
    timeout: Option<&'a str>,
    retry_schedule: Option<&'a str>,
    cooldown: Option<&'a str>,
    dedupe_ttl: Option<&'a str>,
    /// What is signed is always JSON, so UTF-8 (`sign`'s precondition).
    body: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let key = input.secret.strip_prefix("whsec_").unwrap_or(input.secret);
    let decodes_to_a_key = STANDARD.decode(key).is_ok_and(|k| k.len() >= 16);
    match SigningSecret::parse(SecretString::from(input.secret)) {
        Ok(secret) => {
            assert!(decodes_to_a_key, "accepted {:?}", input.secret);
            let signature = secret.sign("msg_1", 1_700_000_000, input.body.as_bytes());
            assert!(signature.starts_with("v1,"), "{signature}");
        }
        Err(reason) => {
            assert!(!decodes_to_a_key, "refused {:?}: {reason}", input.secret);
            // The reason depends only on the kind of mistake, so it cannot
            // carry any part of the value.
            assert!(
                [refusal("whsec_AAAA"), refusal("whsec_!")].contains(&reason),
                "a reason that depends on the value: {reason}"
            );
        }
    }

    let lookup = |name: &str| -> Option<String> {
        match name {
            "NATS_URL" => Some("nats://127.0.0.1:4222".into()),
            "WEBHOOK_URL" => Some("http://127.0.0.1:9/hook".into()),
            "WEBHOOK_SECRET" => Some(input.secret.into()),
            "WEBHOOK_TIMEOUT" => input.timeout.map(Into::into),
            "WEBHOOK_RETRY_SCHEDULE" => input.retry_schedule.map(Into::into),
            "WEBHOOK_BREAKER_COOLDOWN" => input.cooldown.map(Into::into),
            "BROADCASTER_DEDUPE_TTL" => input.dedupe_ttl.map(Into::into),
            _ => None,
        }
    };
    let secret_errors = ["", "whsec_AAAA", "whsec_!"]
        .map(|secret| config_error(|name| (name == "WEBHOOK_SECRET").then(|| secret.to_owned())));
    match Config::from_lookup(lookup) {
        Ok(config) => {
            // The secret never shows in the configuration's debug output.
            let debug = format!("{config:?}");
            let trimmed = key.trim();
            if trimmed.len() >= 16 {
                assert!(!debug.contains(trimmed), "Debug shows the secret");
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                [
                    "WEBHOOK_SECRET",
                    "WEBHOOK_TIMEOUT",
                    "WEBHOOK_RETRY_SCHEDULE",
                    "WEBHOOK_BREAKER_COOLDOWN",
                    "BROADCASTER_DEDUPE_TTL",
                ]
                .iter()
                .any(|variable| message.starts_with(variable)),
                "an error that names no variable: {message}"
            );
            if message.starts_with("WEBHOOK_SECRET") {
                assert!(
                    secret_errors.contains(&message),
                    "a WEBHOOK_SECRET error that depends on the value: {message}"
                );
            }
        }
    }
});

fn refusal(secret: &str) -> String {
    SigningSecret::parse(SecretString::from(secret)).expect_err("a bad secret")
}

/// The error for a configuration that is valid but for what `overrides` sets.
fn config_error(overrides: impl Fn(&str) -> Option<String>) -> String {
    let base = |name: &str| match name {
        "NATS_URL" => Some("nats://127.0.0.1:4222".to_owned()),
        "WEBHOOK_URL" => Some("http://127.0.0.1:9/hook".to_owned()),
        _ => None,
    };
    Config::from_lookup(|name| overrides(name).or_else(|| base(name)))
        .expect_err("a bad value")
        .to_string()
}
