//! Per-todo ordering inside one replica.
//!
//! The pull loop hands events to concurrent tasks, which on its own would
//! let `todo.deleted` overtake `todo.created` when both arrive in one batch.
//! So the loop, which sees messages in stream order, gives each event a
//! [`Turn`] keyed by its todo id: the turn completes when the previous event
//! of the same todo has finished (delivered, dead-lettered or handed back),
//! and events of different todos never wait for each other.
//!
//! What this does not order: events of one todo handed out to different
//! replicas in the same instant, and an event whose attempt failed and is
//! retried later (it is handed back to JetStream, so later events of the
//! same todo may pass it rather than wait behind it for up to the whole
//! retry schedule). The README states these limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;
use uuid::Uuid;

type Done = Shared<oneshot::Receiver<()>>;

/// The open turns, by todo id.
#[derive(Debug, Clone, Default)]
pub struct Turns {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    last: HashMap<Uuid, (u64, Done)>,
}

/// One event's place in its todo's queue. Dropping it lets the next event go.
#[derive(Debug)]
pub struct Turn {
    turns: Turns,
    key: Uuid,
    number: u64,
    previous: Option<Done>,
    _done: oneshot::Sender<()>,
}

impl Turns {
    /// Queues an event of todo `key` behind the ones queued before it.
    pub fn take(&self, key: Uuid) -> Turn {
        let (done_tx, done_rx) = oneshot::channel();
        let mut inner = self.inner.lock().unwrap();
        inner.next += 1;
        let number = inner.next;
        let previous = inner
            .last
            .insert(key, (number, done_rx.shared()))
            .map(|(_, done)| done);
        Turn {
            turns: self.clone(),
            key,
            number,
            previous,
            _done: done_tx,
        }
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.inner.lock().unwrap().last.len()
    }
}

impl Turn {
    /// Waits until every earlier event of the same todo has finished.
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // Err(Canceled) is the normal signal: the previous turn was dropped.
            let _ = previous.await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut inner = self.turns.inner.lock().unwrap();
        if inner
            .last
            .get(&self.key)
            .is_some_and(|(number, _)| *number == self.number)
        {
            inner.last.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn events_of_one_todo_go_one_after_another() {
        let turns = Turns::default();
        let todo = Uuid::new_v4();
        let first = turns.take(todo);
        let mut second = turns.take(todo);
        let waiting = tokio::time::timeout(Duration::from_millis(50), second.wait()).await;
        assert!(waiting.is_err(), "the second waits while the first is open");
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), second.wait())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn events_of_different_todos_do_not_wait_for_each_other() {
        let turns = Turns::default();
        let _first = turns.take(Uuid::new_v4());
        let mut other = turns.take(Uuid::new_v4());
        tokio::time::timeout(Duration::from_secs(1), other.wait())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn finished_todos_leave_nothing_behind() {
        let turns = Turns::default();
        let todo = Uuid::new_v4();
        let first = turns.take(todo);
        let second = turns.take(todo);
        drop(first);
        assert_eq!(turns.open(), 1);
        drop(second);
        assert_eq!(turns.open(), 0);
    }
}
