//! The todo event contract.
//!
//! Every change to a todo is published once to the JetStream stream [`STREAM`]
//! as a JSON [`TodoEvent`]. The app writes events, the broadcaster and the
//! browsers' live updates read them; this crate is the only place the shape is
//! defined, so both sides agree by construction.
//!
//! Compatibility: fields are only ever added. A change that removes or
//! re-types a field bumps [`SCHEMA_VERSION`], and consumers reject versions
//! they do not know rather than misreading them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The version of the event shape this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The JetStream stream that holds every todo event.
pub const STREAM: &str = "TODOS";

/// The subjects the [`STREAM`] captures.
pub const STREAM_SUBJECTS: &str = "todos.>";

/// How long JetStream remembers a `Nats-Msg-Id` to drop a republished event.
/// The outbox relay republishes only rows it could not confirm, within seconds.
pub const STREAM_DUPLICATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

/// The variable that sets the [`DuplicateWindow`] of [`STREAM`] for every
/// service that creates it (the app and the broadcaster must agree, or each
/// would bring the stream back to its own value).
pub const DUPLICATE_WINDOW_VARIABLE: &str = "NATS_DUPLICATE_WINDOW";

/// How long the stream keeps events: long enough for a consumer that was down
/// over a weekend to catch up, short enough to bound the disk.
pub const STREAM_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// The variable that sets [`StreamReplicas`] for every service.
pub const STREAM_REPLICAS_VARIABLE: &str = "NATS_STREAM_REPLICAS";

/// How many servers keep a copy of each of Docket's streams (the events,
/// the dead letters, the broadcaster's bucket): 1 on a single nats-server,
/// 3 on a three-node cluster, so losing a node loses no acknowledged event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamReplicas(u8);

impl StreamReplicas {
    /// One copy: a single server (local runs, tests, staging).
    pub const ONE: StreamReplicas = StreamReplicas(1);

    /// `1` to `5`, as JetStream allows; 3 is what a three-node cluster
    /// should use (a majority survives one node's loss).
    pub fn parse(raw: &str) -> Result<StreamReplicas, String> {
        match raw.trim().parse::<u8>() {
            Ok(n @ 1..=5) => Ok(StreamReplicas(n)),
            _ => Err(format!(
                "expected a replica count from 1 to 5 (3 on a three-node cluster), got `{raw}`"
            )),
        }
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// How long [`STREAM`] drops a second publish of an event id. A republish
/// later than this is stored twice; the broadcaster's delivered-id bucket
/// still sends it once. Only the fault suite shortens it, to show that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateWindow(std::time::Duration);

impl DuplicateWindow {
    /// [`STREAM_DUPLICATE_WINDOW`].
    pub const DEFAULT: DuplicateWindow = DuplicateWindow(STREAM_DUPLICATE_WINDOW);

    /// From 100 ms (the least JetStream accepts) to the stream's max age.
    pub fn new(window: std::time::Duration) -> Result<DuplicateWindow, String> {
        if window < std::time::Duration::from_millis(100) || window > STREAM_MAX_AGE {
            return Err(format!(
                "expected a duplicate window from 100ms to the stream's max age ({}d)",
                STREAM_MAX_AGE.as_secs() / 86_400
            ));
        }
        Ok(DuplicateWindow(window))
    }

    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

/// The settings of [`STREAM`] a deployment chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TodosStream {
    pub replicas: StreamReplicas,
    pub duplicate_window: DuplicateWindow,
}

impl TodosStream {
    /// One nats-server, the default window: local runs, tests, staging.
    pub const SINGLE_NODE: TodosStream = TodosStream {
        replicas: StreamReplicas::ONE,
        duplicate_window: DuplicateWindow::DEFAULT,
    };
}

/// The [`STREAM`] as whichever service starts first creates it, so that
/// the app and the broadcaster never make it differently.
pub fn stream_config(settings: TodosStream) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![STREAM_SUBJECTS.to_owned()],
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: settings.duplicate_window.get(),
        max_age: STREAM_MAX_AGE,
        num_replicas: settings.replicas.get(),
        ..Default::default()
    }
}

/// The header JetStream uses to drop a message it has already stored.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// What happened to the todo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "todo.created")]
    Created,
    #[serde(rename = "todo.updated")]
    Updated,
    #[serde(rename = "todo.deleted")]
    Deleted,
}

impl EventType {
    /// The NATS subject an event of this type is published on.
    pub fn subject(self) -> &'static str {
        match self {
            EventType::Created => "todos.created",
            EventType::Updated => "todos.updated",
            EventType::Deleted => "todos.deleted",
        }
    }

    /// The name used in the event's `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "todo.created",
            EventType::Updated => "todo.updated",
            EventType::Deleted => "todo.deleted",
        }
    }
}

/// A field of a todo that an update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TodoField {
    Text,
    Done,
}

