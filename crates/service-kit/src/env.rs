//! Typed environment variables.
//!
//! Each service reads its configuration once, at start-up, through an
//! [`Env`]: a variable is read, parsed into its final type (or a default
//! applies), and anything wrong stops start-up with one line naming the
//! variable: `PORT is not valid: `http`: invalid digit found in string`.
//! Blank values count as unset, so an empty `KEY=` in a manifest means "the
//! default". Tests build an [`Env`] from pairs instead of touching the
//! process environment.

use std::collections::HashMap;

use secrecy::SecretString;
use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

/// Where a missing variable is explained.
pub const SEE_README: &str = "see the configuration table in the README";

/// A variable is missing, contradicts another, or cannot be used.
///
/// Messages name the variable; [`Env::parse_or`] quotes the bad value,
/// so secrets are read with [`Env::required`] and checked by the caller,
/// which says what is wrong without echoing them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// A variable that must be set is not (or is blank).
    #[error("{variable} is not set; {hint}")]
    Missing {
        variable: &'static str,
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{variable} is not valid: {reason}")]
    Invalid {
        variable: &'static str,
        reason: String,
    },
}

impl EnvError {
    /// `variable` holds something unusable, for the reason given.
    pub fn invalid(variable: &'static str, reason: impl Display) -> EnvError {
        EnvError::Invalid {
            variable,
            reason: reason.to_string(),
        }
    }

    /// The variable to fix.
    pub fn variable(&self) -> &'static str {
        match self {
            EnvError::Missing { variable, .. } | EnvError::Invalid { variable, .. } => variable,
        }
    }
}

/// Looks a variable up by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads variables from the process environment or, in tests, from pairs.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl Env<'static> {
    /// The process environment.
    pub fn process() -> Env<'static> {
        Env::new(|name| std::env::var(name).ok())
    }

    /// Just these variables (for tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env<'static> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Env::new(move |name| vars.get(name).cloned())
    }
}

impl<'a> Env<'a> {
    /// Any source of variables.
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Env<'a> {
        Env {
            lookup: Box::new(lookup),
        }
    }

    /// The value as set, if set and not blank (a password keeps its spaces).
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// The value without surrounding whitespace, if set and not blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.raw(name).map(|value| value.trim().to_owned())
    }

    /// The value, or an error naming the variable.
    pub fn required(&self, name: &'static str) -> Result<String, EnvError> {
        self.optional(name).ok_or(EnvError::Missing {
            variable: name,
            hint: SEE_README,
        })
    }

    /// A PostgreSQL URL. The error never quotes the value: it may hold a
    /// password.
    pub fn postgres_url(&self, name: &'static str) -> Result<String, EnvError> {
        let url = self.required(name)?;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(url)
        } else {
            Err(EnvError::invalid(
                name,
                "expected a postgres:// or postgresql:// URL",
            ))
        }
    }

    /// A secret given as `name`, or as a file named by `file_name` (a
    /// mounted Secret: the whole file but one trailing line break), read
    /// now; `None` when neither is set. Setting both is an error, and no
    /// error quotes the secret.
    pub fn secret(
        &self,
        name: &'static str,
        file_name: &'static str,
    ) -> Result<Option<SecretString>, EnvError> {
        match (self.raw(name), self.optional(file_name)) {
            (Some(_), Some(_)) => Err(EnvError::invalid(
                file_name,
                format!("{name} is set too; set only one of them"),
            )),
            (Some(secret), None) => Ok(Some(SecretString::from(secret))),
            (None, Some(path)) => read_secret_file(file_name, Path::new(&path)).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The value parsed by `parse`, or `default` parsed the same way when
    /// unset. The error names the variable and quotes the value: use it
    /// for settings, not secrets.
    pub fn parse_or<T, E: Display>(
        &self,
        name: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, EnvError> {
        let value = self.optional(name).unwrap_or_else(|| default.to_owned());
        parse(&value).map_err(|reason| EnvError::invalid(name, format!("`{value}`: {reason}")))
    }

    /// The value parsed by `parse`, when set.
    pub fn parse_optional<T, E: Display>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, EnvError> {
        self.optional(name)
            .map(|value| {
                parse(&value)
                    .map_err(|reason| EnvError::invalid(name, format!("`{value}`: {reason}")))
            })
            .transpose()
    }
}

/// Reads a mounted secret: the whole file but a trailing line break.
fn read_secret_file(variable: &'static str, path: &Path) -> Result<SecretString, EnvError> {
    let contents = std::fs::read_to_string(path)
        .map_err(|e| EnvError::invalid(variable, format!("cannot read {}: {e}", path.display())))?;
    let secret = contents
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&contents);
    if secret.is_empty() {
        return Err(EnvError::invalid(
            variable,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(SecretString::from(secret))
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `7d`.
pub fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| "needs a unit: ms, s, m, h or d".to_owned())?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "must start with a whole number".to_owned())?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown unit `{unit}` (use ms, s, m, h or d)")),
    };
    // Checked: an absurd value must be a start-up error naming the variable,
    // not a panic (debug) or a silently wrapped duration (release).
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| "is too long".to_owned())
}

