//! How every Docket service connects to NATS.
//!
//! Each service has a NATS user of its own, allowed only the subjects it
//! uses (the server's configuration is `kustomize/base/nats/nats.conf`).
//! [`NatsSettings`] reads where the server is and who to connect as from the
//! environment, once, with errors that name the variable, and applies that
//! to `async_nats::ConnectOptions`, so the three services parse and use
//! their credentials the same way.
//!
//! | variable             | required            | meaning |
//! |----------------------|---------------------|---------|
//! | `NATS_URL`           | yes                 | `nats://host:port` (without credentials) |
//! | `NATS_USER`          | with a password     | the service's NATS user |
//! | `NATS_PASSWORD`      | with `NATS_USER`, or | its password |
//! | `NATS_PASSWORD_FILE` | … this instead      | a file holding the password (a mounted Secret); one trailing newline is ignored |
//!
//! Without `NATS_USER` the service connects anonymously, which only a
//! server without authorization (a developer's `nats-server -js`) accepts.

use std::fmt;

use async_nats::jetstream::stream;
use async_nats::{Client, ConnectError, ConnectOptions, ServerAddr};
use secrecy::{ExposeSecret, SecretString};

use crate::env::{Env, EnvError, SEE_README};

/// Where NATS is and who to connect as. `Debug` shows neither the password
/// nor credentials a URL may carry.
#[derive(Clone)]
pub struct NatsSettings {
    url: ServerAddr,
    credentials: Option<Credentials>,
}

/// A NATS user and its password. `Debug` shows the user only.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    password: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = format!(
            "{}://{}:{}",
            self.url.scheme(),
            self.url.host(),
            self.url.port()
        );
        f.debug_struct("NatsSettings")
            .field("url", &url)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Credentials {
    /// A user and its password (for tests and tools that know both).
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// The NATS user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password, for the one place that hands it to the client.
    pub fn password(&self) -> &SecretString {
        &self.password
    }

    /// The subject prefix of this user's reply inboxes, `_INBOX_<user>`.
    ///
    /// The server lets each user subscribe to its own prefix only, so no
    /// other user can read its replies (publish acks, pulled messages).
    pub fn inbox_prefix(&self) -> String {
        format!("_INBOX_{}", self.user)
    }
}

impl NatsSettings {
    /// Reads `NATS_URL`, `NATS_USER`, `NATS_PASSWORD` and
    /// `NATS_PASSWORD_FILE` from `env` (blank values count as unset). The
    /// password file is read here, at start-up.
    pub fn read(env: &Env<'_>) -> Result<NatsSettings, EnvError> {
        let get = |name: &str| env.raw(name);

        let raw_url = get("NATS_URL").ok_or(EnvError::Missing {
            variable: "NATS_URL",
            hint: SEE_README,
        })?;
        // The parser's message may quote the URL, which may hold a password:
        // say what is wrong without it.
        let url = raw_url
            .trim()
            .parse::<ServerAddr>()
            .map_err(|_| EnvError::Invalid {
                variable: "NATS_URL",
                reason: "expected a URL like nats://host:4222".into(),
            })?;

        let user = get("NATS_USER").map(|user| user.trim().to_owned());
        let password = env.secret("NATS_PASSWORD", "NATS_PASSWORD_FILE")?;

        let credentials = match (user, password) {
            (Some(user), Some(password)) => Some(Credentials { user, password }),
            (Some(_), None) => {
                return Err(EnvError::Missing {
                    variable: "NATS_PASSWORD",
                    hint: "NATS_USER is set, so set NATS_PASSWORD or NATS_PASSWORD_FILE too",
                });
            }
            (None, Some(_)) => {
                return Err(EnvError::Missing {
                    variable: "NATS_USER",
                    hint: "a NATS password is set, so say whose it is",
                });
            }
            (None, None) => None,
        };
        if credentials.is_some() && url.has_user_pass() {
            return Err(EnvError::Invalid {
                variable: "NATS_URL",
                reason: "carries a user as well as NATS_USER; keep credentials out of the URL"
                    .into(),
            });
        }
        Ok(NatsSettings { url, credentials })
    }

    /// Settings for a server and, optionally, a user (tests and tools).
    pub fn new(url: ServerAddr, credentials: Option<Credentials>) -> NatsSettings {
        NatsSettings { url, credentials }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        self.url.as_url_str()
    }

    /// Who to connect as; `None` connects anonymously.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Adds the user, password and the user's inbox prefix to `options`.
    pub fn apply(&self, options: ConnectOptions) -> ConnectOptions {
        match &self.credentials {
            None => options,
            Some(credentials) => options
                .user_and_password(
                    credentials.user.clone(),
                    credentials.password.expose_secret().to_owned(),
                )
                .custom_inbox_prefix(credentials.inbox_prefix()),
        }
    }

    /// The options every long-running service starts from: `name` shows in
    /// the server's connection list; the service starts even while NATS is
    /// down (its readiness says so until it is up) and reconnects without
    /// end.
    pub fn service_options(name: &str) -> ConnectOptions {
        ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
    }

    /// Connects with `options` plus these settings.
    pub async fn connect(&self, options: ConnectOptions) -> Result<Client, ConnectError> {
        self.apply(options).connect(self.url.clone()).await
    }
}

