//! How every Docket service connects to NATS.
//!
//! Each service has a NATS user of its own, allowed only the subjects it
//! uses (the server's configuration is `kustomize/base/nats/nats.conf`).
//! This crate reads where the server is and who to connect as from the
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

mod error;
mod settings;

pub use error::SettingsError;
pub use settings::{Credentials, NatsSettings};
