//! Telegram Bot API `sendMessage`: `{"chat_id": ..., "text": "..."}`.
//!
//! `WEBHOOK_URL` is `https://api.telegram.org/bot<token>/sendMessage`. No
//! `parse_mode` is sent, so Telegram shows the text as plain text and nothing
//! in it can be taken for markup: escaping is not needed, by construction.
//! A numeric chat id is sent as a number and a `@channel` name as a string,
//! as the Bot API documents.

use events::TodoEvent;
use serde_json::json;

use super::message;

/// Telegram rejects messages longer than this.
const MAX_CHARS: usize = 4096;

pub(super) fn body(chat_id: &str, event: &TodoEvent) -> serde_json::Value {
    let chat_id = match chat_id.parse::<i64>() {
        Ok(number) => json!(number),
        Err(_) => json!(chat_id),
    };
    json!({ "chat_id": chat_id, "text": message(event, |text| text.to_owned(), MAX_CHARS) })
}

#[cfg(test)]
mod tests {
    use events::EventType;

    use super::*;
    use crate::delivery::tests::event;

    #[test]
    fn sends_chat_id_and_plain_text() {
        let event = event(EventType::Updated, "<b>not bold</b> *nor this*", false);
        assert_eq!(
            body("-1001234", &event).to_string(),
            r#"{"chat_id":-1001234,"text":"Todo marked not done: <b>not bold</b> *nor this*"}"#
        );
        assert_eq!(
            body("@docket_news", &event)["chat_id"],
            json!("@docket_news")
        );
    }

    #[test]
    fn names_the_actor_in_plain_text() {
        let event = event(EventType::Updated, "Buy milk", true).by(events::Actor::Person {
            subject: "1".into(),
            name: "<b>Ada</b>".into(),
        });
        assert_eq!(
            body("-1001234", &event)["text"],
            json!("<b>Ada</b> completed: Buy milk")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// No `parse_mode` is ever sent, so the text stays plain text, and it
        /// arrives as written.
        #[test]
        fn the_text_is_sent_as_plain_text_unchanged(text in "(?s).{0,300}") {
            let body = body("-1001234", &event(EventType::Created, &text, false));
            proptest::prop_assert!(body.get("parse_mode").is_none());
            proptest::prop_assert_eq!(body["text"].as_str().unwrap(), format!("Todo created: {text}"));
        }
    }
}
