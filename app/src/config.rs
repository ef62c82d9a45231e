//! Configuration, read once from the environment at start-up.
//!
//! | variable       | required | default | meaning |
//! |----------------|----------|---------|---------|
//! | `DATABASE_URL` | yes      |         | PostgreSQL connection URL |
//! | `DATABASE_POOL_SIZE` | no | `8`     | connections each replica keeps for requests, 1 to 100 (the relay and the change listener have one each besides) |
//! | `NATS_URL`     | yes      |         | NATS server URL (JetStream enabled) |
//! | `NATS_USER`    | with a password |  | the app's NATS user |
//! | `NATS_PASSWORD` or `NATS_PASSWORD_FILE` | with `NATS_USER` | | its password, or a file holding it (see `service-kit`) |
//! | `NATS_STREAM_REPLICAS` | no | `1`   | copies of the `TODOS` stream: 1 on one nats-server, 3 on a three-node cluster (`events::StreamReplicas`) |
//! | `NATS_DUPLICATE_WINDOW` | no | `2m` | how long `TODOS` drops a republished event id; set the broadcaster's the same (`events::DuplicateWindow`) |
//! | `PORT`         | no       | `8080`  | HTTP port, bound on all interfaces |
//! | `ADMIN_PORT`   | no       |         | a second port for `/healthz`, `/readyz`, `/metrics` and `/version`, which then leave `PORT` (all but `/version`); unset: everything on `PORT` |
//! | `API_TOKEN`    | no       |         | one bearer token for the JSON API, read-write, named `default` (local use); unset with no `API_TOKENS_FILE`: writes answer 503 |
//! | `API_TOKENS_FILE` | no    |         | a file of named API tokens, one `<name> <read\|write> <token>` a line (`#` comments, tokens of 32 characters or more), read again when it changes, so tokens rotate without a restart (see [`crate::api_tokens`]); not with `API_TOKEN` |
//! | `COOKIE_KEY`   | with `AUTH=oidc` or more than one replica | random | signs the app's cookies (the write marker, [`crate::write_marker`]) and seals sessions, at least 32 bytes; every replica needs the same; unset (only with `AUTH=off`): a random key per process |
//! | `LOG_FORMAT`   | no       | `json`  | `json` or `pretty` (read by `telemetry`) |
//! | `RUST_LOG`     | no       | `info`  | log filter (read by `telemetry`) |
//! | `WRITE_RATE_LIMIT` | no   | `300/minute` | writes (POST, PUT, DELETE) each client may make: `<count>/<second\|minute\|hour>`, or `off` |
//! | `PAGE_CACHE_MAX_AGE` | no | `1s`    | how long a replica may serve `GET /` from memory while it hears of no change: `<n>ms` or `<n>s`, at most `60s`; `0` turns the cache off (see [`crate::page_cache`]) |
//! | `LIVE_MAX_STREAMS` | no   | `2000`  | live-update streams (`GET /events`) one replica keeps open; over it: 503 with `Retry-After` |
//! | `LIVE_MAX_STREAMS_PER_CLIENT` | no | `32` | streams one client (an IPv4 address or IPv6 /64) may hold open on a replica |
//! | `LIVE_MAX_LIFETIME` | no  | `15m`   | how long a stream lives before the browser is made to reconnect: `<n>s`, `<n>m`, `<n>h` |
//! | `CLIENT_IP_HEADER` | no   |         | header a trusted proxy puts the client's address in (`X-Forwarded-For`: its last address counts); unset: the TCP peer |
//! | `PICTURE_SOURCE_URL` | no |        | an http(s) URL answering with an image, fetched for the page's picture; unset: no picture (see [`crate::picture`]) |
//! | `PICTURE_MAX_AGE` | no    | `1h`    | how often the picture is fetched, by one replica for all: `<n>` with `ms`, `s`, `m`, `h` or `d` |
//! | `PICTURE_FETCH_TIMEOUT` | no | `10s` | how long a fetch may take, body included, before the last picture stays |
//! | `AUTH`         | no       | `off`   | `off` (anyone may read and write; local use) or `oidc` (page writes need a sign-in with an OpenID provider, see [`crate::auth`]) |
//! | `OIDC_ISSUER_URL` | with `AUTH=oidc` |  | the provider's issuer; its discovery document is read at start-up (retried until it answers) |
//! | `OIDC_CLIENT_ID` | with `AUTH=oidc` |   | the app's client id at the provider |
//! | `OIDC_CLIENT_SECRET` or `OIDC_CLIENT_SECRET_FILE` | with `AUTH=oidc` | | its secret, or a file holding it |
//! | `PUBLIC_URL`   | with `AUTH=oidc` |  | the app's address as browsers see it; the redirect URI is it + `/auth/callback`; `https`: cookies are `Secure` and `__Host-` |
//! | `SESSION_LIFETIME` | no   | `12h`   | how long a sign-in lasts: `<n>` with `m`, `h` or `d` |
//! | `ANONYMOUS_READ` | no     | `false` | `true`: visitors who have not signed in see the lists, read-only; `false`: a sign-in page |
//! | `GIT_COMMIT`   | no       | build's | commit reported by `/version` and `todo_app_build_info` (overrides the build-time value) |
//!
//! `DOCKET_FAULT_*` are read only with the test-only `--test-faults` argument
//! (see [`crate::faults`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderName;
use events::{DuplicateWindow, StreamReplicas, TodosStream};
use secrecy::SecretString;
use service_kit::{Env, EnvError, NatsSettings, env};
use sqlx::postgres::PgConnectOptions;

