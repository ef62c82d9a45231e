//! Live updates: one NATS subscription per app instance, fanned out to every
//! open page's event stream (`GET /events`, in `routes::live`).
//!
//! Every change reaches NATS through the outbox relay, and core subscribers
//! see what JetStream stores, so a page hears about changes made through any
//! replica, the JSON API or the cronjobs alike. Each replica subscribes on
//! its own (no queue group): every replica has pages to tell.
//!
//! The fan-out is a bounded `broadcast` channel. Its buffer is shared by all
//! pages, and a page that stops reading falls behind instead of growing a
//! buffer of its own; when it reads again it is told to `refresh` (re-fetch
//! its lists), which loses nothing because a refresh shows the current state.

use std::time::Duration;

use events::{EventType, TodoEvent};
use futures::{Stream, StreamExt, stream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many changes the shared buffer holds before slow pages lag.
pub const CAPACITY: usize = 256;
/// Pause before subscribing again after the subscription ended.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// What an open page is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// A todo was created, changed or deleted.
    Todo {
        event_type: EventType,
        todo_id: Uuid,
    },
    /// Something may have been missed: re-fetch everything shown.
    Refresh,
}

/// The app-wide fan-out. Cheap to clone; every clone feeds the same pages.
#[derive(Clone)]
pub struct LiveUpdates {
    sender: broadcast::Sender<LiveEvent>,
    /// Cancelled at shutdown, which ends every open stream, so that draining
    /// connections does not wait for browsers that would never hang up.
    closed: CancellationToken,
}

impl LiveUpdates {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            closed: CancellationToken::new(),
        }
    }

    /// Tells every open page. Nobody listening is not an error.
    pub fn publish(&self, event: LiveEvent) {
        let _ = self.sender.send(event);
    }

    /// Ends every open stream and refuses new ones.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// How many streams are open now.
    pub fn connections(&self) -> usize {
        self.sender.receiver_count()
    }

    /// The changes from now on, until [`close`](Self::close). Dropping the
    /// stream (the browser went away) unsubscribes it.
    pub fn subscribe(&self) -> impl Stream<Item = LiveEvent> + Send + use<> {
        let receiver = self.sender.subscribe();
        let closed = self.closed.clone();
        stream::unfold((receiver, closed), |(mut receiver, closed)| async move {
            let event = tokio::select! {
                biased;
                () = closed.cancelled() => return None,
                received = receiver.recv() => match received {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a live page fell behind; telling it to refresh");
                        LiveEvent::Refresh
                    }
                    Err(RecvError::Closed) => return None,
                },
            };
            Some((event, (receiver, closed)))
        })
    }
}

/// Feeds `live` from NATS until `shutdown`, then closes it.
///
/// The client retries its connection on its own (also when NATS is down at
/// start-up: the subscription is sent once it connects, and again after
/// every reconnect), so this only resubscribes if the subscription ends.
pub async fn feed_from_nats(
    nats: async_nats::Client,
    live: LiveUpdates,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match nats.subscribe(events::STREAM_SUBJECTS).await {
            Ok(mut subscriber) => loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    message = subscriber.next() => match message {
                        // No page open: nobody to tell, so nothing to
                        // decode (the cost of every change, on every replica).
                        Some(_) if live.connections() == 0 => {}
                        Some(message) => live.publish(decode(&message.payload)),
                        None => {
                            tracing::warn!("the live-update subscription ended; subscribing again");
                            break;
                        }
                    },
                }
            },
            Err(e) => tracing::warn!(error = %e, "could not subscribe for live updates; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
        }
        // Anything may have changed while not subscribed.
        live.publish(LiveEvent::Refresh);
    }
    live.close();
}

/// An event this app version cannot read still means "something changed".
fn decode(payload: &[u8]) -> LiveEvent {
    match TodoEvent::from_json(payload) {
        Ok(event) => LiveEvent::Todo {
            event_type: event.event_type,
            todo_id: event.todo.id,
        },
        Err(e) => {
            tracing::warn!(error = %e, "an event on todos.> could not be decoded; pages will refresh");
            LiveEvent::Refresh
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    fn created() -> LiveEvent {
        LiveEvent::Todo {
            event_type: EventType::Created,
            todo_id: Uuid::new_v4(),
        }
    }

    #[tokio::test]
    async fn every_open_stream_gets_every_change() {
        let live = LiveUpdates::new(8);
        let mut first = pin!(live.subscribe());
        let mut second = pin!(live.subscribe());
        let event = created();

        live.publish(event.clone());

        assert_eq!(first.next().await, Some(event.clone()));
        assert_eq!(second.next().await, Some(event));
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_told_to_refresh_instead_of_buffering() {
        let live = LiveUpdates::new(2);
        let mut slow = pin!(live.subscribe());
        let events: Vec<_> = (0..5).map(|_| created()).collect();

        for event in &events {
            live.publish(event.clone());
        }

        // The three oldest are gone; the page hears "refresh", then what is left.
        assert_eq!(slow.next().await, Some(LiveEvent::Refresh));
        assert_eq!(slow.next().await, Some(events[3].clone()));
        assert_eq!(slow.next().await, Some(events[4].clone()));
    }

    #[tokio::test]
    async fn a_dropped_stream_unsubscribes() {
        let live = LiveUpdates::new(8);
        let stream = live.subscribe();
        assert_eq!(live.connections(), 1);

        drop(stream);

        assert_eq!(live.connections(), 0);
    }

    #[tokio::test]
    async fn closing_ends_every_open_stream() {
        let live = LiveUpdates::new(8);
        let mut stream = pin!(live.subscribe());
        live.publish(created());

        live.close();

        // Closing wins over pending changes: shutdown must not wait for them.
        assert_eq!(stream.next().await, None);
    }

    #[test]
    fn an_unreadable_event_means_refresh() {
        assert_eq!(decode(b"not json"), LiveEvent::Refresh);
    }
}
