//! Discord webhooks: `{"content": "..."}`.
//!
//! Content is Discord-flavoured Markdown, so markup characters in the todo's
//! text are backslash-escaped; `@` is escaped too, so a todo reading
//! `@everyone` cannot ping a whole server.

use events::TodoEvent;
use serde_json::json;

use super::message;

/// Discord rejects content longer than this.
const MAX_CHARS: usize = 2000;

pub(super) fn body(event: &TodoEvent) -> serde_json::Value {
    json!({ "content": message(event, escape, MAX_CHARS) })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '|'
                | '>'
                | '#'
                | '-'
                | '['
                | ']'
                | '('
                | ')'
                | '<'
                | '@'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use events::EventType;

    use super::*;
    use crate::delivery::tests::event;

    #[test]
    fn sends_content_with_markdown_escaped() {
        let event = event(EventType::Updated, "**ship** it @everyone", true);
        assert_eq!(
            body(&event).to_string(),
            r#"{"content":"Todo marked done: \\*\\*ship\\*\\* it \\@everyone"}"#
        );
    }

    #[test]
    fn names_the_actor_with_markdown_escaped_too() {
        let event = event(EventType::Created, "Buy milk", false).by(events::Actor::Person {
            subject: "1".into(),
            name: "**Ada** @everyone".into(),
        });
        assert_eq!(
            body(&event).to_string(),
            r#"{"content":"\\*\\*Ada\\*\\* \\@everyone added: Buy milk"}"#
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// No markup character reaches Discord unescaped, and dropping the
        /// escapes gives back the text exactly.
        #[test]
        fn every_markup_character_is_escaped_and_nothing_else_changes(text in "(?s).{0,300}") {
            let escaped = escape(&text);
            let mut original = String::new();
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    let next = chars.next();
                    proptest::prop_assert!(next.is_some(), "a dangling backslash in {escaped:?}");
                    original.extend(next);
                } else {
                    proptest::prop_assert!(
                        !"\\*_~`|>#-[]()<@".contains(c),
                        "{c:?} unescaped in {escaped:?}"
                    );
                    original.push(c);
                }
            }
            proptest::prop_assert_eq!(original, text);
        }
    }
}