use crate::api_tokens::TokenSource;
use crate::auth::{Auth, DEFAULT_SESSION_LIFETIME, OidcSettings};
use crate::client::ClientIp;
use crate::domain::ApiTokens;
use crate::open_streams::StreamLimits;
use crate::page_cache;
use crate::picture::{self, PictureSettings};
use crate::rate_limit::RateLimit;
use crate::write_marker::{self, CookieKey};

/// Enough to keep a 2-core PostgreSQL busy. More add backends that wait
/// for CPU and for each other's row locks: toggling 50 todos from 64
/// connections, 20 gave a p99 of 130–240 ms in four runs of four, 8 gave
/// 50–80 ms in three of four, at the same throughput; creates and reads
/// did alike with either.
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// Past this a replica would take most of a default PostgreSQL's 100.
const MAX_POOL_SIZE: u32 = 100;

/// Everything the app needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PgConnectOptions,
    /// Connections for reads and the writers of changes.
    pub pool_size: u32,
    pub nats: NatsSettings,
    pub todos_stream: TodosStream,
    pub listen: SocketAddr,
    /// Where the operational routes are served; `None`: on `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// `None`: neither `API_TOKEN` nor `API_TOKENS_FILE`; API writes answer 503.
    pub api_tokens: Option<TokenSource>,
    /// `None`: a random key of this process.
    pub cookie_key: Option<CookieKey>,
    /// `None`: writes are not limited.
    pub write_limit: Option<RateLimit>,
    pub client_ip: ClientIp,
    /// Zero: no page cache.
    pub page_cache_max_age: Duration,
    pub stream_limits: StreamLimits,
    /// `None`: no picture on the page.
    pub picture: Option<PictureSettings>,
    /// Whether people sign in, and with whom.
    pub auth: Auth,
}

/// A whole number of at least 1.
fn positive(raw: &str) -> Result<std::num::NonZeroU32, String> {
    env::positive(raw).map(|n| std::num::NonZeroU32::new(n).expect("at least 1"))
}

/// A variable is missing or cannot be read: the services' one error for
/// configuration, whose message names the variable.
pub type ConfigError = EnvError;

impl Config {
    /// Reads the variables listed in this module's table through `env`
    /// (the process's, or pairs in tests; blank values count as unset).
    pub fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let database_url = env.postgres_url("DATABASE_URL")?;
        // Not `parse_or`: its error would quote the URL, password included.
        let database = PgConnectOptions::from_str(&database_url).map_err(|e| {
            EnvError::invalid(
                "DATABASE_URL",
                redact_url_error(&e.to_string(), &database_url),
            )
        })?;

