//! Logging set-up shared by every Docket binary.
//!
//! Services log JSON by default (one object per line, for log collectors) and
//! human-readable lines with `LOG_FORMAT=pretty`. `RUST_LOG` filters, with
//! `info` as the default.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

/// `LOG_FORMAT` held something other than `json` or `pretty`.
#[derive(Debug, thiserror::Error)]
#[error("LOG_FORMAT must be `json` or `pretty`, got `{0}`")]
pub struct InvalidLogFormat(String);

impl FromStr for LogFormat {
    type Err = InvalidLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err(InvalidLogFormat(s.to_owned())),
        }
    }
}

impl LogFormat {
    /// Reads `LOG_FORMAT`; unset means JSON.
    pub fn from_env() -> Result<Self, InvalidLogFormat> {
        match std::env::var("LOG_FORMAT") {
            Ok(value) => value.parse(),
            Err(_) => Ok(LogFormat::default()),
        }
    }
}

/// Installs the global subscriber. Call once, first thing in `main`.
///
/// Logs go to stdout, as container platforms expect. Calling it twice (as
/// tests that build several apps in one process do) keeps the first set-up.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _already_set = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// For tests: logs only when `TEST_LOG` is set, so a failing test can be rerun with its logs.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(LogFormat::Pretty);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats_case_insensitively() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("Pretty".parse::<LogFormat>().unwrap(), LogFormat::Pretty);
    }

    #[test]
    fn names_the_variable_when_the_value_is_unknown() {
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "LOG_FORMAT must be `json` or `pretty`, got `yaml`"
        );
    }
}
