//! The page and the lists fragment, rendered once per read.
//!
//! Requests that want the lists at the same time share one read
//! ([`crate::read_together`]), and the page (for a reader who just wrote)
//! and the fragment (for every open page after a change) follow from the
//! read alone. So each is rendered once for the read it comes from and
//! handed to every request that shares that read: up to 200 todos of markup
//! cost more than the read itself.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use maud::Markup;

use super::todos::{self, FormState};
use crate::domain::TodoLists;

/// The last page and fragment rendered, each with the read it came from.
#[derive(Default)]
pub struct Rendered {
    page: Slot,
    fragment: Slot,
    /// Whether the page shows the picture (`PICTURE_SOURCE_URL` is set).
    picture: bool,
}

/// A rendering and the read it came from. Holding the read keeps its
/// allocation alive, so another read can never be mistaken for it.
type Slot = Mutex<Option<(Arc<TodoLists>, Bytes)>>;

impl Rendered {
    /// Pages that show the picture.
    pub fn with_picture() -> Self {
        Self {
            picture: true,
            ..Self::default()
        }
    }

    /// The whole page for `lists`, with an empty form.
    pub fn page(&self, lists: &Arc<TodoLists>) -> Bytes {
        once_per_read(&self.page, lists, || {
            todos::index(lists, &FormState::default(), self.picture)
        })
    }

    /// The lists section for `lists`, with no notice.
    pub fn fragment(&self, lists: &Arc<TodoLists>) -> Bytes {
        once_per_read(&self.fragment, lists, || todos::lists(lists, None))
    }
}

fn once_per_read(slot: &Slot, lists: &Arc<TodoLists>, render: impl FnOnce() -> Markup) -> Bytes {
    if let Some((read, bytes)) = &*slot.lock().expect("never poisoned")
        && Arc::ptr_eq(read, lists)
    {
        return bytes.clone();
    }
    // Rendered outside the lock: requests of another read do not wait.
    let bytes = Bytes::from(render().into_string());
    *slot.lock().expect("never poisoned") = Some((Arc::clone(lists), bytes.clone()));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_rendered_once_and_another_read_anew() {
        let rendered = Rendered::default();
        let first = Arc::new(TodoLists::default());
        let page = rendered.page(&first);
        assert!(
            std::str::from_utf8(&page)
                .unwrap()
                .contains("Nothing to do")
        );
        assert_eq!(
            rendered.page(&first).as_ptr(),
            page.as_ptr(),
            "the same read's page is the same bytes"
        );

        let second = Arc::new(TodoLists {
            open_total: 7,
            ..TodoLists::default()
        });
        let again = rendered.page(&second);
        assert_ne!(
            again.as_ptr(),
            page.as_ptr(),
            "another read is rendered anew"
        );
        assert_eq!(rendered.fragment(&second), rendered.fragment(&second));
        assert!(!std::str::from_utf8(&again).unwrap().contains("/picture"));
        let with_picture = Rendered::with_picture().page(&second);
        assert!(
            std::str::from_utf8(&with_picture)
                .unwrap()
                .contains(r#"src="/picture""#)
        );
        assert!(
            std::str::from_utf8(&rendered.fragment(&second))
                .unwrap()
                .contains("id=\"todo-lists\"")
        );
    }
}
