//! A [`Sender`] that answers from a script instead of a socket, for tests
//! that step one delivery.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use events::TodoEvent;
use futures::future::BoxFuture;

use super::Sender;
use crate::error::{Error, Result};

/// How the in-memory webhook answers one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx.
    Accept,
    /// Another status, with the `Retry-After` it carried, if any.
    Status(u16, Option<Duration>),
    /// No answer within the attempt's timeout.
    Timeout(Duration),
}

/// Answers attempts in the order scripted (then accepts), and keeps every
/// event it was sent.
#[derive(Debug, Default)]
pub struct InMemory {
    script: Mutex<VecDeque<Answer>>,
    sent: Mutex<Vec<TodoEvent>>,
}

impl InMemory {
    /// A webhook that answers `answers`, one per attempt.
    pub fn answering(answers: impl IntoIterator<Item = Answer>) -> InMemory {
        InMemory {
            script: Mutex::new(answers.into_iter().collect()),
            sent: Mutex::default(),
        }
    }

    /// The events sent so far, in order.
    pub fn sent(&self) -> Vec<TodoEvent> {
        self.sent.lock().unwrap().clone()
    }
}

impl Sender for InMemory {
    fn send<'a>(&'a self, event: &'a TodoEvent) -> BoxFuture<'a, Result<()>> {
        self.sent.lock().unwrap().push(event.clone());
        let answer = self.script.lock().unwrap().pop_front();
        Box::pin(async move {
            match answer.unwrap_or(Answer::Accept) {
                Answer::Accept => Ok(()),
                Answer::Status(status, retry_after) => Err(Error::Status {
                    status,
                    retry_after,
                }),
                Answer::Timeout(after) => Err(Error::Timeout(after)),
            }
        })
    }

    fn format_name(&self) -> &'static str {
        "in-memory"
    }
}