/// The todo as it was right after the change (for a deletion: right before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoSnapshot {
    pub id: Uuid,
    pub text: String,
    pub done: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Who made a change, as events and the app's `created_by`/`updated_by`
/// columns carry it: `{"kind": "person", "subject": "…", "name": "…"}`,
/// `{"kind": "token", "name": "…"}` or `{"kind": "anonymous"}`.
///
/// Tagged by `kind` so a reader can tell the three apart without guessing
/// from which fields are present, and so a kind added later is one more
/// tag: a reader that does not know it reads it as [`Actor::Unknown`]
/// instead of refusing the whole event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// Someone signed in with OpenID Connect: the provider's `sub` (stable,
    /// unique per provider) and the name to show (may change, not unique).
    Person { subject: String, name: String },
    /// A JSON API client, by its token's name (never the token).
    Token { name: String },
    /// No one signed in (`AUTH=off`).
    Anonymous,
    /// A kind this build does not know. Written by no one.
    #[serde(other)]
    Unknown,
}

impl Actor {
    /// The name people read in a message, if there is someone to name.
    pub fn display_name(&self) -> Option<String> {
        match self {
            Actor::Person { name, .. } => Some(name.clone()),
            Actor::Token { name } => Some(format!("API token {name}")),
            Actor::Anonymous | Actor::Unknown => None,
        }
    }
}

/// One change to one todo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoEvent {
    /// Unique per event; the idempotency key everywhere (`Nats-Msg-Id`, `webhook-id`).
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub schema_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub todo: TodoSnapshot,
    /// For `todo.updated`: which fields changed value (empty if none did).
    /// Absent for other types. Added in schema version 1 without a bump: a
    /// reader that does not know it ignores it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<TodoField>,
    /// Who made the change. Added in schema version 1 without a bump: a
    /// reader that does not know it ignores it; absent in events written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
}

/// Why a payload is not a [`TodoEvent`] this crate can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed todo event: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("todo event schema version {0} is not supported (this build reads {SCHEMA_VERSION})")]
    UnknownSchemaVersion(u32),
}

impl TodoEvent {
    /// The same event, saying who made the change.
    pub fn by(self, actor: Actor) -> Self {
        Self {
            actor: Some(actor),
            ..self
        }
    }

