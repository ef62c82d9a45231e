//! Streams as this build defines them: created when missing, brought to
//! this build's settings when they drifted, or refused by name when
//! JetStream cannot change what differs. No silent drift: a stream made
//! by an older build, or by hand, with another `max_age` or replica count
//! is updated (and the change logged); one with another storage type or
//! retention policy stops the service with the difference named.

use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};
use async_nats::jetstream::{self, stream};

/// Why a stream could not be made to match.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(
        "stream {stream} exists with settings JetStream cannot change: {differences}; delete it (after draining what it holds) or change the configuration back"
    )]
    Immutable { stream: String, differences: String },
    #[error("{action} stream {stream}: {reason}")]
    Nats {
        action: &'static str,
        stream: String,
        reason: String,
    },
}

/// What [`ensure_stream`] did.
#[derive(Debug)]
pub struct Ensured {
    pub stream: stream::Stream,
    /// The settings it changed, as `name: was → now`; empty when it created
    /// the stream or found it as wanted.
    pub updated: Vec<String>,
}

/// Makes the stream `wanted.name` exist with `wanted`'s settings.
///
/// Compares only the settings a Docket stream sets (those that are not at
/// their default in `wanted`, plus the replica count), since the server
/// reports its own values for the rest.
pub async fn ensure_stream(
    js: &jetstream::Context,
    wanted: stream::Config,
) -> Result<Ensured, StreamError> {
    let name = wanted.name.clone();
    let nats_error = |action: &'static str| {
        let stream = name.clone();
        move |e: &dyn std::fmt::Display| StreamError::Nats {
            action,
            stream: stream.clone(),
            reason: e.to_string(),
        }
    };
    let mut existing = match js.get_stream(&name).await {
        Ok(stream) => stream,
        Err(get_error) if is_not_found(&get_error) => {
            // Missing: create it; if another replica created it meanwhile,
            // the create fails and we read it.
            match js.create_stream(wanted.clone()).await {
                Ok(stream) => {
                    return Ok(Ensured {
                        stream,
                        updated: Vec::new(),
                    });
                }
                Err(create_error) => js
                    .get_stream(&name)
                    .await
                    .map_err(|_| nats_error("creating")(&create_error))?,
            }
        }
        Err(e) => return Err(nats_error("reading")(&e)),
    };
    let actual = existing
        .info()
        .await
        .map_err(|e| nats_error("reading")(&e))?
        .config
        .clone();
    let differences = differences(&wanted, &actual);
    let immutable: Vec<&Difference> = differences.iter().filter(|d| !d.mutable).collect();
    if !immutable.is_empty() {
        return Err(StreamError::Immutable {
            stream: name,
            differences: immutable
                .iter()
                .map(|d| d.describe())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if differences.is_empty() {
        return Ok(Ensured {
            stream: existing,
            updated: Vec::new(),
        });
    }
    js.update_stream(wanted)
        .await
        .map_err(|e| nats_error("updating")(&e))?;
    let updated: Vec<String> = differences.iter().map(Difference::describe).collect();
    tracing::warn!(stream = %name, changes = %updated.join(", "), "updated the stream to this build's settings");
    let stream = js
        .get_stream(&name)
        .await
        .map_err(|e| nats_error("reading")(&e))?;
    Ok(Ensured { stream, updated })
}

fn is_not_found(error: &GetStreamError) -> bool {
    matches!(
        error.kind(),
        GetStreamErrorKind::JetStream(ref e) if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// One setting that differs.
#[derive(Debug, PartialEq, Eq)]
struct Difference {
    setting: &'static str,
    was: String,
    wanted: String,
    /// Whether JetStream lets an update change it.
    mutable: bool,
}

impl Difference {
    fn describe(&self) -> String {
        format!("{}: {} → {}", self.setting, self.was, self.wanted)
    }
}

/// The settings of `wanted` that a Docket stream sets and `actual` has
/// otherwise.
fn differences(wanted: &stream::Config, actual: &stream::Config) -> Vec<Difference> {
    let default = stream::Config::default();
    let mut found = Vec::new();
    let mut compare =
        |setting: &'static str, mutable: bool, wanted: String, was: String, set: bool| {
            if set && wanted != was {
                found.push(Difference {
                    setting,
                    was,
                    wanted,
                    mutable,
                });
            }
        };
    compare(
        "subjects",
        true,
        format!("{:?}", wanted.subjects),
        format!("{:?}", actual.subjects),
        wanted.subjects != default.subjects,
    );
    compare(
        "storage",
        false,
        format!("{:?}", wanted.storage),
        format!("{:?}", actual.storage),
        true,
    );
    compare(
        "retention",
        false,
        format!("{:?}", wanted.retention),
        format!("{:?}", actual.retention),
        true,
    );
    // Unset means one copy: a stream at R3 must come back to R1 only on purpose.
    compare(
        "replicas",
        true,
        wanted.num_replicas.max(1).to_string(),
        actual.num_replicas.max(1).to_string(),
        true,
    );
    compare(
        "max_age",
        true,
        format!("{:?}", wanted.max_age),
        format!("{:?}", actual.max_age),
        wanted.max_age != default.max_age,
    );
    compare(
        "duplicate_window",
        true,
        format!("{:?}", wanted.duplicate_window),
        format!("{:?}", actual.duplicate_window),
        wanted.duplicate_window != default.duplicate_window,
    );
    compare(
        "max_messages_per_subject",
        true,
        wanted.max_messages_per_subject.to_string(),
        actual.max_messages_per_subject.to_string(),
        wanted.max_messages_per_subject != default.max_messages_per_subject,
    );
    compare(
        "discard",
        true,
        format!("{:?}", wanted.discard),
        format!("{:?}", actual.discard),
        wanted.discard != default.discard,
    );
    for (setting, wanted_flag, actual_flag, default_flag) in [
        (
            "allow_rollup",
            wanted.allow_rollup,
            actual.allow_rollup,
            default.allow_rollup,
        ),
        (
            "deny_delete",
            wanted.deny_delete,
            actual.deny_delete,
            default.deny_delete,
        ),
        (
            "allow_direct",
            wanted.allow_direct,
            actual.allow_direct,
            default.allow_direct,
        ),
    ] {
        compare(
            setting,
            true,
            wanted_flag.to_string(),
            actual_flag.to_string(),
            wanted_flag != default_flag,
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn todos() -> stream::Config {
        stream::Config {
            name: "TODOS".into(),
            subjects: vec!["todos.>".into()],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(60),
            duplicate_window: Duration::from_secs(120),
            num_replicas: 3,
            ..Default::default()
        }
    }

    #[test]
    fn the_same_settings_differ_in_nothing_and_server_defaults_are_not_drift() {
        let mut reported = todos();
        // The server fills in what the build left at its default.
        reported.max_bytes = -1;
        reported.max_messages = -1;
        assert_eq!(differences(&todos(), &reported), []);
    }

    #[test]
    fn each_difference_is_named_and_only_storage_and_retention_are_final() {
        let mut actual = todos();
        actual.max_age = Duration::from_secs(30);
        actual.num_replicas = 1;
        actual.storage = stream::StorageType::Memory;
        let found = differences(&todos(), &actual);
        let described: Vec<String> = found.iter().map(Difference::describe).collect();
        assert_eq!(
            described,
            [
                "storage: Memory → File",
                "replicas: 1 → 3",
                "max_age: 30s → 60s"
            ]
        );
        assert_eq!(
            found
                .iter()
                .filter(|d| !d.mutable)
                .map(|d| d.setting)
                .collect::<Vec<_>>(),
            ["storage"]
        );
    }
}
