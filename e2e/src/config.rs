//! Where the suite points, read from the environment.
//!
//! | variable          | default              | meaning |
//! |-------------------|----------------------|---------|
//! | `E2E_BASE_URL`    | unset: private stack | run against this deployed app instead of starting one |
//! | `E2E_API_TOKEN`   | required with `E2E_BASE_URL` | bearer token for the JSON API calls that arrange and clean up test data |
//! | `E2E_WEBHOOK_URL` | unset: no receiver checks against `E2E_BASE_URL` | a webhook receiver's `/messages` (e.g. `broadcaster sink`) for a broadcaster forwarding signed messages |
//! | `E2E_BROADCASTER_LOG` | unset: no log checks against `E2E_BASE_URL` | a shell command printing the broadcaster's log, for an environment where it only logs (staging); see [`crate::broadcaster_log`] |
//! | `E2E_USERNAME`    | unset: no sign-in against `E2E_BASE_URL` | someone to sign in as at the environment's OpenID provider (`AUTH=oidc`): stories that write through the page sign in when they open it, and the sign-in stories run (skipped without it) |
//! | `E2E_PASSWORD`    | required with `E2E_USERNAME` | their password |
//! | `E2E_CHROMIUM`    | `/usr/bin/chromium`  | the browser executable |
//! | `E2E_RESOLVE`     | unset: DNS as usual  | `<host>=<IP address>` pairs, comma-separated, that the browser resolves so (`--host-resolver-rules`): for an OpenID provider whose issuer names a host the app resolves its own way (the images smoke test) |
//! | `E2E_TIMEOUT`     | `10`                 | seconds each expectation and browser action may wait |
//!
//! The driver is located through `PLAYWRIGHT_NODE_EXE` and `PLAYWRIGHT_CLI_JS`
//! (see [`crate::driver`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use crate::error::Error;

/// Debian's Chromium, which `cargo xtask test` installs.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the harness reads from the environment, parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: Target,
    pub chromium: PathBuf,
    /// Host names the browser resolves to these addresses, not by DNS.
    pub resolve: Vec<(String, IpAddr)>,
    /// How long an expectation or action waits before failing.
    pub timeout: Duration,
}

/// The app under test.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start a private stack for each test process (the default).
    Local,
    /// A deployed environment (staging): shared, so each test touches only
    /// the data it made. Boxed: it is far larger than `Local`.
    Remote(Box<Remote>),
}

/// A deployed environment.
#[derive(Debug, Clone)]
pub struct Remote {
    pub base_url: Url,
    pub api_token: String,
    /// A receiver's `/messages`, where the broadcaster forwards signed.
    pub webhook_messages: Option<Url>,
    /// A command printing the broadcaster's log, where it only logs.
    /// Without either, the webhook story is skipped.
    pub broadcaster_log: Option<String>,
    /// Whom to sign in as, where the app runs with `AUTH=oidc`.
    pub person: Option<Person>,
}

/// Someone a story signs in as at the OpenID provider.
#[derive(Clone)]
pub struct Person {
    pub username: String,
    pub password: String,
    /// The name the app shows for them, when known beforehand (the local
    /// provider's users); otherwise read from the page after signing in.
    pub name: Option<String>,
}

/// Without the password: settings are printed when a run fails.
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("username", &self.username)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the variables in this module's table.
    pub fn from_env() -> Result<Settings, Error> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads from any lookup; tests pass a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let target = match get("E2E_BASE_URL") {
            None => Target::Local,
            Some(raw) => Target::Remote(Box::new(Remote {
                base_url: with_trailing_slash(http_url("E2E_BASE_URL", &raw)?),
                api_token: get("E2E_API_TOKEN")
                    .map(|token| token.trim().to_owned())
                    .ok_or(Error::MissingVariable {
                        name: "E2E_API_TOKEN",
                        why: "tests create and remove their data through the JSON API",
                    })?,
                webhook_messages: get("E2E_WEBHOOK_URL")
                    .map(|raw| http_url("E2E_WEBHOOK_URL", &raw))
                    .transpose()?,
                broadcaster_log: get("E2E_BROADCASTER_LOG"),
                person: match (get("E2E_USERNAME"), get("E2E_PASSWORD")) {
                    (None, _) => None,
                    (Some(username), Some(password)) => Some(Person {
                        username: username.trim().to_owned(),
                        password,
                        name: None,
                    }),
                    (Some(_), None) => {
                        return Err(Error::InvalidVariable {
                            name: "E2E_PASSWORD",
                            reason: "E2E_USERNAME is set, so its password is needed too".into(),
                        });
                    }
                },
            })),
        };
        let timeout = match get("E2E_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                _ => {
                    return Err(Error::InvalidVariable {
                        name: "E2E_TIMEOUT",
                        reason: format!("expected a whole number of seconds above 0, got `{raw}`"),
                    });
                }
            },
        };
        let resolve = match get("E2E_RESOLVE") {
            None => Vec::new(),
            Some(raw) => parse_resolve(&raw).map_err(|reason| Error::InvalidVariable {
                name: "E2E_RESOLVE",
                reason,
            })?,
        };
        Ok(Settings {
            target,
            chromium: get("E2E_CHROMIUM")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM)),
            resolve,
            timeout,
        })
    }
}

/// `host=address,host=address`: a host is letters, digits, `-` and `.`.
fn parse_resolve(raw: &str) -> Result<Vec<(String, IpAddr)>, String> {
    raw.split(',')
        .map(|pair| {
            let expected = || format!("expected `<host>=<IP address>`, got `{}`", pair.trim());
            let (host, address) = pair.split_once('=').ok_or_else(expected)?;
            let host = host.trim();
            let valid_host = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            let address = address.trim().parse::<IpAddr>().map_err(|_| expected())?;
            if !valid_host {
                return Err(expected());
            }
            Ok((host.to_ascii_lowercase(), address))
        })
        .collect()
}

