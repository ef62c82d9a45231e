//! The NATS users of the shipped server configuration
//! (`kustomize/base/nats/nats.conf`), for servers started with it.
//!
//! Each service has its own user with only the permissions its code needs;
//! `admin` may do everything and is for harnesses that inspect streams (and,
//! in a cluster, for operators). A secured test server gets a fresh random
//! password per user, handed to nats-server through the environment
//! variables the configuration names.

use std::path::PathBuf;

use crate::workspace_root;

/// Who connects: one user per service, plus `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `todo-app`: publishes `todos.>` to the `TODOS` stream, subscribes to it for live updates.
    App,
    /// `broadcaster`: consumes its durable consumer, writes its bucket and dead letters.
    Broadcaster,
    /// `cronjobs listen`: subscribes to `jobs.>` and answers requests.
    Jobs,
    /// Everything: test harnesses and operators, never a service.
    Admin,
}

impl Role {
    /// Every user the configuration defines.
    pub const ALL: [Role; 4] = [Role::App, Role::Broadcaster, Role::Jobs, Role::Admin];

    /// The NATS user name (`NATS_USER`).
    pub fn user(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Broadcaster => "broadcaster",
            Role::Jobs => "jobs",
            Role::Admin => "admin",
        }
    }

    /// The variable nats-server reads this user's password from.
    pub fn password_variable(self) -> &'static str {
        match self {
            Role::App => "APP_NATS_PASSWORD",
            Role::Broadcaster => "BROADCASTER_NATS_PASSWORD",
            Role::Jobs => "JOBS_NATS_PASSWORD",
            Role::Admin => "ADMIN_NATS_PASSWORD",
        }
    }
}

/// The server configuration shipped to the cluster, which secured test
/// servers run with.
pub fn nats_config_path() -> PathBuf {
    workspace_root().join("kustomize/base/nats/nats.conf")
}

/// A fresh password per user.
///
/// nats-server 2.9 parses a variable's value as a configuration value, so
/// one that starts with a digit is read as a number and refused: these start
/// with a letter, as the README asks of production passwords.
pub(crate) fn random_passwords() -> Vec<(Role, String)> {
    Role::ALL
        .iter()
        .map(|&role| (role, format!("p{}", uuid::Uuid::new_v4().simple())))
        .collect()
}
