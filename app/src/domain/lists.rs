//! What the page shows: the newest todos of each list and how many there are.

use super::Todo;
use super::count_param::count_param;

/// The open and done lists as the page shows them: the newest
/// [`Shown`] of each, with exact totals, so a page (and the fragment every
/// change re-renders) costs what it shows, however many todos pile up.
#[derive(Debug, Default)]
pub struct TodoLists {
    pub open: Vec<Todo>,
    pub done: Vec<Todo>,
    pub open_total: u64,
    pub done_total: u64,
    /// How many of each list were asked for.
    pub shown: Shown,
}

impl TodoLists {
    /// Todos of the open list that are not shown.
    pub fn open_hidden(&self) -> u64 {
        self.open_total.saturating_sub(self.open.len() as u64)
    }

    /// Todos of the done list that are not shown.
    pub fn done_hidden(&self) -> u64 {
        self.done_total.saturating_sub(self.done.len() as u64)
    }
}

/// How many of each list's newest todos a page shows: [`Shown::FIRST`] of
/// each at first, [`Shown::STEP`] more of a list each time the visitor asks
/// (`?show_open=`, `?show_done=`), up to [`Shown::MAX`]: a page's cost is
/// bounded by what the visitor chose to see, never by the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shown {
    open: u16,
    done: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` must be a whole number from 1 to {max}, got `{got}`", max = Shown::MAX)]
pub struct ShownError {
    name: &'static str,
    got: String,
}

impl Default for Shown {
    fn default() -> Self {
        Self {
            open: Self::FIRST,
            done: Self::FIRST,
        }
    }
}

impl Shown {
    pub const FIRST: u16 = 20;
    pub const STEP: u16 = 20;
    pub const MAX: u16 = 500;

    /// Reads `?show_open=` and `?show_done=`; an absent one is [`Shown::FIRST`].
    pub fn parse(open: Option<&str>, done: Option<&str>) -> Result<Self, ShownError> {
        Ok(Self {
            open: count("show_open", open)?,
            done: count("show_done", done)?,
        })
    }

    pub fn open(self) -> u16 {
        self.open
    }

    pub fn done(self) -> u16 {
        self.done
    }

    /// What a page shows before the visitor asks for more.
    pub fn is_first(self) -> bool {
        self == Self::default()
    }

    /// [`Shown::STEP`] more of the open list, if it may show more.
    pub fn more_open(self) -> Option<Self> {
        more(self.open).map(|open| Self { open, ..self })
    }

    /// [`Shown::STEP`] more of the done list, if it may show more.
    pub fn more_done(self) -> Option<Self> {
        more(self.done).map(|done| Self { done, ..self })
    }
}

fn count(name: &'static str, input: Option<&str>) -> Result<u16, ShownError> {
    let Some(raw) = input else {
        return Ok(Shown::FIRST);
    };
    count_param(raw, Shown::MAX).map_err(|got| ShownError { name, got })
}

fn more(shown: u16) -> Option<u16> {
    (shown < Shown::MAX).then(|| shown.saturating_add(Shown::STEP).min(Shown::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_counts_are_the_first_page() {
        let shown = Shown::parse(None, None).unwrap();
        assert!(shown.is_first());
        assert_eq!((shown.open(), shown.done()), (Shown::FIRST, Shown::FIRST));
    }

    #[test]
    fn counts_are_bounded() {
        let shown = Shown::parse(Some("40"), Some(" 500 ")).unwrap();
        assert_eq!((shown.open(), shown.done()), (40, 500));
        for bad in ["0", "501", "-1", "ten", "", "1e3"] {
            let e = Shown::parse(Some(bad), None).unwrap_err();
            assert!(e.to_string().starts_with("`show_open` must be"), "{e}");
            let e = Shown::parse(None, Some(bad)).unwrap_err();
            assert!(e.to_string().starts_with("`show_done` must be"), "{e}");
        }
    }

    #[test]
    fn more_adds_a_step_up_to_the_most() {
        let first = Shown::default();
        let more = first.more_open().unwrap();
        assert_eq!((more.open(), more.done()), (40, 20));
        let more = first.more_done().unwrap();
        assert_eq!((more.open(), more.done()), (20, 40));
        let near = Shown::parse(Some("490"), None).unwrap();
        assert_eq!(near.more_open().unwrap().open(), Shown::MAX);
        let most = Shown::parse(Some("500"), None).unwrap();
        assert_eq!(most.more_open(), None);
    }
}
