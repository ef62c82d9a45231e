//! Configuration from the environment, read once per command. Each command
//! reads only the variables it uses, so a backup does not need API_TOKEN.
//!
//! | variable             | used by                  | required | default |
//! |----------------------|--------------------------|----------|---------|
//! | `TODO_API_URL`       | wikipedia-todo, listen   | yes      |         |
//! | `API_TOKEN`          | wikipedia-todo, listen   | yes      |         |
//! | `RANDOM_ARTICLE_URL` | wikipedia-todo, listen   | no       | `https://en.wikipedia.org/wiki/Special:Random` |
//! | `HTTP_TIMEOUT_SECS`  | wikipedia-todo, listen   | no       | `10` |
//! | `NATS_URL`           | listen                   | yes      |         |
//! | `NATS_USER`          | listen                   | with a password |  |
//! | `NATS_PASSWORD` or `NATS_PASSWORD_FILE` | listen | one of them, with `NATS_USER` | |
//! | `PORT`               | listen                   | no       | `8082` |
//! | `DATABASE_URL`       | backup, restore          | yes      |         |
//! | `BACKUP_DIR`         | backup                   | yes      |         |
//! | `BACKUP_KEEP`        | backup                   | no       | `7` |
//! | `PG_BIN_DIR`         | backup, restore          | no       | newest `/usr/lib/postgresql/<v>/bin`, else `PATH` |
//! | `LOG_FORMAT`         | all                      | no       | `json` |
//! | `RUST_LOG`           | all                      | no       | `info` |

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use nats_connect::NatsSettings;
use reqwest::Url;
use secrecy::SecretString;

use crate::error::{Error, Result};

pub const DEFAULT_RANDOM_ARTICLE_URL: &str = "https://en.wikipedia.org/wiki/Special:Random";
pub const DEFAULT_PORT: u16 = 8082;
pub const DEFAULT_BACKUP_KEEP: usize = 7;
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What `wikipedia-todo` needs.
#[derive(Debug, Clone)]
pub struct JobConfig {
    pub random_article_url: Url,
    /// The app's base URL; todos are created at `<base>/api/todos`.
    pub todo_api_url: Url,
    pub api_token: SecretString,
    /// For each HTTP request, not for the whole job.
    pub http_timeout: Duration,
}

/// What `listen` needs.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub job: JobConfig,
    pub nats: NatsSettings,
    pub listen: SocketAddr,
}

/// What `backup` needs.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub database: DatabaseConfig,
    pub backup_dir: PathBuf,
    pub keep: NonZeroUsize,
}

/// Where the database is and which PostgreSQL client tools to run.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub pg_bin_dir: Option<PathBuf>,
}

/// Reads variables from any source (the process environment, or a map in tests).
pub struct Env<F>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Set and not blank.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String> {
        self.get(name).ok_or(Error::MissingVar(name))
    }

    fn url(&self, name: &'static str, value: &str) -> Result<Url> {
        let url = Url::parse(value.trim()).map_err(|e| invalid(name, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(name, "expected an http:// or https:// URL"));
        }
        Ok(url)
    }

    pub fn job(&self) -> Result<JobConfig> {
        let random = self
            .get("RANDOM_ARTICLE_URL")
            .unwrap_or_else(|| DEFAULT_RANDOM_ARTICLE_URL.to_owned());
        let http_timeout = match self.get("HTTP_TIMEOUT_SECS") {
            None => DEFAULT_HTTP_TIMEOUT,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => {
                    return Err(invalid(
                        "HTTP_TIMEOUT_SECS",
                        format!("expected a whole number of seconds above 0, got `{raw}`"),
                    ));
                }
            },
        };
        Ok(JobConfig {
            random_article_url: self.url("RANDOM_ARTICLE_URL", &random)?,
            todo_api_url: self.url("TODO_API_URL", &self.required("TODO_API_URL")?)?,
            api_token: SecretString::from(self.required("API_TOKEN")?),
            http_timeout,
        })
    }

    pub fn listen(&self) -> Result<ListenConfig> {
        let job = self.job()?;
        let nats = NatsSettings::from_lookup(&self.0)?;
        let port = match self.get("PORT") {
            None => DEFAULT_PORT,
            Some(raw) => raw.trim().parse::<u16>().map_err(|_| {
                invalid(
                    "PORT",
                    format!("expected a port number from 0 to 65535, got `{raw}`"),
                )
            })?,
        };
        Ok(ListenConfig {
            job,
            nats,
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        })
    }

    pub fn database(&self) -> Result<DatabaseConfig> {
        let url = self.required("DATABASE_URL")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            // Never echo the value: it may hold a password.
            return Err(invalid(
                "DATABASE_URL",
                "expected a postgres:// or postgresql:// URL",
            ));
        }
        Ok(DatabaseConfig {
            url: SecretString::from(url),
            pg_bin_dir: self.get("PG_BIN_DIR").map(PathBuf::from),
        })
    }

    pub fn backup(&self) -> Result<BackupConfig> {
        let database = self.database()?;
        let backup_dir = PathBuf::from(self.required("BACKUP_DIR")?);
        let keep = match self.get("BACKUP_KEEP") {
            None => NonZeroUsize::new(DEFAULT_BACKUP_KEEP).expect("the default is above 0"),
            Some(raw) => raw.trim().parse::<NonZeroUsize>().map_err(|_| {
                invalid(
                    "BACKUP_KEEP",
                    format!("expected how many backups to keep, 1 or more, got `{raw}`"),
                )
            })?,
        };
        Ok(BackupConfig {
            database,
            backup_dir,
            keep,
        })
    }
}