        let pool_size = match env.optional("DATABASE_POOL_SIZE") {
            None => DEFAULT_POOL_SIZE,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|size| (1..=MAX_POOL_SIZE).contains(size))
                .ok_or_else(|| {
                    EnvError::invalid(
                        "DATABASE_POOL_SIZE",
                        format!("expected a number from 1 to {MAX_POOL_SIZE}, got `{raw}`"),
                    )
                })?,
        };

        let nats = NatsSettings::read(env)?;
        let todos_stream = TodosStream {
            replicas: env.parse_or(events::STREAM_REPLICAS_VARIABLE, "1", StreamReplicas::parse)?,
            duplicate_window: env.parse_or(events::DUPLICATE_WINDOW_VARIABLE, "2m", |raw| {
                DuplicateWindow::new(env::duration(raw)?)
            })?,
        };

        let port = env.parse_or("PORT", "8080", env::port)?;
        let admin_port = env.parse_optional("ADMIN_PORT", env::port)?;
        // Port 0 picks a free port each time (tests), so two zeros differ.
        if admin_port.is_some_and(|admin| admin == port && port != 0) {
            return Err(EnvError::invalid(
                "ADMIN_PORT",
                format!("must differ from PORT ({port})"),
            ));
        }

        let api_tokens = read_api_tokens(env)?;
        let cookie_key = match env.raw("COOKIE_KEY") {
            None => None,
            Some(raw) => Some(
                CookieKey::parse(&raw).map_err(|reason| EnvError::invalid("COOKIE_KEY", reason))?,
            ),
        };

        let write_limit = match env.optional("WRITE_RATE_LIMIT") {
            None => Some(RateLimit::DEFAULT),
            Some(raw) if raw.eq_ignore_ascii_case("off") => None,
            Some(raw) => Some(
                raw.parse()
                    .map_err(|reason: String| EnvError::invalid("WRITE_RATE_LIMIT", reason))?,
            ),
        };

        let client_ip = match env.optional("CLIENT_IP_HEADER") {
            None => ClientIp::Peer,
            Some(raw) => ClientIp::Header(HeaderName::try_from(raw.as_str()).map_err(|_| {
                EnvError::invalid("CLIENT_IP_HEADER", format!("`{raw}` is not a header name"))
            })?),
        };

        let page_cache_max_age = match env.optional("PAGE_CACHE_MAX_AGE") {
            None => page_cache::DEFAULT_MAX_AGE,
            Some(raw) => parse_max_age(&raw)
                .map_err(|reason| EnvError::invalid("PAGE_CACHE_MAX_AGE", reason))?,
        };

        let defaults = StreamLimits::DEFAULT;
        let stream_limits = StreamLimits {
            per_replica: env.parse_or(
                "LIVE_MAX_STREAMS",
                &defaults.per_replica.to_string(),
                positive,
            )?,
            per_client: env.parse_or(
                "LIVE_MAX_STREAMS_PER_CLIENT",
                &defaults.per_client.to_string(),
                positive,
            )?,
            lifetime: match env.parse_optional("LIVE_MAX_LIFETIME", env::duration)? {
                None => defaults.lifetime,
                Some(lifetime) if lifetime >= Duration::from_secs(1) => lifetime,
                Some(_) => {
                    return Err(EnvError::invalid(
                        "LIVE_MAX_LIFETIME",
                        "must be at least 1s: a stream that ends at once makes browsers reconnect in a loop",
                    ));
                }
            },
        };
        // The durations are read even without a source, so a typo is
        // reported before the source is set, not after.
        let picture_max_age = env.parse_or(
            "PICTURE_MAX_AGE",
            &format!("{}s", picture::DEFAULT_MAX_AGE.as_secs()),
            positive_duration,
        )?;
        let picture_fetch_timeout = env.parse_or(
            "PICTURE_FETCH_TIMEOUT",
            &format!("{}s", picture::DEFAULT_FETCH_TIMEOUT.as_secs()),
            positive_duration,
        )?;
        let picture = env
            .parse_optional("PICTURE_SOURCE_URL", env::http_url)?
            .map(|source| PictureSettings {
                source,
                max_age: picture_max_age,
                fetch_timeout: picture_fetch_timeout,
            });

        let auth = read_auth(env)?;
        // A key of the process's own would sign everyone out at each
        // restart, and on every replica but the one that signed them in.
        if auth.oidc().is_some() && cookie_key.is_none() {
            return Err(EnvError::Missing {
                variable: "COOKIE_KEY",
                hint: "AUTH=oidc seals sessions with it; every replica needs the same",
            });
        }

        Ok(Self {
            database,
            pool_size,
            nats,
            todos_stream,
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
            admin_listen: admin_port.map(|port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))),
            api_tokens,
            cookie_key,
            write_limit,
            client_ip,
            page_cache_max_age,
            stream_limits,
            picture,
            auth,
        })
    }
}

