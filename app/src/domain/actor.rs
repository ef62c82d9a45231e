//! Who made a change: a signed-in person, an API token, or no one in
//! particular (`AUTH=off`).
//!
//! Representation: an enum whose variants hold already-parsed parts, so an
//! [`Actor`] in hand is one that may be stored and shown. A person is kept
//! by both the OpenID provider's `sub` (stable and unique per provider: what
//! identifies them) and a display name (what people read; it can change and
//! two people can share it), because neither does the other's job. Outside
//! the app (events, the `created_by`/`updated_by` columns) it becomes the
//! event contract's [`events::Actor`], one JSON shape for both, so a row
//! and its event say the same thing the same way.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::TokenName;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Signed in with OpenID Connect.
    Person(Person),
    /// A JSON API client, by its token's name.
    Token(TokenName),
    /// Nobody signed in: page writes with `AUTH=off`.
    Anonymous,
}

/// A signed-in person, from their ID token's claims. Read back (from the
/// session cookie) through [`Person::parse`] like any other input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PersonClaims")]
pub struct Person {
    subject: String,
    name: String,
}

/// A [`Person`]'s two claims as stored, before they are parsed.
#[derive(Deserialize)]
struct PersonClaims {
    subject: String,
    name: String,
}

impl TryFrom<PersonClaims> for Person {
    type Error = PersonError;

    fn try_from(claims: PersonClaims) -> Result<Person, PersonError> {
        Person::parse(&claims.subject, &claims.name)
    }
}

/// Why claims are not a [`Person`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    #[error(
        "the subject must be 1 to {} characters without control characters",
        Person::MAX_SUBJECT_CHARS
    )]
    Subject,
    #[error(
        "the name must be 1 to {} characters without control characters",
        Person::MAX_NAME_CHARS
    )]
    Name,
}

impl Person {
    /// OpenID Connect Core 1.0 §2: `sub` "MUST NOT exceed 255 ASCII
    /// characters in length".
    pub const MAX_SUBJECT_CHARS: usize = 255;
    /// Room for any real name; a name is shown in chat messages, so it is
    /// bounded like the todo text it stands beside.
    pub const MAX_NAME_CHARS: usize = 100;

    /// The subject as given (it is an identifier: never trimmed or changed),
    /// and the name trimmed. Control characters are refused in both: a
    /// newline or an escape sequence in a name could forge a line of a chat
    /// message or a log.
    pub fn parse(subject: &str, name: &str) -> Result<Person, PersonError> {
        if !within(subject, Self::MAX_SUBJECT_CHARS) {
            return Err(PersonError::Subject);
        }
        let name = name.trim();
        if !within(name, Self::MAX_NAME_CHARS) {
            return Err(PersonError::Name);
        }
        Ok(Person {
            subject: subject.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// 1 to `max` characters, none of them a control character.
fn within(text: &str, max: usize) -> bool {
    let count = text.chars().count();
    (1..=max).contains(&count) && !text.chars().any(char::is_control)
}

impl Actor {
    /// The actor as events and the `created_by`/`updated_by` columns carry it.
    pub fn to_event(&self) -> events::Actor {
        match self {
            Actor::Person(person) => events::Actor::Person {
                subject: person.subject.clone(),
                name: person.name.clone(),
            },
            Actor::Token(name) => events::Actor::Token {
                name: name.as_str().to_owned(),
            },
            Actor::Anonymous => events::Actor::Anonymous,
        }
    }

    /// [`Self::to_event`] as JSON text, for a `jsonb` column.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_event()).expect("an actor of strings always serialises")
    }
}

impl fmt::Display for Actor {
    /// For logs: the subject or token name, never a display name (user
    /// text is not logged at info).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person(person) => write!(f, "person:{}", person.subject),
            Actor::Token(name) => write!(f, "token:{name}"),
            Actor::Anonymous => f.write_str("anonymous"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_keeps_the_subject_as_given_and_the_name_trimmed() {
        let person = Person::parse(" 24828 ", "  Ada Lovelace ").unwrap();
        assert_eq!(person.subject(), " 24828 ");
        assert_eq!(person.name(), "Ada Lovelace");
    }

    #[test]
    fn subjects_and_names_are_bounded() {
        let longest_subject = "s".repeat(Person::MAX_SUBJECT_CHARS);
        let longest_name = "é".repeat(Person::MAX_NAME_CHARS);
        assert!(Person::parse(&longest_subject, &longest_name).is_ok());
        assert_eq!(
            Person::parse(&format!("{longest_subject}s"), "Ada"),
            Err(PersonError::Subject)
        );
        assert_eq!(
            Person::parse("1", &format!("{longest_name}é")),
            Err(PersonError::Name)
        );
        assert_eq!(Person::parse("", "Ada"), Err(PersonError::Subject));
        assert_eq!(Person::parse("1", "   "), Err(PersonError::Name));
    }

    #[test]
    fn control_characters_are_refused() {
        for name in [
            "Ada\nBob added: x",
            "Ada\u{1b}[31m",
            "Ada\u{0}",
            "A\u{85}da",
        ] {
            assert_eq!(Person::parse("1", name), Err(PersonError::Name), "{name:?}");
        }
        assert_eq!(Person::parse("1\r\n", "Ada"), Err(PersonError::Subject));
    }

    #[test]
    fn becomes_the_event_contract_shape() {
        let person = Actor::Person(Person::parse("248289761001", "Ada Lovelace").unwrap());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&person.to_json()).unwrap(),
            serde_json::json!({"kind": "person", "subject": "248289761001", "name": "Ada Lovelace"})
        );
        assert_eq!(Actor::Anonymous.to_json(), r#"{"kind":"anonymous"}"#);
        assert_eq!(person.to_string(), "person:248289761001");
    }
}