fn invalid(name: &'static str, reason: impl ToString) -> Error {
    Error::InvalidVar {
        name,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env(move |name: &str| vars.get(name).cloned())
    }

    const JOB: [(&str, &str); 2] = [
        ("TODO_API_URL", "http://todo-app:8080"),
        ("API_TOKEN", "s3cret"),
    ];

    #[test]
    fn job_defaults_apply() {
        let config = env(&JOB).job().unwrap();
        assert_eq!(
            config.random_article_url.as_str(),
            DEFAULT_RANDOM_ARTICLE_URL
        );
        assert_eq!(config.http_timeout, DEFAULT_HTTP_TIMEOUT);
        assert_eq!(config.api_token.expose_secret(), "s3cret");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = env(&JOB[1..]).job().unwrap_err();
        assert_eq!(
            err.to_string(),
            "TODO_API_URL is not set; see the configuration table in the README"
        );
        let err = env(&JOB[..1]).job().unwrap_err();
        assert!(err.to_string().starts_with("API_TOKEN is not set"), "{err}");
        let err = env(&JOB).listen().unwrap_err();
        assert!(err.to_string().starts_with("NATS_URL is not set"), "{err}");
        let err = env(&[]).backup().unwrap_err();
        assert!(
            err.to_string().starts_with("DATABASE_URL is not set"),
            "{err}"
        );
        let err = env(&[("DATABASE_URL", "postgres://h/db")])
            .backup()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("BACKUP_DIR is not set"),
            "{err}"
        );
    }

    #[test]
    fn malformed_values_are_named() {
        let with = |extra: (&'static str, &'static str)| {
            let mut vars = JOB.to_vec();
            vars.push(("NATS_URL", "nats://127.0.0.1:4222"));
            vars.push(extra);
            env(&vars).listen().unwrap_err().to_string()
        };
        assert!(with(("TODO_API_URL", "todo-app:8080")).starts_with("TODO_API_URL is not valid"));
        assert!(
            with(("RANDOM_ARTICLE_URL", "ftp://x")).starts_with("RANDOM_ARTICLE_URL is not valid")
        );
        assert!(with(("HTTP_TIMEOUT_SECS", "0")).starts_with("HTTP_TIMEOUT_SECS is not valid"));
        assert!(with(("PORT", "80a")).starts_with("PORT is not valid"));
        assert!(with(("NATS_URL", "nats://:::")).starts_with("NATS_URL is not valid"));
    }

    #[test]
    fn backup_keep_must_be_at_least_one_and_defaults_to_seven() {
        let base = [("DATABASE_URL", "postgres://h/db"), ("BACKUP_DIR", "/b")];
        assert_eq!(env(&base).backup().unwrap().keep.get(), 7);
        let err = env(&[base[0], base[1], ("BACKUP_KEEP", "0")])
            .backup()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("BACKUP_KEEP is not valid"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_database_url_is_named_without_echoing_it() {
        let err = env(&[("DATABASE_URL", "mysql://u:hunter2@h/db")])
            .database()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("DATABASE_URL is not valid"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
