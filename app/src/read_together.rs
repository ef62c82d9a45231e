//! Reads of the same thing, taken together.
//!
//! Every change through the page answers with the lists as they are after
//! it, and every open page fetches them again on each change's event, so
//! under load many requests want "the lists as of now" at once. A read that
//! started after a request arrived answers it exactly as a read of its own
//! would: it sees every change committed before the request. So one read
//! runs at a time, and a request takes the newest read that started after
//! it arrived, reading itself only when there is none. However many
//! requests wait, the database sees at most one read in flight and one
//! queued behind it.
//!
//! [`KeyedReads`] does the same for each of many things (the pages of the
//! JSON list): a request shares only reads of what it asked for.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// Shares reads of a `T` between the requests that arrive while one runs.
pub struct ReadTogether<T> {
    /// Held while reading: a request waits here for its turn.
    turn: tokio::sync::Mutex<()>,
    /// The newest read, and when it started.
    newest: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for ReadTogether<T> {
    fn default() -> Self {
        Self {
            turn: tokio::sync::Mutex::new(()),
            newest: Mutex::new(None),
        }
    }
}

impl<T> ReadTogether<T> {
    /// The value as of now: from a read that started after this call, the
    /// caller's own (`read`) or one it shares.
    pub async fn read<E, F, Fut>(&self, read: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let arrived = Instant::now();
        let _turn = self.turn.lock().await;
        if let Some(value) = self.started_since(arrived) {
            return Ok(value);
        }
        let started = Instant::now();
        let value = Arc::new(read().await?);
        *self.newest.lock().expect("never poisoned") = Some((started, Arc::clone(&value)));
        Ok(value)
    }

