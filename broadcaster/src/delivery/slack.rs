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
}
