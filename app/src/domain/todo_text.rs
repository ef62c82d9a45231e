//! The text of a todo: trimmed, 1 to 140 characters, no NUL character.

use std::fmt;

/// A todo's text, guaranteed to be trimmed and 1 to [`TodoText::MAX_CHARS`] characters long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoText(String);

/// Why a text cannot be a todo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TodoTextError {
    #[error("Write something to do: a todo cannot be empty.")]
    Empty,
    #[error(
        "A todo can be at most {max} characters long; this one has {chars}.",
        max = TodoText::MAX_CHARS
    )]
    TooLong { chars: usize },
    /// PostgreSQL cannot store U+0000 in a text column: without this check
    /// the insert fails and the client gets a 500 for its own bad input.
    #[error("A todo cannot contain the NUL character (U+0000).")]
    ContainsNul { chars: usize },
}

impl TodoTextError {
    /// The length of the rejected text in characters, for logs that must not carry the text itself.
    pub fn rejected_chars(&self) -> usize {
        match self {
            TodoTextError::Empty => 0,
            TodoTextError::TooLong { chars } | TodoTextError::ContainsNul { chars } => *chars,
        }
    }
}

impl TodoText {
    /// The longest text a todo may have, counted in Unicode scalar values, not bytes.
    pub const MAX_CHARS: usize = 140;

    /// Trims the input and checks its length and characters.
    pub fn parse(input: &str) -> Result<Self, TodoTextError> {
        let trimmed = input.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(TodoTextError::Empty);
        }
        if chars > Self::MAX_CHARS {
            return Err(TodoTextError::TooLong { chars });
        }
        if trimmed.contains('\0') {
            return Err(TodoTextError::ContainsNul { chars });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TodoText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TodoText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_empty_text_is_rejected() {
        assert_eq!(TodoText::parse(""), Err(TodoTextError::Empty));
    }

    #[test]
    fn a_whitespace_only_text_is_rejected() {
        assert_eq!(TodoText::parse(" \t\n\u{3000} "), Err(TodoTextError::Empty));
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(
            TodoText::parse("  buy milk \n").unwrap().as_str(),
            "buy milk"
        );
    }

    #[test]
    fn exactly_140_characters_is_accepted() {
        let text = "a".repeat(140);
        assert_eq!(TodoText::parse(&text).unwrap().as_str(), text);
    }

    #[test]
    fn characters_141_is_rejected_and_the_error_names_the_limit() {
        let err = TodoText::parse(&"a".repeat(141)).unwrap_err();
        assert_eq!(err, TodoTextError::TooLong { chars: 141 });
        assert!(err.to_string().contains("140 characters"), "{err}");
    }

    #[test]
    fn multi_byte_text_counts_characters_not_bytes() {
        // 140 characters, 420 bytes: allowed.
        let text = "日".repeat(140);
        assert_eq!(text.len(), 420);
        assert!(TodoText::parse(&text).is_ok());
        // Emoji are one scalar each; 141 of them are too many.
        assert_eq!(
            TodoText::parse(&"🦀".repeat(141)),
            Err(TodoTextError::TooLong { chars: 141 })
        );
    }

    #[test]
    fn a_nul_character_is_rejected_and_the_error_says_so() {
        let err = TodoText::parse("buy\0milk").unwrap_err();
        assert_eq!(err, TodoTextError::ContainsNul { chars: 8 });
        assert!(err.to_string().contains("NUL"), "{err}");
    }

    #[test]
    fn html_is_kept_verbatim_for_the_views_to_escape() {
        let text = TodoText::parse("<script>alert(1)</script>").unwrap();
        assert_eq!(text.as_str(), "<script>alert(1)</script>");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn parse_never_panics_and_accepts_exactly_the_valid_texts(input in "\\PC{0,200}|\\s{0,5}\\PC{0,150}\\s{0,5}") {
            let trimmed_chars = input.trim().chars().count();
            match TodoText::parse(&input) {
                Ok(text) => {
                    prop_assert_eq!(text.as_str(), input.trim());
                    prop_assert!((1..=140).contains(&trimmed_chars));
                }
                Err(TodoTextError::Empty) => prop_assert_eq!(trimmed_chars, 0),
                Err(TodoTextError::TooLong { chars }) => {
                    prop_assert_eq!(chars, trimmed_chars);
                    prop_assert!(chars > 140);
                }
                Err(TodoTextError::ContainsNul { chars }) => {
                    prop_assert_eq!(chars, trimmed_chars);
                    prop_assert!(input.trim().contains('\0'));
                }
            }
        }
    }
}
