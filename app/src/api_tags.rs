//! The `ETag`s of JSON list pages known current, so a conditional
//! `GET /api/todos` whose page did not change is answered `304` without a
//! database read.
//!
//! Each replica remembers, per page asked for (limit and cursor), the tag
//! of the last read of it, the [`Generation`] that read belonged to and
//! when it started. A tag is known current while:
//!
//! - **Nothing changed since** on this replica's count: the generation
//!   moves on every change this replica commits, before the writer answers
//!   (so a client that changed a todo through this replica never gets a
//!   304 for the page before), and on every change any replica commits,
//!   once this replica's listener hears the `NOTIFY`, in milliseconds.
//! - **It is young**: younger than the page cache's maximum age
//!   (`PAGE_CACHE_MAX_AGE`, 1 s by default; zero turns this off). That
//!   bounds how long a change made through another replica can go unseen
//!   here if its notification is late or lost.
//!
//! So a client sees its own changes at once on the replica that made them,
//! and a change made elsewhere within the notification's delay, at worst
//! the maximum age. At most [`MAX_PAGES`] pages are remembered (the cursor
//! is the client's to choose); past that, and whenever the generation has
//! moved, the record starts over.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::HeaderValue;

use crate::domain::PageKey;
use crate::generation::{Generation, Kept, Ticket};
use crate::write_marker;

/// The most pages remembered at once. Clients walk a few pages; a few
/// hundred covers them, and bounds what made-up cursors can cost.
pub const MAX_PAGES: usize = 256;

/// One replica's record of tags. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct ApiTags {
    inner: Arc<Inner>,
}

struct Inner {
    generation: Generation,
    max_age: Duration,
    known: RwLock<Known>,
}

/// Tags read within one generation; any other generation's are worthless.
#[derive(Default)]
struct Known {
    generation: u64,
    pages: HashMap<PageKey, Kept<HeaderValue>>,
}

/// What a request for a page learns before reading it.
pub struct Lookup {
    /// The page's tag, if it is known current.
    pub current: Option<HeaderValue>,
    /// For [`ApiTags::keep`], after reading the page.
    pub ticket: Ticket,
}

impl ApiTags {
    /// Tags kept at most `max_age` (zero: none; capped as the page
    /// cache's is) while `generation` stays.
    pub fn new(generation: Generation, max_age: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                generation,
                max_age: max_age.min(write_marker::MAX_AGE),
                known: RwLock::default(),
            }),
        }
    }

    /// The tag of `page` if it is known current, and a ticket for reading it.
    pub fn lookup(&self, page: PageKey) -> Lookup {
        let ticket = self.inner.generation.ticket();
        let known = self.inner.known.read().expect("the lock is never poisoned");
        let current = known
            .pages
            .get(&page)
            .filter(|tag| tag.age(ticket).is_some_and(|age| age < self.inner.max_age))
            .map(|tag| tag.value.clone());
        Lookup { current, ticket }
    }

    /// Remembers `etag` for `page`, read after `ticket` was taken, unless
    /// something changed since.
    pub fn keep(&self, page: PageKey, ticket: Ticket, etag: HeaderValue) {
        if self.inner.max_age.is_zero() {
            return;
        }
        let mut known = self
            .inner
            .known
            .write()
            .expect("the lock is never poisoned");
        let Some(tag) = self.inner.generation.keep(ticket, etag) else {
            return; // Something changed during the read: this tag may be old.
        };
        if known.generation != ticket.generation {
            known.pages.clear();
            known.generation = ticket.generation;
        }
        if known.pages.len() >= MAX_PAGES && !known.pages.contains_key(&page) {
            known.pages.clear();
        }
        if tag.replaces(known.pages.get(&page)) {
            known.pages.insert(page, tag);
        }
    }

    /// Pages remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .known
            .read()
            .expect("the lock is never poisoned")
            .pages
            .len()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Cursor, Limit};

    const TAG: HeaderValue = HeaderValue::from_static("\"one\"");

    fn page(limit: &str) -> PageKey {
        PageKey {
            limit: Limit::parse(Some(limit)).unwrap(),
            cursor: None,
        }
    }

    fn read(tags: &ApiTags, page: PageKey, etag: HeaderValue) {
        let ticket = tags.lookup(page).ticket;
        tags.keep(page, ticket, etag);
    }

    fn current(tags: &ApiTags, page: PageKey) -> Option<HeaderValue> {
        tags.lookup(page).current
    }

    #[tokio::test(start_paused = true)]
    async fn a_tag_is_current_for_its_own_page_until_the_generation_moves_or_it_ages() {
        let generation = Generation::default();
        let tags = ApiTags::new(generation.clone(), Duration::from_secs(1));
        assert_eq!(current(&tags, page("5")), None, "nothing read yet");
        read(&tags, page("5"), TAG);
        assert_eq!(current(&tags, page("5")), Some(TAG));
        assert_eq!(current(&tags, page("6")), None, "another limit");

        generation.bump();
        assert_eq!(current(&tags, page("5")), None);

        read(&tags, page("5"), TAG);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(current(&tags, page("5")), Some(TAG));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(current(&tags, page("5")), None, "past the maximum age");
    }

    #[tokio::test]
    async fn a_change_during_the_read_keeps_its_tag_out() {
        let generation = Generation::default();
        let tags = ApiTags::new(generation.clone(), Duration::from_secs(60));
        let ticket = tags.lookup(page("5")).ticket;
        generation.bump(); // committed while the page was being read
        tags.keep(page("5"), ticket, TAG);
        assert_eq!(current(&tags, page("5")), None);
        assert_eq!(tags.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_read_does_not_replace_a_newer_tag() {
        let tags = ApiTags::new(Generation::default(), Duration::from_secs(60));
        let older = tags.lookup(page("5")).ticket;
        tokio::time::advance(Duration::from_millis(5)).await;
        read(&tags, page("5"), TAG);
        tags.keep(page("5"), older, HeaderValue::from_static("\"older\""));
        assert_eq!(current(&tags, page("5")), Some(TAG));
    }

    #[tokio::test]
    async fn many_cursors_never_grow_the_record_past_its_bound() {
        let tags = ApiTags::new(Generation::default(), Duration::from_secs(60));
        for _ in 0..MAX_PAGES * 4 {
            let page = PageKey {
                limit: Limit::parse(None).unwrap(),
                cursor: Some(Cursor::parse(&Uuid::new_v4().to_string()).unwrap()),
            };
            read(&tags, page, TAG);
            assert!(tags.len() <= MAX_PAGES, "{} pages remembered", tags.len());
        }
        assert!(tags.len() > 0, "the last page read is remembered");
    }

    #[tokio::test]
    async fn a_zero_maximum_age_remembers_nothing() {
        let tags = ApiTags::new(Generation::default(), Duration::ZERO);
        read(&tags, page("5"), TAG);
        assert_eq!(current(&tags, page("5")), None);
        assert_eq!(tags.len(), 0);
    }
}