    fn started_since(&self, arrived: Instant) -> Option<Arc<T>> {
        let newest = self.newest.lock().expect("never poisoned");
        let (started, value) = newest.as_ref()?;
        (*started >= arrived).then(|| Arc::clone(value))
    }
}

/// A [`ReadTogether`] for each key, for at most `max_keys` keys at once:
/// past that the record starts over, which costs only some sharing, so
/// keys a client makes up cannot grow it. A key's reader is dropped, with
/// the value it last read, once no request wants that key: a value is
/// shared only with requests that arrived before its read started, so
/// kept longer it would only hold memory.
pub struct KeyedReads<K, T> {
    max_keys: usize,
    readers: Mutex<HashMap<K, Arc<ReadTogether<T>>>>,
}

impl<K: Eq + Hash + Clone, T> KeyedReads<K, T> {
    pub fn new(max_keys: usize) -> Self {
        Self {
            max_keys,
            readers: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key` as of now: from a read of `key` that started
    /// after this call, the caller's own (`read`) or one it shares.
    pub async fn read<E, F, Fut>(&self, key: K, read: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let together = {
            let mut readers = self.readers.lock().expect("never poisoned");
            if readers.len() >= self.max_keys && !readers.contains_key(&key) {
                readers.clear();
            }
            Arc::clone(readers.entry(key.clone()).or_default())
        };
        // Dropped when this request is done with the key, answered or not.
        let visit = Visit {
            reads: self,
            key,
            together,
        };
        visit.together.read(read).await
    }
    /// Keys with a reader now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.readers.lock().expect("never poisoned").len()
    }
}

/// A request's use of a key's reader; the last one to leave drops it.
struct Visit<'a, K: Eq + Hash, T> {
    reads: &'a KeyedReads<K, T>,
    key: K,
    together: Arc<ReadTogether<T>>,
}

impl<K: Eq + Hash, T> Drop for Visit<'_, K, T> {
    fn drop(&mut self) {
        let mut readers = self.reads.readers.lock().expect("never poisoned");
        // The map's reference and this one: nobody else wants the key. A
        // request taking it now would wait on this lock, and then make a
        // new reader, as it would have read anyway.
        if readers
            .get(&self.key)
            .is_some_and(|kept| Arc::ptr_eq(kept, &self.together))
            && Arc::strong_count(&self.together) == 2
        {
            readers.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    /// A read that returns how many reads ran before it and itself, once
    /// `release` fires.
    async fn counted(reads: &AtomicU32, release: oneshot::Receiver<()>) -> Result<u32, ()> {
        let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
        release.await.map_err(|_| ())?;
        Ok(n)
    }

    #[tokio::test(start_paused = true)]
    async fn requests_arriving_during_a_read_share_the_next_one_and_never_the_running_one() {
        let together = Arc::new(ReadTogether::<u32>::default());
        let reads = Arc::new(AtomicU32::new(0));
        let (release_first, first_released) = oneshot::channel();
        let first = tokio::spawn({
            let (together, reads) = (Arc::clone(&together), Arc::clone(&reads));
            async move {
                *together
                    .read(|| counted(&reads, first_released))
                    .await
                    .unwrap()
            }
        });
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(std::time::Duration::from_millis(1)).await;

        // Ten requests arrive while the first read runs.
        let (release_second, second_released) = oneshot::channel();
        let mut second_released = Some(second_released);
        let mut waiting = Vec::new();
        for _ in 0..10 {
            let (together, reads) = (Arc::clone(&together), Arc::clone(&reads));
            let release = second_released.take();
            waiting.push(tokio::spawn(async move {
                *together
                    .read(|| async move {
                        let release = release.expect("only the first waiter reads");
                        counted(&reads, release).await
                    })
                    .await
                    .unwrap()
            }));
        }
        tokio::task::yield_now().await;
        release_first.send(()).unwrap();
        assert_eq!(first.await.unwrap(), 1);
        release_second.send(()).unwrap();

        for request in waiting {
            assert_eq!(
                request.await.unwrap(),
                2,
                "each waiter gets the second read"
            );
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_is_not_shared_and_the_next_request_reads_again() {
        let together = ReadTogether::<u32>::default();
        let failed: Result<_, &str> = together.read(|| async { Err("down") }).await;
        assert_eq!(failed.unwrap_err(), "down");
        let read = together.read(|| async { Ok::<_, &str>(7) }).await.unwrap();
        assert_eq!(*read, 7);
        tokio::time::advance(std::time::Duration::from_millis(1)).await;
        let again = together.read(|| async { Ok::<_, &str>(8) }).await.unwrap();
        assert_eq!(
            *again, 8,
            "a read that ended before the request is not shared"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_key_shares_only_its_own_reads_and_is_forgotten_when_nobody_wants_it() {
        let reads = KeyedReads::<u32, u32>::new(4);
        let (release, released) = oneshot::channel::<()>();
        let running = AtomicU32::new(0);
        // A read of key 1 is held open; key 2 is read meanwhile, alone.
        let held = reads.read(1, || async {
            running.fetch_add(1, Ordering::SeqCst);
            released.await.map_err(|_| ())?;
            Ok::<_, ()>(10)
        });
        let other = async {
            while running.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
            let two = reads.read(2, || async { Ok::<_, ()>(20) }).await.unwrap();
            release.send(()).unwrap();
            *two
        };
        let (held, other) = tokio::join!(held, other);
        assert_eq!((*held.unwrap(), other), (10, 20));
        assert_eq!(reads.len(), 0, "nothing is kept once no request wants it");
    }

    #[tokio::test]
    async fn keys_wanted_at_once_are_bounded() {
        let reads = Arc::new(KeyedReads::<u32, u32>::new(4));
        let (release, released) = tokio::sync::watch::channel(false);
        let started = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for key in 0..10 {
            let (reads, started) = (Arc::clone(&reads), Arc::clone(&started));
            let mut released = released.clone();
            tasks.push(tokio::spawn(async move {
                let read = reads.read(key, || async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    released.wait_for(|go| *go).await.map_err(|_| ())?;
                    Ok::<_, ()>(key)
                });
                read.await.map(|value| *value)
            }));
        }
        while started.load(Ordering::SeqCst) < 10 {
            tokio::task::yield_now().await;
        }
        assert!(reads.len() <= 4, "{} keys kept", reads.len());
        release.send(true).unwrap();
        for (key, task) in (0..).zip(tasks) {
            assert_eq!(task.await.unwrap(), Ok(key));
        }
        assert_eq!(reads.len(), 0);
    }
}