/// The stream behind the key-value bucket `bucket`, with the settings
/// `create_key_value` gives one (one value per key, rollups, direct gets),
/// for `get_or_create_stream` and then `get_key_value`.
///
/// Not `create_key_value` itself: async-nats 0.51's first reads the account
/// info in a shape nats-server 2.9 does not send (and needs a permission for
/// it). `get_or_create_stream` also makes replicas that start together agree
/// instead of racing.
pub fn key_value_stream(bucket: &str, description: &str) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// The stream behind the object store bucket `bucket`, with the settings
/// `create_object_store` gives one, for `get_or_create_stream` and then
/// `get_object_store` (see [`key_value_stream`] for why).
pub fn object_store_stream(bucket: &str, description: &str, max_bytes: i64) -> stream::Config {
    stream::Config {
        name: format!("OBJ_{bucket}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
        max_bytes,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        allow_direct: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<NatsSettings, EnvError> {
        NatsSettings::read(&Env::from_pairs(vars))
    }

    fn error(vars: &[(&str, &str)]) -> String {
        settings(vars).unwrap_err().to_string()
    }

    const URL: (&str, &str) = ("NATS_URL", "nats://127.0.0.1:4222");

    #[test]
    fn without_a_user_the_connection_is_anonymous() {
        let settings = settings(&[URL]).unwrap();
        assert_eq!(settings.url(), "nats://127.0.0.1:4222");
        assert!(settings.credentials().is_none());
    }

    #[test]
    fn a_user_and_password_are_read() {
        let settings = settings(&[URL, ("NATS_USER", "app"), ("NATS_PASSWORD", "s3cret")]).unwrap();
        let credentials = settings.credentials().unwrap();
        assert_eq!(credentials.user(), "app");
        assert_eq!(credentials.password().expose_secret(), "s3cret");
        assert_eq!(credentials.inbox_prefix(), "_INBOX_app");
    }

    #[test]
    fn a_password_file_is_read_without_its_trailing_newline() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"from-a-secret\n").unwrap();
        let path = file.path().to_str().unwrap();
        let settings =
            settings(&[URL, ("NATS_USER", "jobs"), ("NATS_PASSWORD_FILE", path)]).unwrap();
        assert_eq!(
            settings.credentials().unwrap().password().expose_secret(),
            "from-a-secret"
        );
    }

    #[test]
    fn only_one_trailing_line_break_is_dropped_from_a_password_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b" spaced \r\n").unwrap();
        let path = file.path().to_str().unwrap();
        let settings =
            settings(&[URL, ("NATS_USER", "jobs"), ("NATS_PASSWORD_FILE", path)]).unwrap();
        assert_eq!(
            settings.credentials().unwrap().password().expose_secret(),
            " spaced "
        );
    }

    #[test]
    fn a_missing_url_is_named() {
        assert_eq!(
            error(&[]),
            "NATS_URL is not set; see the configuration table in the README"
        );
        assert_eq!(settings(&[]).unwrap_err().variable(), "NATS_URL");
    }

    #[test]
    fn a_malformed_url_is_named_without_echoing_it() {
        let message = error(&[("NATS_URL", "nats://u:hunter2@:::")]);
        assert!(message.starts_with("NATS_URL is not valid"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn a_user_without_a_password_names_the_password() {
        let message = error(&[URL, ("NATS_USER", "app")]);
        assert!(message.starts_with("NATS_PASSWORD is not set"), "{message}");
        assert!(message.contains("NATS_PASSWORD_FILE"), "{message}");
    }

    #[test]
    fn a_password_without_a_user_names_the_user() {
        let message = error(&[URL, ("NATS_PASSWORD", "s3cret")]);
        assert!(message.starts_with("NATS_USER is not set"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn a_password_and_a_password_file_together_are_refused() {
        let message = error(&[
            URL,
            ("NATS_USER", "app"),
            ("NATS_PASSWORD", "s3cret"),
            ("NATS_PASSWORD_FILE", "/run/secrets/nats"),
        ]);
        assert!(
            message.starts_with("NATS_PASSWORD_FILE is not valid"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn an_unreadable_password_file_is_named_with_its_path() {
        let message = error(&[
            URL,
            ("NATS_USER", "app"),
            ("NATS_PASSWORD_FILE", "/nonexistent/nats-password"),
        ]);
        assert!(
            message.starts_with(
                "NATS_PASSWORD_FILE is not valid: cannot read /nonexistent/nats-password"
            ),
            "{message}"
        );
    }

    #[test]
    fn an_empty_password_file_is_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"\n").unwrap();
        let path = file.path().to_str().unwrap();
        let message = error(&[URL, ("NATS_USER", "app"), ("NATS_PASSWORD_FILE", path)]);
        assert!(message.ends_with("is empty"), "{message}");
    }

    #[test]
    fn credentials_in_the_url_and_in_nats_user_are_refused() {
        let message = error(&[
            ("NATS_URL", "nats://other:pw@127.0.0.1:4222"),
            ("NATS_USER", "app"),
            ("NATS_PASSWORD", "s3cret"),
        ]);
        assert!(message.starts_with("NATS_URL is not valid"), "{message}");
        assert!(!message.contains("pw@"), "{message}");
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let settings = settings(&[URL, ("NATS_USER", "app"), ("NATS_PASSWORD", "s3cret")]).unwrap();
        let debug = format!("{settings:?}");
        assert!(debug.contains("app"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
