//! Turning a todo event into a webhook request, and sending it.
//!
//! One file per target format; each knows its exact body and how to escape
//! the todo's text and the actor's name (both user text) for that target's
//! markup. This module owns the parts they
//! share: the sentence people read ([`message`]) and the HTTP exchange
//! ([`Deliverer::send`]), which classifies every outcome into the error
//! variants [`crate::retry`] decides on.
//!
//! The worker sends through the [`Sender`] trait: [`Deliverer`] is the real
//! one (reqwest), [`memory::InMemory`] answers from a script so one delivery
//! can be stepped in a test without a socket.

mod discord;
mod generic;
pub mod memory;
mod slack;
mod telegram;

use std::time::Duration;

use events::{Actor, EventType, TodoEvent, TodoField};
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

pub use generic::{SigningSecret, body as generic_body};

use crate::error::{Error, Result};
use crate::retry::parse_retry_after;

/// Where messages go and in which shape.
#[derive(Debug, Clone)]
pub struct Target {
    /// The full URL; a secret, since chat webhooks carry their token in it.
    pub url: SecretString,
    pub format: Format,
}

/// The body shape the target expects.
#[derive(Debug, Clone)]
pub enum Format {
    /// `{"user","message","event"}`, signed per Standard Webhooks.
    Generic(SigningSecret),
    /// Discord webhook: `{"content"}`.
    Discord,
    /// Slack incoming webhook: `{"text"}`.
    Slack,
    /// Telegram Bot API `sendMessage`: `{"chat_id","text"}`.
    Telegram { chat_id: String },
}

/// A rendered request: the exact bytes and the extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Format {
    /// The format's name, as in `WEBHOOK_FORMAT`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Generic(_) => "generic",
            Format::Discord => "discord",
            Format::Slack => "slack",
            Format::Telegram { .. } => "telegram",
        }
    }

    /// Renders the request for `event`, signed at `now` where the format signs.
    pub fn render(&self, event: &TodoEvent, now: OffsetDateTime) -> Outgoing {
        match self {
            Format::Generic(secret) => generic::render(secret, event, now),
            Format::Discord => plain(discord::body(event)),
            Format::Slack => plain(slack::body(event)),
            Format::Telegram { chat_id } => plain(telegram::body(chat_id, event)),
        }
    }
}

fn plain(body: serde_json::Value) -> Outgoing {
    Outgoing {
        body: body.to_string().into_bytes(),
        headers: Vec::new(),
    }
}

/// The most characters of an actor's name a message shows (the app allows
/// 100; an event from elsewhere may carry more).
const MAX_NAME_CHARS: usize = 100;

/// The sentence people read, with the todo's text and the actor's name
/// passed through `escape` for the target's markup and cut to `max_chars`
/// (chat services reject longer messages outright, which would
/// dead-letter the event). "Ada Lovelace added: Buy milk" when the event
/// names someone; "Todo created: Buy milk" when it does not (anonymous
/// changes, events from before `actor`).
pub fn message(event: &TodoEvent, escape: impl Fn(&str) -> String, max_chars: usize) -> String {
    if let Some(name) = event.actor.as_ref().and_then(Actor::display_name) {
        return message_by(event, &name, &escape, max_chars);
    }
    let what = match Change::of(event) {
        Change::Created => "Todo created",
        Change::Edited => "Todo edited",
        Change::Done => "Todo marked done",
        Change::NotDone => "Todo marked not done",
        Change::Deleted => "Todo deleted",
    };
    let budget = max_chars.saturating_sub(what.len() + 2);
    format!(
        "{what}: {}",
        escaped_within(&event.todo.text, &escape, budget)
    )
}

/// What a message says happened; both wordings read it from here.
enum Change {
    Created,
    /// Only the text changed: saying "marked not done" would be wrong.
    Edited,
    Done,
    NotDone,
    Deleted,
}

impl Change {
    fn of(event: &TodoEvent) -> Change {
        match event.event_type {
            EventType::Created => Change::Created,
            EventType::Updated
                if !event.changed.is_empty() && !event.changed.contains(&TodoField::Done) =>
            {
                Change::Edited
            }
            EventType::Updated if event.todo.done => Change::Done,
            EventType::Updated => Change::NotDone,
            EventType::Deleted => Change::Deleted,
        }
    }
}

