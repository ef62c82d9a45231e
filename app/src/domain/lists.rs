//! What the page shows: the newest todos of each list and how many there are.

use super::Todo;

/// The open and done lists as the page shows them: at most
/// [`TodoLists::SHOWN`] newest of each, with exact totals, so a page (and
/// the fragment every change re-renders) stays the same size however many
/// todos pile up.
#[derive(Debug, Default)]
pub struct TodoLists {
    pub open: Vec<Todo>,
    pub done: Vec<Todo>,
    pub open_total: u64,
    pub done_total: u64,
}

impl TodoLists {
    /// How many todos of each list a page shows.
    pub const SHOWN: u16 = 100;

    /// Todos of the open list that are not shown.
    pub fn open_hidden(&self) -> u64 {
        self.open_total.saturating_sub(self.open.len() as u64)
    }

    /// Todos of the done list that are not shown.
    pub fn done_hidden(&self) -> u64 {
        self.done_total.saturating_sub(self.done.len() as u64)
    }
}
