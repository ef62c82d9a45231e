//! The `wikipedia-todo` job: ask `RANDOM_ARTICLE_URL` for a random article
//! without following the redirect, take the article's URL from `Location`,
//! and create the todo "Read <url>" through the app's API.
//!
//! Each step is retried on its own, so a failed create does not fetch a
//! different article.

use reqwest::header::LOCATION;
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};

use service_kit::Env;

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::retry::with_backoff;
use crate::todo_api::{self, CreatedTodo, TodoApi};

/// The app refuses longer todos (its `TodoText`).
pub const MAX_TODO_CHARS: usize = 140;
const PREFIX: &str = "Read ";
/// The longest article URL that fits after [`PREFIX`].
pub const MAX_URL_CHARS: usize = MAX_TODO_CHARS - PREFIX.len();

/// Wikipedia asks automated clients to say who they are.
const USER_AGENT: &str = concat!(
    "docket-cronjobs/",
    env!("CARGO_PKG_VERSION"),
    " (wikipedia-todo; +https://github.com/docket-dev/docket)"
);

/// "Read <url>", whole: a URL that does not fit is refused, never cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingTodo(String);

impl ReadingTodo {
    pub fn new(article: &Url) -> Result<Self> {
        let url = article.as_str();
        let chars = url.chars().count();
        if chars > MAX_URL_CHARS {
            return Err(Error::ArticleUrlTooLong {
                url: url.to_owned(),
                chars,
                max: MAX_URL_CHARS,
            });
        }
        Ok(Self(format!("{PREFIX}{url}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The job, ready to run any number of times (`listen` reuses it).
#[derive(Clone)]
pub struct WikipediaTodo {
    http: reqwest::Client,
    config: JobConfig,
    api: TodoApi,
}

impl WikipediaTodo {
    pub fn new(config: JobConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(config.http_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Error::Other(anyhow::anyhow!("building the HTTP client: {e}")))?;
        let api = TodoApi::new(
            http.clone(),
            &config.todo_api_url,
            config.api_token.clone(),
            config.http_timeout,
        );
        Ok(Self { http, config, api })
    }

    /// Fetches an article and creates its todo, retrying transient failures.
    pub async fn run_once(&self) -> Result<CreatedTodo> {
        let article = with_backoff("fetching a random article", || self.random_article()).await?;
        let text = ReadingTodo::new(&article)?;
        let todo = with_backoff("creating the todo", || self.api.create(text.as_str())).await?;
        tracing::info!(todo.id = %todo.id, article = %article, "created a reading todo");
        Ok(todo)
    }

    /// One request for a random article: its URL, from the redirect.
    async fn random_article(&self) -> Result<Url> {
        let source = &self.config.random_article_url;
        let url = source.to_string();
        let response = self.http.get(source.clone()).send().await.map_err(|e| {
            if e.is_timeout() {
                Error::Timeout {
                    what: url.clone(),
                    after: self.config.http_timeout,
                }
            } else {
                Error::Unreachable {
                    what: url.clone(),
                    reason: todo_api::reason(&e),
                }
            }
        })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Error::UpstreamStatus {
                url,
                status: status.as_u16(),
            });
        }
        if !status.is_redirection() {
            return Err(Error::NoRedirect {
                url,
                status: status.as_u16(),
            });
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .ok_or(Error::NoLocation {
                url,
                status: status.as_u16(),
            })?;
        // `Location` may be relative to the URL that answered it.
        let article = source.join(location).map_err(|e| Error::BadLocation {
            location: location.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(article.scheme(), "http" | "https") {
            return Err(Error::BadLocation {
                location: location.to_owned(),
                reason: "not an http(s) URL".into(),
            });
        }
        Ok(article)
    }
}

/// `cronjobs wikipedia-todo`: one run, exit 0 when the todo exists.
pub async fn run() -> anyhow::Result<()> {
    let config = JobConfig::read(&Env::process())?;
    let todo = WikipediaTodo::new(config)?.run_once().await?;
    tracing::info!(todo.id = %todo.id, "done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_article_url_becomes_read_url() {
        let url = Url::parse("https://en.wikipedia.org/wiki/Ada_Lovelace").unwrap();
        assert_eq!(
            ReadingTodo::new(&url).unwrap().as_str(),
            "Read https://en.wikipedia.org/wiki/Ada_Lovelace"
        );
    }

    #[test]
    fn the_longest_url_that_fits_makes_a_140_character_todo() {
        let base = "https://en.wikipedia.org/wiki/";
        let url = format!("{base}{}", "a".repeat(MAX_URL_CHARS - base.len()));
        let todo = ReadingTodo::new(&Url::parse(&url).unwrap()).unwrap();
        assert_eq!(todo.as_str().chars().count(), MAX_TODO_CHARS);
    }

    #[test]
    fn a_url_one_character_too_long_is_refused_not_cut() {
        let base = "https://en.wikipedia.org/wiki/";
        let url = format!("{base}{}", "a".repeat(MAX_URL_CHARS - base.len() + 1));
        let err = ReadingTodo::new(&Url::parse(&url).unwrap()).unwrap_err();
        assert!(
            matches!(err, Error::ArticleUrlTooLong { chars: 136, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&url), "{err}");
    }
}