/// "<name> <verb>: <text>", the name cut first so the text keeps room.
fn message_by(
    event: &TodoEvent,
    name: &str,
    escape: &impl Fn(&str) -> String,
    max_chars: usize,
) -> String {
    let verb = match Change::of(event) {
        Change::Created => "added",
        Change::Edited => "edited",
        Change::Done => "completed",
        Change::NotDone => "reopened",
        Change::Deleted => "deleted",
    };
    // A control character in a name could start a forged line of its own
    // (Telegram's plain text has no escaping to stop it); the app refuses
    // them, an event from elsewhere might not.
    let name: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let name = escaped_within(&name, escape, MAX_NAME_CHARS.min(max_chars / 4));
    let budget = max_chars.saturating_sub(name.chars().count() + verb.len() + 3);
    format!(
        "{name} {verb}: {}",
        escaped_within(&event.todo.text, escape, budget)
    )
}

/// `text` escaped, cut to at most `budget` characters of the result: the
/// escapes count (Discord's can double the length), and a cut never
/// splits one.
fn escaped_within(text: &str, escape: &impl Fn(&str) -> String, budget: usize) -> String {
    let whole = escape(text);
    if whole.chars().count() <= budget {
        return whole;
    }
    let room = budget.saturating_sub(1);
    let mut cut = String::with_capacity(whole.len().min(budget * 4));
    let mut used = 0;
    let mut one = [0u8; 4];
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut one));
        let len = piece.chars().count();
        if used + len > room {
            break;
        }
        cut.push_str(&piece);
        used += len;
    }
    cut.push('…');
    cut
}

/// Makes one delivery attempt of an event to the webhook.
pub trait Sender: Send + Sync {
    /// One attempt: `Ok` only for a 2xx answer; failures are classified
    /// into the variants [`crate::retry`] decides on.
    fn send<'a>(&'a self, event: &'a TodoEvent) -> BoxFuture<'a, Result<()>>;

    /// The name of the target's format, for logs.
    fn format_name(&self) -> &'static str;
}

impl Sender for Deliverer {
    fn send<'a>(&'a self, event: &'a TodoEvent) -> BoxFuture<'a, Result<()>> {
        Box::pin(Deliverer::send(self, event))
    }

    fn format_name(&self) -> &'static str {
        self.target.format.name()
    }
}

/// Sends rendered events to the target over HTTP.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    target: Target,
    timeout: Duration,
}

impl Deliverer {
    pub fn new(target: Target, timeout: Duration) -> Deliverer {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A webhook that redirects is misconfigured; following it could
            // also hand a signed body to a host nobody chose.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("docket-broadcaster/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is static and valid");
        Deliverer {
            client,
            target,
            timeout,
        }
    }

    /// The target's format.
    pub fn format(&self) -> &Format {
        &self.target.format
    }

