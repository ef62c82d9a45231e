//! Configuration from the environment, read once per command. Each command
//! reads only the variables it uses, so a backup does not need API_TOKEN.
//!
//! | variable             | used by                  | required | default |
//! |----------------------|--------------------------|----------|---------|
//! | `TODO_API_URL`       | wikipedia-todo, listen, next-request | yes |   |
//! | `API_TOKEN`          | wikipedia-todo, listen, next-request | yes |   |
//! | `RANDOM_ARTICLE_URL` | wikipedia-todo, listen, next-request | no | `https://en.wikipedia.org/wiki/Special:Random` |
//! | `HTTP_TIMEOUT_SECS`  | wikipedia-todo, listen, next-request | no | `10` |
//! | `NATS_URL`           | listen, next-request     | yes      |         |
//! | `NATS_USER`          | listen, next-request     | with a password |  |
//! | `NATS_PASSWORD` or `NATS_PASSWORD_FILE` | listen, next-request | one of them, with `NATS_USER` | |
//! | `PORT`               | listen                   | no       | `8082` |
//! | `REQUEST_WAIT`       | next-request             | no       | `30s`: how long to wait for a request before exiting 0 |
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

use reqwest::Url;
use secrecy::SecretString;
use service_kit::{Env, EnvError, NatsSettings, env};

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

/// What `next-request` needs.
#[derive(Debug, Clone)]
pub struct RequestConfig {
    pub job: JobConfig,
    pub nats: NatsSettings,
    /// How long to wait for a request to arrive.
    pub wait: Duration,
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

impl JobConfig {
    pub fn read(env: &Env<'_>) -> Result<JobConfig, EnvError> {
        let http_timeout = env.parse_or(
            "HTTP_TIMEOUT_SECS",
            &DEFAULT_HTTP_TIMEOUT.as_secs().to_string(),
            |raw| match raw.parse::<u64>() {
                Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
                _ => Err("expected a whole number of seconds above 0"),
            },
        )?;
        let todo_api_url = env.required("TODO_API_URL")?;
        Ok(JobConfig {
            random_article_url: env.parse_or(
                "RANDOM_ARTICLE_URL",
                DEFAULT_RANDOM_ARTICLE_URL,
                env::http_url,
            )?,
            todo_api_url: env::http_url(&todo_api_url)
                .map_err(|reason| EnvError::invalid("TODO_API_URL", reason))?,
            api_token: SecretString::from(env.required("API_TOKEN")?),
            http_timeout,
        })
    }
}

impl ListenConfig {
    pub fn read(env: &Env<'_>) -> Result<ListenConfig, EnvError> {
        let job = JobConfig::read(env)?;
        let nats = NatsSettings::read(env)?;
        let port = env.parse_or("PORT", &DEFAULT_PORT.to_string(), env::port)?;
        Ok(ListenConfig {
            job,
            nats,
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        })
    }
}

impl RequestConfig {
    pub fn read(env: &Env<'_>) -> Result<RequestConfig, EnvError> {
        Ok(RequestConfig {
            job: JobConfig::read(env)?,
            nats: NatsSettings::read(env)?,
            wait: env.parse_or("REQUEST_WAIT", "30s", |raw| match env::duration(raw) {
                Ok(wait) if wait >= Duration::from_secs(1) => Ok(wait),
                Ok(_) => Err("must be at least 1s".to_owned()),
                Err(e) => Err(e),
            })?,
        })
    }
}

impl DatabaseConfig {
    pub fn read(env: &Env<'_>) -> Result<DatabaseConfig, EnvError> {
        let url = env.postgres_url("DATABASE_URL")?;
        Ok(DatabaseConfig {
            url: SecretString::from(url),
            pg_bin_dir: env.optional("PG_BIN_DIR").map(PathBuf::from),
        })
    }
}

impl BackupConfig {
    pub fn read(env: &Env<'_>) -> Result<BackupConfig, EnvError> {
        let database = DatabaseConfig::read(env)?;
        let backup_dir = PathBuf::from(env.required("BACKUP_DIR")?);
        let keep = env.parse_or("BACKUP_KEEP", &DEFAULT_BACKUP_KEEP.to_string(), |raw| {
            raw.parse::<NonZeroUsize>()
                .map_err(|_| "expected how many backups to keep, 1 or more")
        })?;
        Ok(BackupConfig {
            database,
            backup_dir,
            keep,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env<'static> {
        Env::from_pairs(vars)
    }

    const JOB: [(&str, &str); 2] = [
        ("TODO_API_URL", "http://todo-app:8080"),
        ("API_TOKEN", "s3cret"),
    ];

    #[test]
    fn job_defaults_apply() {
        let config = JobConfig::read(&env(&JOB)).unwrap();
        assert_eq!(
            config.random_article_url.as_str(),
            DEFAULT_RANDOM_ARTICLE_URL
        );
        assert_eq!(config.http_timeout, DEFAULT_HTTP_TIMEOUT);
        assert_eq!(config.api_token.expose_secret(), "s3cret");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = JobConfig::read(&env(&JOB[1..])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TODO_API_URL is not set; see the configuration table in the README"
        );
        let err = JobConfig::read(&env(&JOB[..1])).unwrap_err();
        assert!(err.to_string().starts_with("API_TOKEN is not set"), "{err}");
        let err = ListenConfig::read(&env(&JOB)).unwrap_err();
        assert!(err.to_string().starts_with("NATS_URL is not set"), "{err}");
        let err = BackupConfig::read(&env(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with("DATABASE_URL is not set"),
            "{err}"
        );
        let err = BackupConfig::read(&env(&[("DATABASE_URL", "postgres://h/db")])).unwrap_err();
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
            ListenConfig::read(&env(&vars)).unwrap_err().to_string()
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
        assert_eq!(BackupConfig::read(&env(&base)).unwrap().keep.get(), 7);
        let err = BackupConfig::read(&env(&[base[0], base[1], ("BACKUP_KEEP", "0")])).unwrap_err();
        assert!(
            err.to_string().starts_with("BACKUP_KEEP is not valid"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_database_url_is_named_without_echoing_it() {
        let err = DatabaseConfig::read(&env(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("DATABASE_URL is not valid"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
