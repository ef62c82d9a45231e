//! Configuration, read once from the environment at start-up.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SERVER_IMAGE` | `docker.io/nginxinc/nginx-unprivileged:1.29-alpine` | the image that serves each copy (any server of `/usr/share/nginx/html` on port 8080 as uid 101) |
//! | `FETCH_TIMEOUT` | `10s` | limit for one fetch, body included |
//! | `MAX_PAGE_BYTES` | `716800` (700 KiB) | larger pages are refused: a ConfigMap holds at most 1 MiB |
//! | `REFRESH_INTERVAL` | `1h` | how old a copy may get before it is fetched again |
//! | `RETRY_FIRST`, `RETRY_LONGEST` | `5s`, `5m` | the backoff after a failed fetch: doubling from the first, up to the longest |
//! | `PORT` | `8080` | health and metrics |
//! | `LOG_FORMAT`, `RUST_LOG` | `json`, `info` | see the `telemetry` crate |

use std::time::Duration;

use service_kit::env::{duration, port, positive};
use service_kit::{Env, EnvError};

#[derive(Debug, Clone)]
pub struct Config {
    pub server_image: String,
    pub fetch_timeout: Duration,
    pub max_page_bytes: usize,
    pub refresh_interval: Duration,
    pub retry_first: Duration,
    pub retry_longest: Duration,
    pub port: u16,
}

impl Config {
    pub fn read(env: &Env<'_>) -> Result<Config, EnvError> {
        let server_image = env.parse_or(
            "SERVER_IMAGE",
            "docker.io/nginxinc/nginx-unprivileged:1.29-alpine",
            |value| {
                if value.is_empty() || value.contains(char::is_whitespace) {
                    Err("expected an image reference")
                } else {
                    Ok(value.to_owned())
                }
            },
        )?;
        let max_page_bytes = env.parse_or("MAX_PAGE_BYTES", "716800", |value| {
            match positive(value)? {
                n if n > 768 * 1024 => Err("must be at most 786432: a ConfigMap holds at most 1 MiB, and the copy is stored base64-encoded".to_owned()),
                n => Ok(n as usize),
            }
        })?;
        let retry_first = env.parse_or("RETRY_FIRST", "5s", duration)?;
        let retry_longest = env.parse_or("RETRY_LONGEST", "5m", duration)?;
        if retry_longest < retry_first {
            return Err(EnvError::invalid(
                "RETRY_LONGEST",
                "must not be shorter than RETRY_FIRST",
            ));
        }
        Ok(Config {
            server_image,
            fetch_timeout: env.parse_or("FETCH_TIMEOUT", "10s", duration)?,
            max_page_bytes,
            refresh_interval: env.parse_or("REFRESH_INTERVAL", "1h", duration)?,
            retry_first,
            retry_longest,
            port: env.parse_or("PORT", "8080", port)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use service_kit::Env;

    use super::Config;

    #[test]
    fn defaults_fit_a_config_map() {
        let config = Config::read(&Env::from_pairs(&[])).unwrap();
        assert_eq!(config.max_page_bytes, 700 * 1024);
        assert_eq!(config.refresh_interval, Duration::from_secs(3600));
        assert_eq!(config.port, 8080);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("MAX_PAGE_BYTES", "2000000"),
            ("MAX_PAGE_BYTES", "0"),
            ("FETCH_TIMEOUT", "soon"),
            ("SERVER_IMAGE", "an image"),
            ("RETRY_LONGEST", "1s"),
        ] {
            let error = Config::read(&Env::from_pairs(&[(name, value)])).unwrap_err();
            assert_eq!(error.variable(), name, "{error}");
        }
    }
}
