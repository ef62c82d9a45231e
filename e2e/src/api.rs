//! The app's JSON API, for arranging data and for cleaning up after a story.
//!
//! Stories act through the browser; the API is how they set up what a story
//! starts from (faster, and not the thing under test) and how every todo a
//! test made is removed afterwards, so runs against a shared staging
//! environment leave nothing behind.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

/// Pages of 200 read while looking for a test's todos; ours are the newest,
/// so they sit on the first pages of a busy environment.
const MAX_PAGES: usize = 20;

/// A todo as the API returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Todo {
    pub id: String,
    pub text: String,
    pub done: bool,
}

#[derive(Deserialize)]
struct TodoPage {
    todos: Vec<Todo>,
    next_cursor: Option<String>,
}

/// A client for one app, with its write token.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base_url: Url,
    token: String,
}

impl Api {
    pub fn new(base_url: Url, token: String) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("failed to build the API client")?;
        Ok(Api {
            http,
            base_url,
            token,
        })
    }

    /// Creates a todo.
    pub async fn create(&self, text: &str) -> anyhow::Result<Todo> {
        let response = self
            .http
            .post(self.url("api/todos")?)
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .context("POST /api/todos failed")?;
        if response.status() != StatusCode::CREATED {
            bail!("POST /api/todos answered {}", describe(response).await);
        }
        response
            .json()
            .await
            .context("POST /api/todos answered unreadable JSON")
    }

    /// Every todo whose text contains `marker`, newest first.
    pub async fn todos_containing(&self, marker: &str) -> anyhow::Result<Vec<Todo>> {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = self.url("api/todos")?;
            url.query_pairs_mut().append_pair("limit", "200");
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            // With `AUTH=oidc` reads need the token too.
            let response = self
                .http
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .context("GET /api/todos failed")?;
            if response.status() != StatusCode::OK {
                bail!("GET /api/todos answered {}", describe(response).await);
            }
            let page: TodoPage = response
                .json()
                .await
                .context("GET /api/todos answered unreadable JSON")?;
            found.extend(page.todos.into_iter().filter(|t| t.text.contains(marker)));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(found)
    }

    /// Deletes a todo; one that is already gone counts as deleted.
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .delete(self.url(&format!("api/todos/{id}"))?)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("DELETE /api/todos/{id} failed"))?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            _ => bail!(
                "DELETE /api/todos/{id} answered {}",
                describe(response).await
            ),
        }
    }

    /// Deletes every todo whose text contains `marker`; returns how many.
    pub async fn delete_containing(&self, marker: &str) -> anyhow::Result<usize> {
        let todos = self.todos_containing(marker).await?;
        for todo in &todos {
            self.delete(&todo.id).await?;
        }
        Ok(todos.len())
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base_url
            .join(path)
            .with_context(|| format!("cannot join {path} to {}", self.base_url))
    }
}

async fn describe(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    format!("{status}: {}", body.trim())
}
