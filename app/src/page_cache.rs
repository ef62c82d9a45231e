//! The rendered page, kept in memory while nothing changes.
//!
//! `GET /` is most of the traffic and the lists rarely change between two
//! loads, so each replica keeps the last page it rendered and serves it
//! again without a database round trip, as long as all of these hold:
//!
//! - **Nothing changed since.** Every change writes an outbox row, whose
//!   trigger sends `NOTIFY outbox` at commit, to every replica. Each
//!   replica's listener ([`crate::outbox_listener`]) bumps its
//!   [`Generation`] on every notification (and when its connection drops,
//!   since notifications can be lost then), and its writer bumps it after
//!   each commit of its own; a page is served only if it was rendered from
//!   a read that started after the current generation began.
//! - **It is young.** A page older than its maximum age (`PAGE_CACHE_MAX_AGE`,
//!   1 s by default) is rendered again, whatever the listener heard; while
//!   one request does that, the others get the aged page for up to a second
//!   more, never past 60 s. That bounds how stale anyone can see the lists
//!   if a notification is late, and it is half of the writer's guarantee
//!   below.
//! - **The reader did not just write.** Every change made through the page
//!   answers with a signed write marker ([`crate::write_marker`]) that lives
//!   60 s, and a request carrying a valid one always reads the database. After the cookie expires, the write is
//!   older than 60 s, and any page served was read less than 60 s ago, so
//!   after the write: a writer always sees its
//!   own changes, on every replica, with no help from the listener. (It
//!   relies on the browser's clock not jumping forward by a minute.)
//!
//! Other readers see a change once this replica hears of it, in
//! milliseconds, and at the latest after the maximum age; an open page is
//! told of every change over its event stream anyway, and re-fetches the
//! lists from the database (`/fragments/todo-lists` is never cached).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use prometheus::IntCounter;

use crate::generation::{Generation, Kept, Ticket};
use crate::write_marker;

/// The default `PAGE_CACHE_MAX_AGE`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(1);
/// How much longer a page that aged with nothing changed is served while one
/// request reads it again: without it, every request in flight when the
/// page expires reads the database at once (p99 at 64 connections went
/// from 5–8 ms to 15–42 ms with a 1 s maximum age).
const REFRESH_GRACE: Duration = Duration::from_secs(1);

/// One replica's cached page. Cheap to clone; clones share the page.
#[derive(Clone)]
pub struct PageCache {
    inner: Arc<Inner>,
}

struct Inner {
    max_age: Duration,
    /// Moves on every change heard of, and whenever changes may have gone unheard.
    generation: Generation,
    page: RwLock<Option<Arc<Kept<Bytes>>>>,
    /// A request is reading the lists again for a page that only aged.
    refreshing: AtomicBool,
    hits: IntCounter,
    misses: IntCounter,
    bypasses: IntCounter,
}

/// What a request for the page is to get.
pub enum Lookup {
    /// The cached page, still current.
    Hit(Bytes),
    /// Render it; store it with the ticket.
    Miss(Ticket),
    /// Render it from the database for this reader only.
    Bypass,
}