    /// The subject this event is published on.
    pub fn subject(&self) -> &'static str {
        self.event_type.subject()
    }

    /// The JSON payload as published.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TodoEvent always serialises")
    }

    /// Reads a published payload, refusing schema versions this build does not know.
    pub fn from_json(payload: &[u8]) -> Result<Self, DecodeError> {
        let event: TodoEvent = serde_json::from_slice(payload).map_err(DecodeError::Malformed)?;
        if event.schema_version != SCHEMA_VERSION {
            return Err(DecodeError::UnknownSchemaVersion(event.schema_version));
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn stream_replicas_are_one_to_five() {
        assert_eq!(StreamReplicas::parse("3").unwrap().get(), 3);
        assert_eq!(StreamReplicas::parse(" 1 ").unwrap(), StreamReplicas::ONE);
        for bad in ["0", "6", "three", "", "-1"] {
            let error = StreamReplicas::parse(bad).unwrap_err();
            assert!(error.contains("from 1 to 5"), "{bad}: {error}");
        }
        let settings = TodosStream {
            replicas: StreamReplicas::parse("3").unwrap(),
            ..TodosStream::SINGLE_NODE
        };
        assert_eq!(stream_config(settings).num_replicas, 3);
    }

    #[test]
    fn duplicate_windows_are_what_jetstream_accepts() {
        use std::time::Duration;
        assert_eq!(
            stream_config(TodosStream::SINGLE_NODE).duplicate_window,
            STREAM_DUPLICATE_WINDOW
        );
        assert!(DuplicateWindow::new(Duration::from_secs(5)).is_ok());
        for bad in [
            Duration::from_millis(99),
            STREAM_MAX_AGE + Duration::from_secs(1),
        ] {
            assert!(DuplicateWindow::new(bad).is_err(), "{bad:?}");
        }
    }

    fn sample() -> TodoEvent {
        TodoEvent {
            id: Uuid::parse_str("0192f0c4-0000-7000-8000-000000000001").unwrap(),
            event_type: EventType::Created,
            schema_version: SCHEMA_VERSION,
            occurred_at: datetime!(2026-11-22 10:00:00 UTC),
            todo: TodoSnapshot {
                id: Uuid::parse_str("0192f0c4-0000-7000-8000-000000000002").unwrap(),
                text: "Buy <milk>".into(),
                done: false,
                created_at: datetime!(2026-11-22 10:00:00 UTC),
                updated_at: datetime!(2026-11-22 10:00:00 UTC),
            },
            changed: Vec::new(),
            actor: None,
        }
    }

    #[test]
    fn serialises_to_the_documented_contract() {
        let json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "0192f0c4-0000-7000-8000-000000000001",
                "type": "todo.created",
                "schema_version": 1,
                "occurred_at": "2026-11-22T10:00:00Z",
                "todo": {
                    "id": "0192f0c4-0000-7000-8000-000000000002",
                    "text": "Buy <milk>",
                    "done": false,
                    "created_at": "2026-11-22T10:00:00Z",
                    "updated_at": "2026-11-22T10:00:00Z"
                }
            })
        );
    }

    #[test]
    fn round_trips_through_json() {
        let event = sample();
        assert_eq!(TodoEvent::from_json(&event.to_json()).unwrap(), event);
    }

    #[test]
    fn refuses_an_unknown_schema_version() {
        let mut event = sample();
        event.schema_version = 2;
        let err = TodoEvent::from_json(&event.to_json()).unwrap_err();
        assert!(matches!(err, DecodeError::UnknownSchemaVersion(2)), "{err}");
    }

    #[test]
    fn refuses_a_malformed_payload() {
        let err = TodoEvent::from_json(br#"{"id": 1}"#).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(_)), "{err}");
    }

    #[test]
    fn an_update_names_the_changed_fields() {
        let mut event = sample();
        event.event_type = EventType::Updated;
        event.changed = vec![TodoField::Done];
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(json["changed"], serde_json::json!(["done"]));
        assert_eq!(TodoEvent::from_json(&event.to_json()).unwrap(), event);
    }

    #[test]
    fn an_event_without_changed_still_reads() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json.as_object_mut().unwrap().remove("changed");
        let event = TodoEvent::from_json(json.to_string().as_bytes()).unwrap();
        assert!(event.changed.is_empty());
    }

    #[test]
    fn an_actor_is_tagged_by_kind() {
        let person = sample().by(Actor::Person {
            subject: "248289761001".into(),
            name: "Ada Lovelace".into(),
        });
        let json: serde_json::Value = serde_json::from_slice(&person.to_json()).unwrap();
        assert_eq!(
            json["actor"],
            serde_json::json!({"kind": "person", "subject": "248289761001", "name": "Ada Lovelace"})
        );
        assert_eq!(TodoEvent::from_json(&person.to_json()).unwrap(), person);

        let token = sample().by(Actor::Token {
            name: "ci-bot".into(),
        });
        let json: serde_json::Value = serde_json::from_slice(&token.to_json()).unwrap();
        assert_eq!(
            json["actor"],
            serde_json::json!({"kind": "token", "name": "ci-bot"})
        );
        let anonymous = sample().by(Actor::Anonymous);
        let json: serde_json::Value = serde_json::from_slice(&anonymous.to_json()).unwrap();
        assert_eq!(json["actor"], serde_json::json!({"kind": "anonymous"}));
    }

    /// `TodoEvent` as schema version 1 was before `actor`: what a reader
    /// built then holds. Like it, it does not deny unknown fields.
    #[derive(Debug, Deserialize)]
    struct ReaderWithoutActor {
        id: Uuid,
        #[serde(rename = "type")]
        event_type: EventType,
        schema_version: u32,
        #[serde(with = "time::serde::rfc3339")]
        occurred_at: OffsetDateTime,
        todo: TodoSnapshot,
        #[serde(default)]
        changed: Vec<TodoField>,
    }

    #[test]
    fn a_reader_from_before_actor_reads_an_event_with_one() {
        let event = sample().by(Actor::Person {
            subject: "248289761001".into(),
            name: "Ada Lovelace".into(),
        });
        let old: ReaderWithoutActor = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(old.id, event.id);
        assert_eq!(old.event_type, event.event_type);
        assert_eq!(old.schema_version, SCHEMA_VERSION);
        assert_eq!(old.occurred_at, event.occurred_at);
        assert_eq!(old.todo, event.todo);
        assert!(old.changed.is_empty());
    }

    #[test]
    fn an_event_without_actor_still_reads() {
        let json = serde_json::to_value(sample()).unwrap();
        assert!(json.get("actor").is_none(), "{json}");
        let event = TodoEvent::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(event.actor, None);
    }

    #[test]
    fn an_actor_of_an_unknown_kind_does_not_refuse_the_event() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json["actor"] = serde_json::json!({"kind": "robot", "serial": 7});
        let event = TodoEvent::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(event.actor, Some(Actor::Unknown));
        assert_eq!(event.actor.unwrap().display_name(), None);
    }

    #[test]
    fn subjects_match_types() {
        assert_eq!(EventType::Created.subject(), "todos.created");
        assert_eq!(EventType::Updated.subject(), "todos.updated");
        assert_eq!(EventType::Deleted.subject(), "todos.deleted");
        assert_eq!(EventType::Deleted.as_str(), "todo.deleted");
    }
}