/// `AUTH` and, with `oidc`, the provider's settings; the `OIDC_*` and
/// session variables are not read at all with `off`.
fn read_auth(env: &Env<'_>) -> Result<Auth, ConfigError> {
    let mode = env.optional("AUTH").unwrap_or_else(|| "off".to_owned());
    match mode.to_ascii_lowercase().as_str() {
        "off" => return Ok(Auth::Off),
        "oidc" => {}
        _ => {
            return Err(EnvError::invalid(
                "AUTH",
                format!("expected `off` or `oidc`, got `{mode}`"),
            ));
        }
    }
    let issuer = env.parse_optional("OIDC_ISSUER_URL", env::http_url)?;
    let issuer = issuer.ok_or_else(|| missing_with_oidc("OIDC_ISSUER_URL"))?;
    let client_id = env
        .optional("OIDC_CLIENT_ID")
        .ok_or_else(|| missing_with_oidc("OIDC_CLIENT_ID"))?;
    let client_secret = env
        .secret("OIDC_CLIENT_SECRET", "OIDC_CLIENT_SECRET_FILE")?
        .ok_or_else(|| missing_with_oidc("OIDC_CLIENT_SECRET"))?;
    let public_url = env
        .parse_optional("PUBLIC_URL", env::http_url)?
        .ok_or_else(|| missing_with_oidc("PUBLIC_URL"))?;
    if public_url.query().is_some() || public_url.fragment().is_some() {
        return Err(EnvError::invalid(
            "PUBLIC_URL",
            "must be a plain address, without `?` or `#`",
        ));
    }
    let session_lifetime = env.parse_or(
        "SESSION_LIFETIME",
        &format!("{}h", DEFAULT_SESSION_LIFETIME.as_secs() / 3600),
        |raw| match env::duration(raw)? {
            lifetime if lifetime < Duration::from_secs(1) => Err("must be at least 1s".to_owned()),
            lifetime => Ok(lifetime),
        },
    )?;
    let anonymous_read = env.parse_or("ANONYMOUS_READ", "false", |raw| {
        match raw.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected `true` or `false`"),
        }
    })?;
    Ok(Auth::Oidc(Box::new(OidcSettings {
        issuer,
        client_id,
        client_secret,
        public_url,
        session_lifetime,
        anonymous_read,
    })))
}

fn missing_with_oidc(variable: &'static str) -> EnvError {
    EnvError::Missing {
        variable,
        hint: "AUTH=oidc needs it; see the configuration table in the README",
    }
}

/// `API_TOKEN` or `API_TOKENS_FILE`, the file read and parsed now so a
/// bad one stops the start with its line number.
fn read_api_tokens(env: &Env<'_>) -> Result<Option<TokenSource>, ConfigError> {
    const FILE: &str = "API_TOKENS_FILE";
    let single = env.raw("API_TOKEN").map(SecretString::from);
    let Some(path) = env.optional(FILE) else {
        return Ok(single.map(|token| TokenSource::Fixed(ApiTokens::single(&token))));
    };
    if single.is_some() {
        return Err(EnvError::invalid(
            FILE,
            "set API_TOKENS_FILE or API_TOKEN, not both",
        ));
    }
    let path = PathBuf::from(path);
    // The I/O error names the cause, never the content.
    let bytes = std::fs::read(&path)
        .map_err(|e| EnvError::invalid(FILE, format!("cannot read {}: {e}", path.display())))?;
    let tokens = ApiTokens::parse(&path, &String::from_utf8_lossy(&bytes))
        .map_err(|e| EnvError::invalid(FILE, e))?;
    Ok(Some(TokenSource::File { path, tokens }))
}

