//! The generic format: JSON signed per the Standard Webhooks spec.
//!
//! Body: `{"user":"bot","message":"Todo created: …","event":{…the event…}}`.
//! Headers: `webhook-id` (the event id, so receivers can deduplicate),
//! `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). Signing uses the
//! spec's reference crate `standardwebhooks`; the sink verifies with its own
//! HMAC code, so each side checks the other.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use events::TodoEvent;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use standardwebhooks::Webhook;
use time::OffsetDateTime;

use super::{Outgoing, message};

/// JSON carries any text, so the message is not cut for a chat limit; this
/// only bounds a pathological todo.
const MAX_MESSAGE_CHARS: usize = 10_000;

/// A Standard Webhooks secret, `whsec_<base64 key>`, checked at start-up.
#[derive(Clone)]
pub struct SigningSecret(SecretString);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

impl SigningSecret {
    /// Accepts `whsec_<base64>` (the prefix is optional, as in the spec's libraries).
    /// The error never repeats the value.
    pub fn parse(secret: SecretString) -> Result<SigningSecret, String> {
        let raw = secret.expose_secret();
        let key = raw.strip_prefix("whsec_").unwrap_or(raw);
        match STANDARD.decode(key) {
            Ok(bytes) if bytes.len() >= 16 => Ok(SigningSecret(secret)),
            Ok(_) => Err("must hold at least 16 bytes of key (`whsec_` + base64)".into()),
            Err(_) => Err("must be `whsec_` followed by base64".into()),
        }
    }

    fn webhook(&self) -> Webhook {
        Webhook::new(self.0.expose_secret()).expect("checked in SigningSecret::parse")
    }

    /// `v1,<signature>` for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.webhook()
            .sign(id, timestamp, body)
            .expect("the body is JSON, hence UTF-8")
    }
}

/// The unsigned body; fields serialise in the documented order.
#[derive(Debug, Serialize)]
pub struct Body<'a> {
    pub user: &'static str,
    pub message: String,
    pub event: &'a TodoEvent,
}

/// The body for `event`.
pub fn body(event: &TodoEvent) -> Body<'_> {
    Body {
        user: "bot",
        message: message(event, |text| text.to_owned(), MAX_MESSAGE_CHARS),
        event,
    }
}

pub(super) fn render(secret: &SigningSecret, event: &TodoEvent, now: OffsetDateTime) -> Outgoing {
    let body = serde_json::to_vec(&body(event)).expect("a body of strings always serialises");
    let id = event.id.to_string();
    let timestamp = now.unix_timestamp();
    let signature = secret.sign(&id, timestamp, &body);
    Outgoing {
        body,
        headers: vec![
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
    }
}

#[cfg(test)]
mod tests {
    use events::EventType;
    use hmac::{Hmac, Mac};
    use serde_json::json;
    use sha2::Sha256;
    use time::macros::datetime;

    use super::*;
    use crate::delivery::tests::event;

    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn secret() -> SigningSecret {
        SigningSecret::parse(SecretString::from(SPEC_SECRET)).unwrap()
    }

    /// The test vector published with the Standard Webhooks spec.
    #[test]
    fn signs_the_spec_test_vector() {
        let signature = secret().sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn renders_the_exact_body_and_headers() {
        let event = event(EventType::Created, "Buy <milk> & \"eggs\"", false);
        let out = render(&secret(), &event, datetime!(2026-11-22 10:00:05 UTC));
        assert!(
            out.body.starts_with(br#"{"user":"bot","message":"#),
            "documented key order"
        );
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        // The event's own shape is the contract's, tested in `events`; here
        // it must arrive exactly as the contract serialises it.
        let contract: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(
            body,
            json!({
                "user": "bot",
                "message": "Todo created: Buy <milk> & \"eggs\"",
                "event": contract,
            })
        );
        assert_eq!(body["event"]["todo"]["text"], "Buy <milk> & \"eggs\"");
        assert_eq!(out.headers[0], ("webhook-id", event.id.to_string()));
        assert_eq!(
            out.headers[1],
            ("webhook-timestamp", "1795341605".to_owned())
        );

        // Verified with a separate HMAC implementation, straight from the spec's wording.
        let key = STANDARD
            .decode(SPEC_SECRET.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.1795341605.", event.id).as_bytes());
        mac.update(&out.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(out.headers[2], ("webhook-signature", expected));
    }

    #[test]
    fn rejects_secrets_that_are_not_whsec_base64_without_echoing_them() {
        for bad in ["whsec_!!!", "whsec_c2hvcnQ=", ""] {
            let err = SigningSecret::parse(SecretString::from(bad)).unwrap_err();
            assert!(!err.contains("!!!") && !err.contains("c2hvcnQ"), "{err}");
        }
        assert_eq!(format!("{:?}", secret()), "SigningSecret([REDACTED])");
    }
}
