//! How many times this replica has heard that the todos changed: the one
//! counter that says whether something read from the database is still
//! current.
//!
//! It moves on every `NOTIFY outbox` ([`crate::outbox_listener`]: every
//! commit of a change, on any replica, reaches every replica in
//! milliseconds), whenever the listener's connection drops (notifications
//! may have been lost), and right after this replica's writer commits,
//! before it answers ([`crate::changes`]): a client that changed something
//! through this replica is never answered from what was read before.
//!
//! Readers take a [`Ticket`] before reading; what they read may be kept
//! only while the ticket is current. The page cache ([`crate::page_cache`])
//! and the API's known tags ([`crate::api_tags`]) both read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One replica's count of changes heard of. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct Generation(Arc<AtomicU64>);

/// Taken before a read: which generation the read belongs to, and when it
/// started.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    pub(crate) generation: u64,
    pub(crate) taken_at: Instant,
}

impl Generation {
    /// Something changed, or may have: nothing read before now is current.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Awaits `write`, which may commit a change, then moves the
    /// generation whatever came of it: a commit whose answer was lost on
    /// the way may still have happened.
    pub async fn bump_after<T>(&self, write: impl Future<Output = T>) -> T {
        let outcome = write.await;
        self.bump();
        outcome
    }

    /// The generation now.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// A ticket for a read starting now.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.current(),
            taken_at: Instant::now(),
        }
    }

    /// Whether nothing changed since `ticket` was taken.
    pub fn is_current(&self, ticket: Ticket) -> bool {
        self.current() == ticket.generation
    }

    /// `value`, read after `ticket` was taken, to keep; `None` if
    /// something changed since, as the value may be old already.
    pub fn keep<T>(&self, ticket: Ticket, value: T) -> Option<Kept<T>> {
        self.is_current(ticket).then_some(Kept {
            read: ticket,
            value,
        })
    }
}

/// Something read and kept ([`Generation::keep`]): worth handing out only
/// while nothing has changed since its read started, and while young.
pub struct Kept<T> {
    read: Ticket,
    pub value: T,
}

impl<T> Kept<T> {
    /// How old the value is for a request that took `now`, if nothing
    /// changed since it was read; `None` once something has.
    pub fn age(&self, now: Ticket) -> Option<Duration> {
        (self.read.generation == now.generation)
            .then(|| now.taken_at.duration_since(self.read.taken_at))
    }

    /// Whether it may replace `kept`: a slower read that started earlier
    /// must not replace a newer one.
    pub fn replaces(&self, kept: Option<&Kept<T>>) -> bool {
        kept.is_none_or(|kept| kept.read.taken_at <= self.read.taken_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_is_current_until_the_next_bump_on_any_clone() {
        let generation = Generation::default();
        let ticket = generation.ticket();
        assert!(generation.is_current(ticket));
        generation.clone().bump();
        assert!(!generation.is_current(ticket));
        assert!(generation.is_current(generation.ticket()));
    }

    #[tokio::test]
    async fn a_write_moves_the_generation_once_it_ends_even_if_it_failed() {
        let generation = Generation::default();
        let ticket = generation.ticket();
        let failed: Result<(), &str> = generation
            .bump_after(async {
                assert!(
                    generation.is_current(ticket),
                    "moved before the write ended"
                );
                Err("the commit's answer was lost")
            })
            .await;
        assert!(failed.is_err());
        assert!(!generation.is_current(ticket));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_value_ages_within_its_generation_and_an_older_read_never_replaces_it() {
        let generation = Generation::default();
        let older = generation.ticket();
        tokio::time::advance(Duration::from_millis(5)).await;
        let newer = generation.keep(generation.ticket(), "newer").unwrap();
        let slower = generation.keep(older, "older").unwrap();
        assert!(!slower.replaces(Some(&newer)));
        assert!(newer.replaces(Some(&slower)));
        assert!(newer.replaces(None));

        tokio::time::advance(Duration::from_millis(7)).await;
        assert_eq!(
            newer.age(generation.ticket()),
            Some(Duration::from_millis(7))
        );
        generation.bump();
        assert_eq!(newer.age(generation.ticket()), None);
        assert!(generation.keep(older, "read before the change").is_none());
    }
}