/// A duration as `service_kit::env::duration` reads it, longer than zero.
fn positive_duration(raw: &str) -> Result<Duration, String> {
    match env::duration(raw)? {
        Duration::ZERO => Err("must be longer than zero".to_owned()),
        duration => Ok(duration),
    }
}

/// `250ms`, `1s` or `0`, up to [`write_marker::MAX_AGE`].
fn parse_max_age(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let expected = || format!("expected `0`, `<n>ms` or `<n>s` (at most 60s), got `{raw}`");
    let age = if raw == "0" {
        Duration::ZERO
    } else if let Some(ms) = raw.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| expected())?)
    } else if let Some(s) = raw.strip_suffix('s') {
        Duration::from_secs(s.parse().map_err(|_| expected())?)
    } else {
        return Err(expected());
    };
    if age > write_marker::MAX_AGE {
        return Err(expected());
    }
    Ok(age)
}

/// sqlx's parse errors can quote the URL, password included; never echo it.
fn redact_url_error(message: &str, url: &str) -> String {
    if url.is_empty() {
        message.to_owned()
    } else {
        message.replace(url, "<DATABASE_URL>")
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::domain::Access;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&Env::from_pairs(vars))
    }

    const BASE: [(&str, &str); 2] = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/docket"),
        ("NATS_URL", "nats://127.0.0.1:4222"),
    ];

    /// The required variables and `name` set to `raw`; an error as its message.
    fn with(name: &str, raw: &str) -> Result<Config, String> {
        config(&[BASE[0], BASE[1], (name, raw)]).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_apply() {
        let config = config(&BASE).unwrap();
        assert_eq!(config.listen.port(), 8080);
        assert!(config.listen.ip().is_unspecified());
        assert!(config.api_tokens.is_none());
        assert_eq!(config.pool_size, 8);
    }

    #[test]
    fn the_pool_size_is_a_small_positive_number() {
        let size = |raw| with("DATABASE_POOL_SIZE", raw).map(|c| c.pool_size);
        assert_eq!(size("1"), Ok(1));
        assert_eq!(size(" 20 "), Ok(20));
        assert_eq!(size("100"), Ok(100));
        assert_eq!(size(" "), Ok(DEFAULT_POOL_SIZE), "blank is the default");
        for bad in ["0", "101", "-1", "eight"] {
            assert_eq!(
                size(bad),
                Err(format!(
                    "DATABASE_POOL_SIZE is not valid: expected a number from 1 to 100, got `{bad}`"
                )),
            );
        }
    }

    #[test]
    fn the_page_cache_age_is_a_short_duration_or_zero() {
        let age = |raw| with("PAGE_CACHE_MAX_AGE", raw).map(|c| c.page_cache_max_age);
        assert_eq!(
            config(&BASE).unwrap().page_cache_max_age,
            Duration::from_secs(1)
        );
        assert_eq!(age("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(age(" 60s "), Ok(Duration::from_secs(60)));
        assert_eq!(age("0"), Ok(Duration::ZERO));
        assert_eq!(age(""), Ok(Duration::from_secs(1)), "blank is the default");
        for bad in ["61s", "1m", "fast", "-1s"] {
            let err = age(bad).unwrap_err();
            assert!(
                err.starts_with("PAGE_CACHE_MAX_AGE is not valid: expected"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_picture_is_off_without_a_source_and_hourly_with_one() {
        assert!(config(&BASE).unwrap().picture.is_none());
        let picture = with("PICTURE_SOURCE_URL", "https://picsum.photos/1200")
            .unwrap()
            .picture
            .unwrap();
        assert_eq!(picture.source.as_str(), "https://picsum.photos/1200");
        assert_eq!(picture.max_age, Duration::from_secs(3600));
        assert_eq!(picture.fetch_timeout, Duration::from_secs(10));

        let set = config(&[
            BASE[0],
            BASE[1],
            ("PICTURE_SOURCE_URL", "http://127.0.0.1:9000/image"),
            ("PICTURE_MAX_AGE", "90m"),
            ("PICTURE_FETCH_TIMEOUT", "2s"),
        ])
        .unwrap()
        .picture
        .unwrap();
        assert_eq!(set.max_age, Duration::from_secs(90 * 60));
        assert_eq!(set.fetch_timeout, Duration::from_secs(2));

        let err = with("PICTURE_SOURCE_URL", "file:///etc/passwd").unwrap_err();
        assert!(err.starts_with("PICTURE_SOURCE_URL is not valid"), "{err}");
        for (name, bad) in [
            ("PICTURE_MAX_AGE", "0s"),
            ("PICTURE_MAX_AGE", "hourly"),
            ("PICTURE_FETCH_TIMEOUT", "10"),
        ] {
            let err = with(name, bad).unwrap_err();
            assert!(err.starts_with(&format!("{name} is not valid")), "{err}");
        }
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = config(&BASE[1..]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DATABASE_URL is not set; see the configuration table in the README"
        );
        let err = config(&BASE[..1]).unwrap_err();
        assert!(err.to_string().starts_with("NATS_URL is not set"), "{err}");
    }

    #[test]
    fn a_malformed_port_is_named() {
        let err = with("PORT", "80a").unwrap_err();
        assert!(err.starts_with("PORT is not valid"), "{err}");
    }

    #[test]
    fn an_admin_port_is_optional_and_must_be_a_port_other_than_port() {
        assert_eq!(config(&BASE).unwrap().admin_listen, None);
        let admin = with("ADMIN_PORT", " 8081 ").unwrap().admin_listen.unwrap();
        assert_eq!(admin.port(), 8081);
        assert!(admin.ip().is_unspecified());
        assert_eq!(
            with("ADMIN_PORT", "admin").unwrap_err(),
            "ADMIN_PORT is not valid: `admin`: expected a port number from 0 to 65535"
        );
        assert_eq!(
            with("ADMIN_PORT", "65536").unwrap_err(),
            "ADMIN_PORT is not valid: `65536`: expected a port number from 0 to 65535"
        );
        assert_eq!(
            with("ADMIN_PORT", "8080").unwrap_err(),
            "ADMIN_PORT is not valid: must differ from PORT (8080)"
        );
        let both_free = config(&[BASE[0], BASE[1], ("PORT", "0"), ("ADMIN_PORT", "0")]).unwrap();
        assert_eq!(both_free.admin_listen.map(|a| a.port()), Some(0));
    }

    #[test]
    fn a_malformed_database_url_is_named_without_echoing_it() {
        let err = config(&[("DATABASE_URL", "mysql://u:hunter2@h/db"), BASE[1]]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("DATABASE_URL is not valid"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn a_malformed_nats_url_is_named() {
        let err = config(&[BASE[0], ("NATS_URL", "nats://:::")]).unwrap_err();
        assert!(
            err.to_string().starts_with("NATS_URL is not valid"),
            "{err}"
        );
    }

    #[test]
    fn writes_are_limited_by_default_and_the_limit_can_be_set_or_turned_off() {
        assert_eq!(config(&BASE).unwrap().write_limit, Some(RateLimit::DEFAULT));
        let set = with("WRITE_RATE_LIMIT", "20/second").unwrap();
        assert_eq!(set.write_limit.unwrap().to_string(), "20/second");
        let off = with("WRITE_RATE_LIMIT", "OFF").unwrap();
        assert_eq!(off.write_limit, None);
        let err = with("WRITE_RATE_LIMIT", "lots").unwrap_err();
        assert!(
            err.starts_with("WRITE_RATE_LIMIT is not valid: expected"),
            "{err}"
        );
    }

    #[test]
    fn a_client_ip_header_must_be_a_header_name() {
        assert!(matches!(
            with("CLIENT_IP_HEADER", "X-Forwarded-For").unwrap().client_ip,
            ClientIp::Header(name) if name == "x-forwarded-for"
        ));
        let err = with("CLIENT_IP_HEADER", "not a header").unwrap_err();
        assert!(err.starts_with("CLIENT_IP_HEADER is not valid"), "{err}");
    }

    #[test]
    fn stream_limits_have_defaults_and_refuse_zero() {
        assert_eq!(config(&BASE).unwrap().stream_limits, StreamLimits::DEFAULT);
        let set = with("LIVE_MAX_LIFETIME", "2m").unwrap().stream_limits;
        assert_eq!(set.lifetime, Duration::from_secs(120));
        assert_eq!(
            with("LIVE_MAX_STREAMS", "10")
                .unwrap()
                .stream_limits
                .per_replica
                .get(),
            10
        );
        for (name, bad) in [
            ("LIVE_MAX_STREAMS", "0"),
            ("LIVE_MAX_STREAMS_PER_CLIENT", "-1"),
            ("LIVE_MAX_LIFETIME", "0s"),
            ("LIVE_MAX_LIFETIME", "10"),
        ] {
            let error = with(name, bad).unwrap_err().to_string();
            assert!(error.contains(name), "{name}={bad}: {error}");
        }
    }

    #[test]
    fn a_cookie_key_must_be_long_enough_and_an_empty_one_is_unset() {
        assert!(with("COOKIE_KEY", " ").unwrap().cookie_key.is_none());
        assert!(
            with("COOKIE_KEY", &"k".repeat(32))
                .unwrap()
                .cookie_key
                .is_some()
        );
        let error = with("COOKIE_KEY", "short").unwrap_err().to_string();
        assert!(
            error.contains("COOKIE_KEY") && error.contains("at least 32 bytes"),
            "{error}"
        );
        assert!(
            !error.contains("short"),
            "the key's value is not repeated: {error}"
        );
    }

    #[test]
    fn an_empty_api_token_counts_as_unset() {
        assert!(with("API_TOKEN", " ").unwrap().api_tokens.is_none());
        let Some(TokenSource::Fixed(tokens)) = with("API_TOKEN", "s3cret").unwrap().api_tokens
        else {
            panic!("API_TOKEN is a fixed set");
        };
        let (name, access) = tokens.find("s3cret").unwrap();
        assert_eq!((name.as_str(), access), ("default", Access::Write));
    }

    const OIDC: [(&str, &str); 6] = [
        ("AUTH", "oidc"),
        ("COOKIE_KEY", "cookie-key-0123456789abcdef0123456789"),
        ("OIDC_ISSUER_URL", "https://id.example.test"),
        ("OIDC_CLIENT_ID", "docket"),
        ("OIDC_CLIENT_SECRET", "client-s3cret"),
        ("PUBLIC_URL", "https://docket.example.test/"),
    ];

    /// The base, `AUTH=oidc` with its settings, and `extra`.
    fn oidc(extra: &[(&str, &str)]) -> Result<OidcSettings, String> {
        let mut vars: Vec<(&str, &str)> = BASE.into_iter().chain(OIDC).collect();
        vars.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
        vars.extend_from_slice(extra);
        match config(&vars).map_err(|e| e.to_string())?.auth {
            Auth::Oidc(settings) => Ok(*settings),
            Auth::Off => Err("AUTH is off".to_owned()),
        }
    }

    #[test]
    fn auth_is_off_by_default_and_ignores_the_oidc_variables_then() {
        assert!(config(&BASE).unwrap().auth.oidc().is_none());
        assert!(with("AUTH", "off").unwrap().auth.oidc().is_none());
        assert!(
            with("OIDC_ISSUER_URL", "not a url")
                .unwrap()
                .auth
                .oidc()
                .is_none()
        );
        let error = with("AUTH", "saml").unwrap_err();
        assert_eq!(
            error,
            "AUTH is not valid: expected `off` or `oidc`, got `saml`"
        );
    }

    #[test]
    fn auth_oidc_reads_the_provider_and_the_session_settings() {
        let settings = oidc(&[]).unwrap();
        assert_eq!(settings.issuer.as_str(), "https://id.example.test/");
        assert_eq!(settings.client_id, "docket");
        assert_eq!(
            settings.redirect_uri(),
            "https://docket.example.test/auth/callback"
        );
        assert!(settings.is_https());
        assert_eq!(settings.session_lifetime, Duration::from_secs(12 * 3600));
        assert!(!settings.anonymous_read);

        let set = oidc(&[("SESSION_LIFETIME", "30m"), ("ANONYMOUS_READ", "TRUE")]).unwrap();
        assert_eq!(set.session_lifetime, Duration::from_secs(1800));
        assert!(set.anonymous_read);
        let plain = oidc(&[("PUBLIC_URL", "http://127.0.0.1:8080")]).unwrap();
        assert!(!plain.is_https());
        assert_eq!(plain.redirect_uri(), "http://127.0.0.1:8080/auth/callback");
    }

    #[test]
    fn auth_oidc_names_each_missing_or_invalid_variable() {
        for (name, _) in &OIDC[1..] {
            let vars: Vec<(&str, &str)> = BASE
                .into_iter()
                .chain(OIDC)
                .filter(|(other, _)| other != name)
                .collect();
            let error = config(&vars).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{name} is not set")), "{error}");
        }
        for (name, bad) in [
            ("OIDC_ISSUER_URL", "ftp://id.example.test"),
            ("PUBLIC_URL", "docket.example.test"),
            ("PUBLIC_URL", "https://docket.example.test/?x=1"),
            ("SESSION_LIFETIME", "12"),
            ("SESSION_LIFETIME", "0s"),
            ("ANONYMOUS_READ", "yes"),
        ] {
            let error = oidc(&[(name, bad)]).unwrap_err();
            assert!(
                error.starts_with(&format!("{name} is not valid")),
                "{error}"
            );
        }
    }

    #[test]
    fn the_client_secret_may_come_from_a_file_and_is_never_printed() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "from-a-file\n").unwrap();
        let path = file.path().to_str().unwrap();
        let vars: Vec<(&str, &str)> = BASE
            .into_iter()
            .chain(OIDC)
            .filter(|(name, _)| *name != "OIDC_CLIENT_SECRET")
            .chain([("OIDC_CLIENT_SECRET_FILE", path)])
            .collect();
        let Auth::Oidc(settings) = config(&vars).unwrap().auth else {
            panic!("AUTH=oidc");
        };
        use secrecy::ExposeSecret;
        assert_eq!(settings.client_secret.expose_secret(), "from-a-file");
        assert!(!format!("{settings:?}").contains("from-a-file"));

        let both = oidc(&[("OIDC_CLIENT_SECRET_FILE", path)]).unwrap_err();
        assert!(
            both.starts_with("OIDC_CLIENT_SECRET_FILE is not valid"),
            "{both}"
        );
        assert!(!both.contains("client-s3cret"), "{both}");
    }

    const TOKEN: &str = "ci-token-0123456789abcdef0123456789abcdef";

    #[test]
    fn a_tokens_file_is_read_at_start() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("# tokens\nci read {TOKEN}\n")).unwrap();
        let path = file.path().to_str().unwrap();
        let Some(TokenSource::File { path: read, tokens }) =
            with("API_TOKENS_FILE", path).unwrap().api_tokens
        else {
            panic!("API_TOKENS_FILE is a file source");
        };
        assert_eq!(read, file.path());
        assert_eq!(tokens.find(TOKEN).unwrap().1, Access::Read);
    }

    #[test]
    fn a_bad_tokens_file_is_named_with_its_line_and_not_quoted() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("ci read {TOKEN}\nci write {TOKEN}x\n")).unwrap();
        let path = file.path().to_str().unwrap();
        let error = with("API_TOKENS_FILE", path).unwrap_err();
        assert_eq!(
            error,
            format!("API_TOKENS_FILE is not valid: {path}:2: the name is already used on line 1")
        );

        let missing = with("API_TOKENS_FILE", "/nonexistent/tokens").unwrap_err();
        assert!(
            missing.starts_with("API_TOKENS_FILE is not valid: cannot read /nonexistent/tokens"),
            "{missing}"
        );
    }

    #[test]
    fn api_token_and_api_tokens_file_are_exclusive() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("ci read {TOKEN}\n")).unwrap();
        let error = config(&[
            BASE[0],
            BASE[1],
            ("API_TOKEN", "s3cret"),
            ("API_TOKENS_FILE", file.path().to_str().unwrap()),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("API_TOKENS_FILE") && error.contains("API_TOKEN,"),
            "{error}"
        );
        assert!(!error.contains("s3cret"), "{error}");
    }
}
