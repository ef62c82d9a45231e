//! An `Idempotency-Key` header's value: what makes a retried create return
//! the first answer instead of making a second todo.

use std::fmt;

/// 1 to [`IdempotencyKey::MAX_LEN`] visible ASCII characters (`!` to `~`),
/// as the IETF draft "The Idempotency-Key HTTP Header Field" leaves the
/// format to the server; a UUID fits, and so does any client's counter.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "An Idempotency-Key must be 1 to {max} visible ASCII characters (no spaces); this one is not.",
    max = IdempotencyKey::MAX_LEN
)]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// Takes a header value's bytes as they are: a key is not trimmed, so
    /// two keys differ exactly when their bytes do.
    pub fn parse(raw: &[u8]) -> Result<Self, IdempotencyKeyError> {
        let valid =
            (1..=Self::MAX_LEN).contains(&raw.len()) && raw.iter().all(u8::is_ascii_graphic);
        if !valid {
            return Err(IdempotencyKeyError);
        }
        let key = std::str::from_utf8(raw).expect("ASCII is UTF-8");
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    /// Its length only: a client may put something private in a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({} chars)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii_up_to_255_characters_is_a_key() {
        for key in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "!~#$%&'()*+,./:;<=>?@[\\]^_`{|}",
        ] {
            assert_eq!(IdempotencyKey::parse(key.as_bytes()).unwrap().as_str(), key);
        }
        let longest = "k".repeat(255);
        assert!(IdempotencyKey::parse(longest.as_bytes()).is_ok());
    }

    #[test]
    fn empty_long_spaced_control_or_non_ascii_keys_are_refused() {
        let too_long = "k".repeat(256);
        for bad in [
            &b""[..],
            too_long.as_bytes(),
            b"two words",
            b" padded",
            b"tab\there",
            b"nul\0",
            b"del\x7f",
            "caf\u{e9}".as_bytes(),
            b"\xff",
        ] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(IdempotencyKeyError),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let key = IdempotencyKey::parse(b"order-4711").unwrap();
        assert_eq!(format!("{key:?}"), "IdempotencyKey(10 chars)");
    }
}
