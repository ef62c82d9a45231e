//! `bench-reference`: the smallest honest server for Docket's two hot paths,
//! measured by `cargo xtask bench` interleaved with Docket in the same run.
//!
//! Absolute requests/s drift with the machine; the ratio to this server does
//! not, so the bench's targets are stated against it. It is deliberately
//! plain: axum + sqlx, a pool the size of Docket's, no middleware, no
//! metrics, no outbox. `GET /` selects the same 50 rows the page shows and
//! renders them as an HTML list into one string; `POST /todos` inserts one
//! row from a form field `text`.
//!
//! Environment: `DATABASE_URL` (required, the schema already migrated by
//! Docket), `PORT` (required).

use std::fmt::Write;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Docket's pool size, so both servers get the same database concurrency.
const POOL_SIZE: u32 = 20;

#[tokio::main]
async fn main() -> Result<(), String> {
    let database_url = env("DATABASE_URL")?;
    let port: u16 = env("PORT")?
        .parse()
        .map_err(|e| format!("PORT is not a port number: {e}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect(&database_url)
        .await
        .map_err(|e| format!("cannot connect to DATABASE_URL: {e}"))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let app = Router::new()
        .route("/", get(page))
        .route("/todos", post(insert))
        .route("/readyz", get(|| async { "ok" }))
        .with_state(pool);
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("serving: {e}"))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} must be set"))
}

#[derive(sqlx::FromRow)]
struct Todo {
    id: uuid::Uuid,
    text: String,
    done: bool,
}

async fn page(State(pool): State<PgPool>) -> Result<String, StatusCode> {
    let todos: Vec<Todo> =
        sqlx::query_as("select id, text, done from todos order by id desc limit 50")
            .fetch_all(&pool)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let mut html = String::with_capacity(128 * todos.len() + 64);
    html.push_str("<ul>");
    for todo in &todos {
        let checked = if todo.done { " checked" } else { "" };
        // Writing into a String cannot fail.
        let _ = write!(
            html,
            r#"<li id="todo-{}"><input type="checkbox"{checked}> "#,
            todo.id
        );
        escape_into(&mut html, &todo.text);
        html.push_str("</li>");
    }
    html.push_str("</ul>");
    Ok(html)
}

#[derive(Deserialize)]
struct NewTodo {
    text: String,
}

async fn insert(State(pool): State<PgPool>, Form(form): Form<NewTodo>) -> StatusCode {
    let result = sqlx::query("insert into todos (id, text) values ($1, $2)")
        .bind(uuid::Uuid::now_v7())
        .bind(form.text)
        .execute(&pool)
        .await;
    match result {
        Ok(_) => StatusCode::CREATED,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// HTML-escapes user text, as any real page must.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        let mut out = String::new();
        escape_into(&mut out, r#"<b>"milk" & eggs</b>"#);
        assert_eq!(out, "&lt;b&gt;&quot;milk&quot; &amp; eggs&lt;/b&gt;");
    }
}
