//! Event payloads as the broadcaster reads them from JetStream:
//! `TodoEvent::from_json` on any bytes, and every event it accepts rendered
//! in each webhook format. Nothing may panic (a panic is a replica crash loop
//! on one bad message), and every rendered body is JSON that carries the
//! todo's text safely.
#![no_main]

use broadcaster::delivery::{Format, SigningSecret};
use events::TodoEvent;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use time::OffsetDateTime;

fuzz_target!(|payload: &[u8]| {
    let event = match TodoEvent::from_json(payload) {
        Ok(event) => event,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    // What was read is what is written back.
    let again = TodoEvent::from_json(&event.to_json()).expect("an event re-reads");
    assert_eq!(again, event);

    let secret = SigningSecret::parse(SecretString::from("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"))
        .expect("the spec's test secret parses");
    let formats = [
        Format::Generic(secret),
        Format::Discord,
        Format::Slack,
        Format::Telegram {
            chat_id: "-100123".to_owned(),
        },
        Format::Telegram {
            chat_id: "@docket".to_owned(),
        },
    ];
    for now in [OffsetDateTime::UNIX_EPOCH, event.occurred_at] {
        for format in &formats {
            let outgoing = format.render(&event, now);
            let body: serde_json::Value = serde_json::from_slice(&outgoing.body)
                .unwrap_or_else(|e| panic!("{}: a body that is not JSON: {e}", format.name()));
            assert!(body.is_object(), "{}", format.name());
        }
    }
});
