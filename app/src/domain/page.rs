//! Query parameters of the JSON list: page size and cursor.

use uuid::Uuid;

use super::TodoId;
use super::count_param::count_param;

/// How many todos one page of the JSON list holds: 1 to [`Limit::MAX`], default [`Limit::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit(u16);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a whole number from 1 to {max}, got `{0}`", max = Limit::MAX)]
pub struct LimitError(String);

impl Limit {
    pub const DEFAULT: u16 = 50;
    pub const MAX: u16 = 200;

    /// Reads `?limit=`; absent means the default.
    pub fn parse(input: Option<&str>) -> Result<Self, LimitError> {
        let Some(raw) = input else {
            return Ok(Self(Self::DEFAULT));
        };
        count_param(raw, Self::MAX).map(Self).map_err(LimitError)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// Where the next page starts: the id of the last todo of the previous page.
///
/// Ids are time-ordered, so "newest first, after this one" is `id < cursor`:
/// a walk sees every row that existed when it started exactly once, even
/// while todos are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor(TodoId);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor must be a `next_cursor` value from a previous page")]
pub struct CursorError;

impl Cursor {
    pub fn parse(input: &str) -> Result<Self, CursorError> {
        Uuid::try_parse(input.trim())
            .map(|id| Self(id.into()))
            .map_err(|_| CursorError)
    }

    pub fn after(last: TodoId) -> Self {
        Self(last)
    }

    pub fn todo_id(self) -> TodoId {
        self.0
    }

    pub fn encode(self) -> String {
        self.0.to_string()
    }
}

/// Which page of the JSON list a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub limit: Limit,
    pub cursor: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(Limit::parse(None).unwrap().get(), 50);
        assert_eq!(Limit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(Limit::parse(Some("200")).unwrap().get(), 200);
        assert!(Limit::parse(Some("0")).is_err());
        assert!(Limit::parse(Some("201")).is_err());
        assert!(Limit::parse(Some("-1")).is_err());
        assert!(Limit::parse(Some("ten")).is_err());
    }

    #[test]
    fn cursor_round_trips() {
        let id = TodoId::new();
        let cursor = Cursor::after(id);
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap().todo_id(), id);
        assert_eq!(Cursor::parse("nope"), Err(CursorError));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn limit_parse_never_panics(input in "\\PC{0,12}") {
            if let Ok(limit) = Limit::parse(Some(&input)) {
                prop_assert!((1..=Limit::MAX).contains(&limit.get()));
            }
        }

        #[test]
        fn cursor_parse_never_panics(input in "\\PC{0,48}") {
            let _ = Cursor::parse(&input);
        }
    }
}
