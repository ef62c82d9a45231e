//! `cronjobs wikipedia-todo` against the real app and a local stand-in for
//! Wikipedia's `Special:Random`.

use std::process::Output;

use crate::helpers::{Answer, ArticleServer, TodoApp, assert_success, cronjobs, one_line_failure};

/// One run of the job against a fresh app and a stand-in for Wikipedia
/// that gives `answer`, and what it left behind.
struct Run {
    app: TodoApp,
    articles: ArticleServer,
    output: Output,
}

async fn wikipedia_todo(answer: Answer) -> Run {
    let app = TodoApp::spawn().await;
    let articles = ArticleServer::start(answer).await;
    let output = cronjobs(&["wikipedia-todo"], &app.job_env(&articles)).await;
    Run {
        app,
        articles,
        output,
    }
}

impl Run {
    /// The job succeeded and the app holds one todo, `text`.
    async fn assert_created(&self, text: &str) {
        assert_success(&self.output);
        assert_eq!(self.app.texts().await, [text]);
    }
}

#[tokio::test]
async fn a_302_with_an_absolute_location_creates_read_url() {
    let run = wikipedia_todo(Answer::Redirect(
        "https://en.wikipedia.org/wiki/Ada_Lovelace",
    ))
    .await;

    run.assert_created("Read https://en.wikipedia.org/wiki/Ada_Lovelace")
        .await;
}

#[tokio::test]
async fn a_302_with_a_relative_location_is_resolved_against_the_random_article_url() {
    let run = wikipedia_todo(Answer::Redirect("/wiki/Grace_Hopper")).await;

    let expected = format!("Read {}/wiki/Grace_Hopper", run.articles.base_url());
    run.assert_created(&expected).await;
}

#[tokio::test]
async fn a_200_without_a_redirect_fails_with_a_reason_and_creates_nothing() {
    let run = wikipedia_todo(Answer::Page).await;

    let stderr = one_line_failure(&run.output);
    assert!(stderr.starts_with("cronjobs wikipedia-todo: "), "{stderr}");
    assert!(
        stderr.contains("answered 200 instead of redirecting"),
        "{stderr}"
    );
    assert!(run.app.texts().await.is_empty());
    assert_eq!(
        run.articles.requests(),
        1,
        "a missing redirect is not retried"
    );
}

#[tokio::test]
async fn an_app_refusing_the_token_fails_with_a_reason_and_creates_nothing() {
    let app = TodoApp::spawn().await;
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Rust")).await;
    let mut env = app.job_env(&articles);
    env.retain(|(name, _)| *name != "API_TOKEN");
    env.push(("API_TOKEN", "not-the-token".to_owned()));

    let output = cronjobs(&["wikipedia-todo"], &env).await;

    let stderr = one_line_failure(&output);
    assert!(stderr.contains("refused the token (401)"), "{stderr}");
    assert!(stderr.contains("check API_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("not-the-token"),
        "never echo a secret: {stderr}"
    );
    assert!(app.texts().await.is_empty());
}

#[tokio::test]
async fn a_temporarily_unavailable_source_is_retried_with_backoff() {
    let run = wikipedia_todo(Answer::UnavailableThenRedirect(
        2,
        "https://en.wikipedia.org/wiki/Backoff",
    ))
    .await;

    run.assert_created("Read https://en.wikipedia.org/wiki/Backoff")
        .await;
    assert_eq!(run.articles.requests(), 3);
}

#[tokio::test]
async fn an_article_url_too_long_for_a_todo_is_refused_not_cut() {
    let long: &'static str = Box::leak(
        format!("https://en.wikipedia.org/wiki/{}", "Long_title_".repeat(12)).into_boxed_str(),
    );
    let run = wikipedia_todo(Answer::Redirect(long)).await;

    let stderr = one_line_failure(&run.output);
    assert!(
        stderr.contains("not creating a todo with a cut-off link"),
        "{stderr}"
    );
    assert!(stderr.contains(long), "{stderr}");
    assert!(run.app.texts().await.is_empty());
}

#[tokio::test]
async fn a_missing_variable_is_named() {
    let output = cronjobs(&["wikipedia-todo"], &[("API_TOKEN", "t".to_owned())]).await;

    let stderr = one_line_failure(&output);
    assert_eq!(
        stderr.trim_end(),
        "cronjobs wikipedia-todo: TODO_API_URL is not set; see the configuration table in the README"
    );
}

#[tokio::test]
async fn an_unreachable_app_fails_after_retrying() {
    let articles =
        ArticleServer::start(Answer::Redirect("https://en.wikipedia.org/wiki/Nowhere")).await;
    let port = test_support::free_port();

    let output = cronjobs(
        &["wikipedia-todo"],
        &[
            ("TODO_API_URL", format!("http://127.0.0.1:{port}")),
            ("API_TOKEN", "t".to_owned()),
            ("RANDOM_ARTICLE_URL", articles.random_url()),
        ],
    )
    .await;

    let stderr = one_line_failure(&output);
    assert!(stderr.contains("cannot reach the todo API"), "{stderr}");
    assert_eq!(articles.requests(), 1, "only the failed step is retried");
}
