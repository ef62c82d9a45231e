//! Slack incoming webhooks: `{"text": "..."}`.
//!
//! Slack's mrkdwn treats `&`, `<` and `>` as control characters (links,
//! mentions like `<!channel>`), and its docs ask for exactly these three to
//! be HTML-escaped.

use events::TodoEvent;
use serde_json::json;

use super::message;

/// Slack truncates beyond this; we cut first so the cut is visible.
const MAX_CHARS: usize = 40_000;

pub(super) fn body(event: &TodoEvent) -> serde_json::Value {
    json!({ "text": message(event, escape, MAX_CHARS) })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use events::EventType;

    use super::*;
    use crate::delivery::tests::event;

    #[test]
    fn sends_text_with_control_characters_escaped() {
        let event = event(EventType::Deleted, "<!channel> salt & pepper", false);
        assert_eq!(
            body(&event).to_string(),
            r#"{"text":"Todo deleted: &lt;!channel&gt; salt &amp; pepper"}"#
        );
    }

    #[test]
    fn names_the_actor_with_control_characters_escaped_too() {
        let event = event(EventType::Deleted, "salt", false).by(events::Actor::Person {
            subject: "1".into(),
            name: "<!channel> & co".into(),
        });
        assert_eq!(
            body(&event).to_string(),
            r#"{"text":"&lt;!channel&gt; &amp; co deleted: salt"}"#
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// No `<` or `>` reaches Slack (no link, no `<!channel>`), every `&`
        /// starts one of the three entities, and decoding them gives back
        /// the text exactly.
        #[test]
        fn control_characters_never_pass_and_nothing_else_changes(text in "(?s).{0,300}") {
            let escaped = escape(&text);
            proptest::prop_assert!(!escaped.contains(['<', '>']), "{escaped:?}");
            let mut original = String::new();
            let mut rest = escaped.as_str();
            while let Some(at) = rest.find('&') {
                original.push_str(&rest[..at]);
                rest = &rest[at..];
                let (decoded, len) = if rest.starts_with("&amp;") {
                    ('&', 5)
                } else if rest.starts_with("&lt;") {
                    ('<', 4)
                } else if rest.starts_with("&gt;") {
                    ('>', 4)
                } else {
                    return Err(proptest::test_runner::TestCaseError::fail(format!("a bare & in {escaped:?}")));
                };
                original.push(decoded);
                rest = &rest[len..];
            }
            original.push_str(rest);
            proptest::prop_assert_eq!(original, text);
        }
    }
}