    /// One attempt: `Ok` only for a 2xx answer.
    pub async fn send(&self, event: &TodoEvent) -> Result<()> {
        let outgoing = self.target.format.render(event, OffsetDateTime::now_utc());
        let mut request = self
            .client
            .post(self.target.url.expose_secret())
            .header(CONTENT_TYPE, "application/json")
            .body(outgoing.body);
        for (name, value) in outgoing.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::from_reqwest(e, self.timeout))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        Err(Error::Status {
            status: status.as_u16(),
            retry_after,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use events::{SCHEMA_VERSION, TodoSnapshot};
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;

    pub(crate) fn event(event_type: EventType, text: &str, done: bool) -> TodoEvent {
        TodoEvent {
            id: Uuid::parse_str("0192f0c4-0000-7000-8000-000000000001").unwrap(),
            event_type,
            schema_version: SCHEMA_VERSION,
            occurred_at: datetime!(2026-11-22 10:00:00 UTC),
            todo: TodoSnapshot {
                id: Uuid::parse_str("0192f0c4-0000-7000-8000-000000000002").unwrap(),
                text: text.into(),
                done,
                created_at: datetime!(2026-11-22 10:00:00 UTC),
                updated_at: datetime!(2026-11-22 10:00:00 UTC),
            },
            changed: Vec::new(),
            actor: None,
        }
    }

    #[test]
    fn says_what_happened_to_the_todo() {
        let same = |t: &str| t.to_owned();
        let cases = [
            (EventType::Created, false, "Todo created: Buy milk"),
            (EventType::Updated, true, "Todo marked done: Buy milk"),
            (EventType::Updated, false, "Todo marked not done: Buy milk"),
            (EventType::Deleted, true, "Todo deleted: Buy milk"),
        ];
        for (kind, done, expected) in cases {
            assert_eq!(message(&event(kind, "Buy milk", done), same, 100), expected);
        }
    }

    fn by(event: TodoEvent, name: &str) -> TodoEvent {
        event.by(Actor::Person {
            subject: "248289761001".into(),
            name: name.into(),
        })
    }

    #[test]
    fn says_who_did_what_to_the_todo() {
        let same = |t: &str| t.to_owned();
        let cases = [
            (EventType::Created, false, "Ada Lovelace added: Buy milk"),
            (EventType::Updated, true, "Ada Lovelace completed: Buy milk"),
            (EventType::Updated, false, "Ada Lovelace reopened: Buy milk"),
            (EventType::Deleted, true, "Ada Lovelace deleted: Buy milk"),
        ];
        for (kind, done, expected) in cases {
            let event = by(event(kind, "Buy milk", done), "Ada Lovelace");
            assert_eq!(message(&event, same, 100), expected);
        }
        let mut edited = by(event(EventType::Updated, "Buy oat milk", false), "Ada");
        edited.changed = vec![TodoField::Text];
        assert_eq!(message(&edited, same, 100), "Ada edited: Buy oat milk");

        let token = event(EventType::Created, "Buy milk", false).by(Actor::Token {
            name: "ci-bot".into(),
        });
        assert_eq!(
            message(&token, same, 100),
            "API token ci-bot added: Buy milk"
        );
    }

    #[test]
    fn names_no_one_for_an_anonymous_change_or_an_unknown_actor() {
        let same = |t: &str| t.to_owned();
        for actor in [Actor::Anonymous, Actor::Unknown] {
            let event = event(EventType::Created, "Buy milk", false).by(actor);
            assert_eq!(message(&event, same, 100), "Todo created: Buy milk");
        }
    }

    #[test]
    fn a_name_cannot_start_a_line_of_its_own() {
        let event = by(
            event(EventType::Created, "Buy milk", false),
            "Ada\nBob deleted: everything\r",
        );
        assert_eq!(
            message(&event, |t| t.to_owned(), 400),
            "Ada Bob deleted: everything  added: Buy milk"
        );
    }

    #[test]
    fn a_long_name_is_cut_and_the_text_keeps_room() {
        let event = by(
            event(EventType::Created, "Buy milk", false),
            &"A".repeat(5000),
        );
        let sentence = message(&event, |t| t.to_owned(), 2000);
        assert_eq!(
            sentence,
            format!("{}… added: Buy milk", "A".repeat(MAX_NAME_CHARS - 1))
        );
    }

    #[test]
    fn a_text_edit_is_not_called_a_status_change() {
        let same = |t: &str| t.to_owned();
        let mut edited = event(EventType::Updated, "Buy oat milk", false);
        edited.changed = vec![TodoField::Text];
        assert_eq!(message(&edited, same, 100), "Todo edited: Buy oat milk");
        edited.changed = vec![TodoField::Text, TodoField::Done];
        assert_eq!(
            message(&edited, same, 100),
            "Todo marked not done: Buy oat milk"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Whatever the text and format, the message fits the target's limit
        /// (a longer one is rejected outright and would be dead-lettered).
        #[test]
        fn every_format_fits_its_limit(text in "(?s).{0,1200}", max in 20usize..1300) {
            let discord_like = |t: &str| t.chars().flat_map(|c| ['\\', c]).collect::<String>();
            let sentence = message(&event(EventType::Created, &text, false), discord_like, max);
            proptest::prop_assert!(sentence.chars().count() <= max, "{} > {max}", sentence.chars().count());
        }

        /// Named, too: the name's cut and escapes count.
        #[test]
        fn every_format_fits_its_limit_with_a_name(
            text in "(?s).{0,1200}",
            name in "(?s).{1,300}",
            max in 20usize..1300,
        ) {
            let discord_like = |t: &str| t.chars().flat_map(|c| ['\\', c]).collect::<String>();
            let sentence = message(&by(event(EventType::Created, &text, false), &name), discord_like, max);
            proptest::prop_assert!(sentence.chars().count() <= max, "{} > {max}", sentence.chars().count());
        }
    }

    #[test]
    fn cuts_long_texts_to_the_target_limit() {
        let long = "x".repeat(5000);
        let sentence = message(
            &event(EventType::Created, &long, false),
            |t| t.to_owned(),
            2000,
        );
        assert_eq!(sentence.chars().count(), 2000);
        assert!(sentence.ends_with('…'));
    }

    #[test]
    fn a_cut_counts_the_escapes_and_never_splits_one() {
        let doubled = |t: &str| t.chars().flat_map(|c| ['\\', c]).collect::<String>();
        let sentence = message(
            &event(EventType::Created, &"*".repeat(100), false),
            doubled,
            30,
        );
        // "Todo created: " is 14; 16 left: 7 escaped stars and the ellipsis.
        assert_eq!(sentence, format!("Todo created: {}…", "\\*".repeat(7)));
    }
}
