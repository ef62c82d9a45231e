//! `TodoText::parse`, the one gate every todo text goes through (forms and
//! the JSON API alike): accepted text is the trimmed input, 1 to 140
//! characters, no NUL; a refusal says why.
#![no_main]

use app::domain::{TodoText, TodoTextError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let trimmed = input.trim();
    let chars = trimmed.chars().count();
    match TodoText::parse(input) {
        Ok(text) => {
            assert_eq!(text.as_str(), trimmed);
            assert!((1..=TodoText::MAX_CHARS).contains(&chars));
            // PostgreSQL cannot store U+0000 in text.
            assert!(!trimmed.contains('\0'));
        }
        Err(error) => {
            match error {
                TodoTextError::Empty => assert_eq!(chars, 0),
                TodoTextError::TooLong { chars: counted } => {
                    assert_eq!(counted, chars);
                    assert!(counted > TodoText::MAX_CHARS);
                }
                TodoTextError::ContainsNul { chars: counted } => {
                    assert_eq!(counted, chars);
                    assert!(trimmed.contains('\0'));
                }
            }
            assert!(!error.to_string().is_empty());
            // The message may be shown and logged: it never carries the text.
            if trimmed.chars().count() > 20 {
                assert!(!error.to_string().contains(trimmed));
            }
        }
    }
});