impl PageCache {
    /// A cache keeping a page at most `max_age` (capped at
    /// [`write_marker::MAX_AGE`]) while `generation` stays; `hits`,
    /// `misses` and `bypasses` count lookups.
    pub fn new(
        generation: Generation,
        max_age: Duration,
        hits: IntCounter,
        misses: IntCounter,
        bypasses: IntCounter,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_age: max_age.min(write_marker::MAX_AGE),
                generation,
                page: RwLock::new(None),
                refreshing: AtomicBool::new(false),
                hits,
                misses,
                bypasses,
            }),
        }
    }

    /// Looks the page up for a reader who did or did not write recently.
    pub fn lookup(&self, wrote_recently: bool) -> Lookup {
        if wrote_recently || self.inner.max_age.is_zero() {
            self.inner.bypasses.inc();
            return Lookup::Bypass;
        }
        let ticket = self.inner.generation.ticket();
        let cached = self
            .inner
            .page
            .read()
            .expect("the page lock is never poisoned")
            .clone();
        if let Some(cached) = cached
            && let Some(age) = cached.age(ticket)
        {
            // Never past the cookie's life: the writer's guarantee rests on it.
            let grace_ends = (self.inner.max_age + REFRESH_GRACE).min(write_marker::MAX_AGE);
            if age < self.inner.max_age
                || (age < grace_ends && self.inner.refreshing.swap(true, Ordering::AcqRel))
            {
                self.inner.hits.inc();
                return Lookup::Hit(cached.value.clone());
            }
        }
        self.inner.misses.inc();
        Lookup::Miss(ticket)
    }

    /// Keeps a page rendered from a read that started after `ticket` was taken.
    pub fn store(&self, ticket: Ticket, body: Bytes) {
        // Whoever stores ends a refresh (also one whose reader failed).
        self.inner.refreshing.store(false, Ordering::Release);
        let Some(fresh) = self.inner.generation.keep(ticket, body) else {
            return; // Something changed during the read: this page is already old.
        };
        let mut page = self
            .inner
            .page
            .write()
            .expect("the page lock is never poisoned");
        if fresh.replaces(page.as_deref()) {
            *page = Some(Arc::new(fresh));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_age: Duration) -> PageCache {
        let counter = || IntCounter::new("c", "c").unwrap();
        PageCache::new(
            Generation::default(),
            max_age,
            counter(),
            counter(),
            counter(),
        )
    }

    fn stored(cache: &PageCache, body: &'static str) {
        let Lookup::Miss(ticket) = cache.lookup(false) else {
            panic!("expected a miss");
        };
        cache.store(ticket, Bytes::from_static(body.as_bytes()));
    }

    fn hit(cache: &PageCache) -> Option<Bytes> {
        match cache.lookup(false) {
            Lookup::Hit(body) => Some(body),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_stored_page_is_served_until_something_changes() {
        let cache = cache(Duration::from_secs(60));
        assert!(hit(&cache).is_none(), "nothing stored yet");
        stored(&cache, "page one");
        assert_eq!(hit(&cache).as_deref(), Some(&b"page one"[..]));

        cache.inner.generation.bump();

        assert!(hit(&cache).is_none());
    }

    #[tokio::test]
    async fn a_change_during_the_read_keeps_its_page_out() {
        let cache = cache(Duration::from_secs(60));
        let Lookup::Miss(ticket) = cache.lookup(false) else {
            panic!("expected a miss");
        };
        cache.inner.generation.bump(); // committed while the lists were being read
        cache.store(ticket, Bytes::from_static(b"maybe old"));
        assert!(hit(&cache).is_none());
    }

    #[tokio::test]
    async fn a_reader_who_wrote_recently_always_reads_the_database() {
        let cache = cache(Duration::from_secs(60));
        stored(&cache, "page");
        assert!(matches!(cache.lookup(true), Lookup::Bypass));
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_older_than_its_maximum_age_is_read_again_by_one_request_at_a_time() {
        let cache = cache(Duration::from_secs(1));
        stored(&cache, "old");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(hit(&cache).is_some());
        tokio::time::advance(Duration::from_millis(1)).await;

        let Lookup::Miss(refresh) = cache.lookup(false) else {
            panic!("the first request after the maximum age reads again");
        };
        // Meanwhile the others keep the aged page rather than all reading.
        assert_eq!(hit(&cache).as_deref(), Some(&b"old"[..]));
        cache.store(refresh, Bytes::from_static(b"new"));
        assert_eq!(hit(&cache).as_deref(), Some(&b"new"[..]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_that_never_stores_holds_the_aged_page_one_second_at_most() {
        let cache = cache(Duration::from_secs(1));
        stored(&cache, "old");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(cache.lookup(false), Lookup::Miss(_)));
        assert!(hit(&cache).is_some());
        tokio::time::advance(REFRESH_GRACE).await;
        assert!(hit(&cache).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_page_is_never_served_while_it_is_read_again() {
        let cache = cache(Duration::from_secs(60));
        stored(&cache, "page");
        cache.inner.generation.bump();
        assert!(matches!(cache.lookup(false), Lookup::Miss(_)));
        assert!(
            hit(&cache).is_none(),
            "no grace for a page a change made old"
        );
    }

    #[tokio::test]
    async fn a_zero_maximum_age_turns_the_cache_off() {
        let cache = cache(Duration::ZERO);
        assert!(matches!(cache.lookup(false), Lookup::Bypass));
    }

    #[tokio::test(start_paused = true)]
    async fn no_page_is_served_once_the_cookie_would_have_expired() {
        let cache = cache(Duration::from_secs(3600));
        stored(&cache, "page");
        tokio::time::advance(write_marker::MAX_AGE - Duration::from_millis(1)).await;
        assert!(hit(&cache).is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(hit(&cache).is_none(), "past the cookie's life");
        assert!(hit(&cache).is_none(), "not even while another reads again");
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_read_does_not_replace_a_newer_page() {
        let cache = cache(Duration::from_secs(60));
        let Lookup::Miss(older) = cache.lookup(false) else {
            panic!("expected a miss");
        };
        tokio::time::advance(Duration::from_millis(5)).await;
        stored(&cache, "newer");
        cache.store(older, Bytes::from_static(b"older"));
        assert_eq!(hit(&cache).as_deref(), Some(&b"newer"[..]));
    }
}
