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
}
