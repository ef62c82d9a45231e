//! `bench-reference`: the smallest honest server for Docket's two hot paths,
//! measured by `cargo xtask bench` interleaved with Docket in the same run.
//!
//! Absolute requests/s drift with the machine; the ratio to this server does
//! not, so the bench's targets are stated against it. It is deliberately
//! plain: axum + sqlx, a pool the size of Docket's, no middleware, no
//! metrics, no outbox. `GET /` selects the newest 50 rows and renders them
//! as an HTML list into one string; `POST /todos` inserts one row from a
//! form field `text`.
//!
//! It reads and writes a table of its own with the shape of Docket's
//! (columns, checks, indexes) but not its triggers, so an insert is a bare
//! insert; the bench fills it with the same rows as Docket's.
//!
//! Environment: `DATABASE_URL` (required), `REFERENCE_TABLE` (required, the
//! table, already created), `PORT` (required).

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
    let table = env("REFERENCE_TABLE")?;
    if !table.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(format!(
            "REFERENCE_TABLE must be a plain lower-case name, not {table:?}"
        ));
    }
    let queries = Queries {
        page: format!("select id, text, done from {table} order by id desc limit 50").leak(),
        insert: format!("insert into {table} (id, text) values ($1, $2)").leak(),
    };
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
        .with_state((pool, queries));
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("serving: {e}"))
}

/// The two statements, naming the table once at start-up.
#[derive(Clone, Copy)]
struct Queries {
    page: &'static str,
    insert: &'static str,
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

async fn page(State((pool, queries)): State<(PgPool, Queries)>) -> Result<String, StatusCode> {
    let todos: Vec<Todo> = sqlx::query_as(queries.page)
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

async fn insert(
    State((pool, queries)): State<(PgPool, Queries)>,
    Form(form): Form<NewTodo>,
) -> StatusCode {
    let result = sqlx::query(queries.insert)
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