fn http_url(name: &'static str, raw: &str) -> Result<Url, Error> {
    let url = Url::parse(raw.trim()).map_err(|e| Error::InvalidVariable {
        name,
        reason: format!("`{raw}` is not a URL ({e})"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidVariable {
            name,
            reason: format!("`{raw}` must be an http:// or https:// URL"),
        });
    }
    Ok(url)
}

/// `https://host/docket` → `https://host/docket/`, so API paths join under it.
fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn without_a_base_url_the_suite_starts_its_own_stack() {
        let settings = settings(&[]).unwrap();
        assert!(matches!(settings.target, Target::Local));
        assert_eq!(settings.chromium, PathBuf::from("/usr/bin/chromium"));
        assert_eq!(settings.timeout, Duration::from_secs(10));
    }

    #[test]
    fn hosts_to_resolve_are_pairs_of_a_host_and_an_address() {
        assert!(settings(&[]).unwrap().resolve.is_empty());
        let set = settings(&[("E2E_RESOLVE", "OIDC.smoke.test=127.0.0.1, b=::1")]).unwrap();
        assert_eq!(
            set.resolve,
            vec![
                ("oidc.smoke.test".to_owned(), IpAddr::from([127, 0, 0, 1])),
                ("b".to_owned(), "::1".parse().unwrap()),
            ]
        );
        for bad in [
            "oidc.smoke.test",
            "a=localhost",
            "=127.0.0.1",
            "a b=127.0.0.1",
        ] {
            let error = settings(&[("E2E_RESOLVE", bad)]).unwrap_err().to_string();
            assert!(
                error.contains("E2E_RESOLVE") && error.contains("expected `<host>=<IP address>`"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_base_url_needs_the_api_token_for_clean_up() {
        let error = settings(&[("E2E_BASE_URL", "https://staging.example")]).unwrap_err();
        assert!(error.to_string().contains("E2E_API_TOKEN"), "{error}");
    }

    #[test]
    fn a_remote_target_reads_the_optional_webhook_receiver() {
        let settings = settings(&[
            ("E2E_BASE_URL", "http://127.0.0.1:8080"),
            ("E2E_API_TOKEN", "secret"),
            ("E2E_WEBHOOK_URL", "http://127.0.0.1:9000/messages"),
        ])
        .unwrap();
        let Target::Remote(remote) = settings.target else {
            panic!("expected a remote target")
        };
        assert_eq!(remote.api_token, "secret");
        assert_eq!(remote.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(
            remote.webhook_messages.unwrap().as_str(),
            "http://127.0.0.1:9000/messages"
        );
        assert_eq!(remote.broadcaster_log, None);
        assert!(remote.person.is_none());
    }

    #[test]
    fn a_remote_target_reads_whom_to_sign_in_as_and_never_prints_the_password() {
        let settings = settings(&[
            ("E2E_BASE_URL", "http://127.0.0.1:8080"),
            ("E2E_API_TOKEN", "secret"),
            ("E2E_USERNAME", " e2e-bot "),
            ("E2E_PASSWORD", "hunter2 "),
        ])
        .unwrap();
        let printed = format!("{settings:?}");
        let Target::Remote(remote) = settings.target else {
            panic!("expected a remote target")
        };
        let person = remote.person.unwrap();
        assert_eq!(person.username, "e2e-bot");
        assert_eq!(person.password, "hunter2 ", "a password is taken as given");
        assert!(
            printed.contains("e2e-bot") && !printed.contains("hunter2"),
            "{printed}"
        );
    }

    #[test]
    fn a_username_without_a_password_names_the_missing_variable() {
        let error = settings(&[
            ("E2E_BASE_URL", "http://127.0.0.1:8080"),
            ("E2E_API_TOKEN", "secret"),
            ("E2E_USERNAME", "e2e-bot"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("E2E_PASSWORD"), "{error}");
    }

    #[test]
    fn a_remote_target_reads_the_command_printing_the_broadcasters_log() {
        let command = "kubectl -n docket-staging logs -l app.kubernetes.io/name=broadcaster";
        let settings = settings(&[
            ("E2E_BASE_URL", "http://127.0.0.1:8080"),
            ("E2E_API_TOKEN", "secret"),
            ("E2E_BROADCASTER_LOG", command),
        ])
        .unwrap();
        let Target::Remote(remote) = settings.target else {
            panic!("expected a remote target")
        };
        assert_eq!(remote.broadcaster_log.as_deref(), Some(command));
        assert_eq!(remote.webhook_messages, None);
    }

    #[test]
    fn a_base_url_with_a_path_keeps_it_for_api_calls() {
        let settings = settings(&[
            ("E2E_BASE_URL", "https://staging.example/docket"),
            ("E2E_API_TOKEN", "secret"),
        ])
        .unwrap();
        let Target::Remote(remote) = settings.target else {
            panic!("expected a remote target")
        };
        assert_eq!(
            remote.base_url.join("api/todos").unwrap().as_str(),
            "https://staging.example/docket/api/todos"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let error = settings(&[("E2E_BASE_URL", "staging")]).unwrap_err();
        assert!(error.to_string().contains("E2E_BASE_URL"), "{error}");
        let error = settings(&[("E2E_TIMEOUT", "soon")]).unwrap_err();
        assert!(error.to_string().contains("E2E_TIMEOUT"), "{error}");
    }
}
