//! A fresh, empty database per test.

use anyhow::Context;
use reqwest::Url;
use sqlx::{Connection, Executor, PgConnection};

use crate::Postgres;

/// A new, empty database; keeps its private server (if any) alive.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name, `test_<uuid>`.
    pub name: String,
    _server: Option<Postgres>,
}

/// Creates a database `test_<uuid>` in the server `DATABASE_URL` points at,
/// or, when it is unset, in a private cluster started for this test.
///
/// A test that stops or restarts PostgreSQL needs a cluster of its own:
/// [`Postgres::start`], then [`ensure_database`] on its URL.
pub async fn test_database() -> anyhow::Result<TestDatabase> {
    let (server_url, server) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let postgres = tokio::task::spawn_blocking(Postgres::start)
                .await
                .context("PostgreSQL start-up task failed")??;
            (postgres.url(), Some(postgres))
        }
    };
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let url = ensure_database(&server_url, &name).await?;
    Ok(TestDatabase {
        url,
        name,
        _server: server,
    })
}

/// Creates database `name` in the server at `server_url` unless it exists,
/// and returns the URL of that database (the server URL with its path
/// replaced).
pub async fn ensure_database(server_url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = Url::parse(server_url).context("DATABASE_URL is not a valid URL")?;
    let mut connection = PgConnection::connect(server_url)
        .await
        .with_context(|| format!("failed to connect to PostgreSQL at {}", redact(&url)))?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut connection)
            .await
            .context("failed to look up databases")?;
    if !exists {
        // CREATE DATABASE takes no bind parameters; the name is quoted instead.
        let statement = format!(r#"create database "{}""#, name.replace('"', "\"\""));
        connection
            .execute(statement.as_str())
            .await
            .with_context(|| format!("failed to create database {name}"))?;
    }
    connection.close().await.ok();
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// The URL without its password, for error messages.
fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}