/// Parses an http:// or https:// URL.
pub fn http_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("expected an http:// or https:// URL".into());
    }
    Ok(url)
}

/// Parses a TCP port number.
pub fn port(value: &str) -> Result<u16, String> {
    value
        .parse()
        .map_err(|_| "expected a port number from 0 to 65535".to_owned())
}

/// Parses a whole number of at least 1.
pub fn positive(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_url_must_be_http_or_https() {
        assert_eq!(
            http_url(" https://picsum.photos/1200 ").unwrap().as_str(),
            "https://picsum.photos/1200"
        );
        assert!(http_url("http://127.0.0.1:8080/x").is_ok());
        assert_eq!(
            http_url("ftp://example.com/"),
            Err("expected an http:// or https:// URL".into())
        );
        assert!(http_url("not a url").is_err());
    }

    #[test]
    fn a_good_value_is_parsed_into_its_type() {
        let env = Env::from_pairs(&[("PORT", " 9000 ")]);
        assert_eq!(env.parse_or("PORT", "8080", str::parse::<u16>), Ok(9000));
    }

    #[test]
    fn an_unset_or_blank_variable_takes_the_default() {
        assert_eq!(
            Env::from_pairs(&[]).parse_or("PORT", "8080", str::parse::<u16>),
            Ok(8080)
        );
        let blank = Env::from_pairs(&[("PORT", "  ")]);
        assert_eq!(blank.parse_or("PORT", "8080", str::parse::<u16>), Ok(8080));
        assert_eq!(blank.parse_optional("PORT", str::parse::<u16>), Ok(None));
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_variable_and_the_value() {
        let env = Env::from_pairs(&[("PORT", "http")]);
        let error = env.parse_or("PORT", "8080", str::parse::<u16>).unwrap_err();
        assert_eq!(error.variable(), "PORT");
        assert_eq!(
            error.to_string(),
            "PORT is not valid: `http`: invalid digit found in string"
        );
        let error = env.parse_optional("PORT", str::parse::<u16>).unwrap_err();
        assert!(error.to_string().starts_with("PORT is not valid: `http`"));
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        let error = Env::from_pairs(&[]).required("API_TOKEN").unwrap_err();
        assert_eq!(
            error.to_string(),
            "API_TOKEN is not set; see the configuration table in the README"
        );
    }

    #[test]
    fn raw_keeps_the_spaces_optional_trims_them() {
        let env = Env::from_pairs(&[("PASSWORD", " spaced ")]);
        assert_eq!(env.raw("PASSWORD").as_deref(), Some(" spaced "));
        assert_eq!(env.optional("PASSWORD").as_deref(), Some("spaced"));
    }

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert!(duration("5").is_err());
        assert!(duration("s").is_err());
        assert!(duration("5 parsecs").is_err());
    }

    #[test]
    fn a_duration_too_long_to_count_is_an_error_not_an_overflow() {
        // 213503982335 days is just over u64::MAX milliseconds.
        let e = duration("213503982335d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        assert!(duration("18446744073709551615ms").is_ok());
    }

    #[test]
    fn positive_refuses_zero() {
        assert_eq!(positive("3"), Ok(3));
        assert!(positive("0").unwrap_err().contains("at least 1"));
        assert!(positive("-1").is_err());
    }
}
