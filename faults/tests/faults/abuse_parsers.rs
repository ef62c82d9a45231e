//! Property tests for the broadcaster's parsers of outside input, 10,000
//! cases each: event payloads read from JetStream, the webhook signing
//! secret, and the sink's signature headers. None may panic: a panic in the
//! consumer is a replica crash loop on one bad message.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use broadcaster::delivery::SigningSecret;
use broadcaster::sink::Verifier;
use events::{EventType, SCHEMA_VERSION, TodoEvent, TodoSnapshot};
use proptest::prelude::*;
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A `todo.created` event as the app publishes it.
pub(crate) fn valid_event(text: String) -> TodoEvent {
    let now = OffsetDateTime::now_utc();
    TodoEvent {
        id: Uuid::now_v7(),
        event_type: EventType::Created,
        schema_version: SCHEMA_VERSION,
        occurred_at: now,
        todo: TodoSnapshot {
            id: Uuid::now_v7(),
            text,
            done: false,
            created_at: now,
            updated_at: now,
        },
        changed: Vec::new(),
        actor: None,
    }
}

/// Any JSON value, a few levels deep.
pub(crate) fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Value::from(if f.is_finite() { f } else { 0.0 })),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid event with one field replaced by any JSON value or removed.
fn mutated_event() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop::sample::select(vec![
        "id",
        "type",
        "schema_version",
        "occurred_at",
        "todo",
        "changed",
        "extra",
    ]);
    (".{0,150}", fields, prop::option::of(json_value())).prop_map(|(text, field, value)| {
        let mut json = serde_json::to_value(valid_event(text)).unwrap();
        let object = json.as_object_mut().unwrap();
        match value {
            Some(value) => object.insert(field.to_owned(), value),
            None => object.remove(field),
        };
        serde_json::to_vec(&json).unwrap()
    })
}

proptest! {
    #![proptest_config(config())]

    /// Whatever bytes sit in the stream, decoding answers Ok or Err.
    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = TodoEvent::from_json(&bytes);
    }

    /// Near-miss events (one field wrong or missing) fail with a message, or
    /// decode to what they say.
    #[test]
    fn a_mutated_event_is_rejected_with_a_reason_or_read(bytes in mutated_event()) {
        match TodoEvent::from_json(&bytes) {
            Ok(event) => prop_assert_eq!(event.to_json(), TodoEvent::from_json(&event.to_json()).unwrap().to_json()),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    /// Every event the app can produce survives the round trip.
    #[test]
    fn a_valid_event_round_trips(text in ".{1,140}") {
        let event = valid_event(text);
        let decoded = TodoEvent::from_json(&event.to_json()).unwrap();
        prop_assert_eq!(decoded.id, event.id);
        prop_assert_eq!(decoded.todo.text, event.todo.text);
    }

    /// The secret is accepted exactly when it is (`whsec_`) base64 of at
    /// least 16 bytes; a rejection never repeats the value; an accepted
    /// secret signs without panicking and the sink verifies the signature.
    #[test]
    fn a_signing_secret_is_parsed_without_panicking_or_leaking(
        raw in prop_oneof![
            ".{0,64}",
            prop::collection::vec(any::<u8>(), 0..48).prop_map(|k| format!("whsec_{}", STANDARD.encode(k))),
            prop::collection::vec(any::<u8>(), 0..48).prop_map(|k| STANDARD.encode(k)),
        ],
        id in "[a-zA-Z0-9_-]{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let key = raw.strip_prefix("whsec_").unwrap_or(&raw);
        let expected = STANDARD.decode(key).is_ok_and(|k| k.len() >= 16);
        match SigningSecret::parse(SecretString::from(raw.clone())) {
            Ok(secret) => {
                prop_assert!(expected, "accepted {raw:?}");
                let body = String::from_utf8_lossy(&body).into_owned();
                let now = OffsetDateTime::now_utc().unix_timestamp();
                let signature = secret.sign(&id, now, body.as_bytes());
                let verifier = Verifier::new(&raw).unwrap();
                prop_assert!(verifier.verify(&id, &now.to_string(), &signature, body.as_bytes(), now).is_ok());
            }
            Err(reason) => {
                prop_assert!(!expected, "rejected {raw:?}: {reason}");
                if key.len() >= 8 {
                    prop_assert!(!reason.contains(key), "the reason repeats the secret");
                }
            }
        }
    }

    /// The sink reads three headers from whoever calls it: any value is
    /// answered with Ok or Err, never a panic.
    #[test]
    fn any_signature_headers_are_checked_without_panicking(
        id in ".{0,40}",
        timestamp in prop_oneof![
            ".{0,24}",
            any::<i64>().prop_map(|t| t.to_string()),
            prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1]).prop_map(|t| t.to_string()),
        ],
        signatures in ".{0,120}",
        body in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let verifier = Verifier::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let _ = verifier.verify(&id, &timestamp, &signatures, &body, now);
    }
}
