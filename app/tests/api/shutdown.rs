//! The real binary: start-up errors, graceful shutdown on SIGTERM, and
//! what it logs.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use test_support::free_port;

use crate::helpers::{AppProcess, spawn_binary};

const BINARY: &str = env!("CARGO_BIN_EXE_todo-app");

#[tokio::test]
async fn a_missing_variable_stops_start_up_with_its_name() {
    let output = tokio::process::Command::new(BINARY)
        .env_clear()
        // Under `cargo xtask coverage` the child writes its profile there.
        .envs(std::env::var_os("LLVM_PROFILE_FILE").map(|file| ("LLVM_PROFILE_FILE", file)))
        .env("NATS_URL", "nats://127.0.0.1:4222")
        .output()
        .await
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_then_exits_0() {
    let mut app = spawn_binary(&[("API_TOKEN", "t".into())]).await;
    let port = app.port;

    // A slow client: headers and half the body now, the rest after SIGTERM.
    // `Expect: 100-continue` makes the server say when the handler starts
    // reading the body: from then on the request is in flight.
    let body = "text=finished+after+SIGTERM";
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /todos HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let continue_line = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut answer = vec![0; continue_line.len()];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, continue_line, "the handler reads the body");
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    stream.flush().await.unwrap();
    let pool = sqlx::PgPool::connect(app.database_url()).await.unwrap();

    app.service.terminate();
    wait_for_log(&app, "shutdown requested").await;
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();

    assert!(response.starts_with("HTTP/1.1 303"), "{response}");
    let status = app.service.wait(Duration::from_secs(10)).await.unwrap();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        app.service.output()
    );
    let stored: i64 =
        sqlx::query_scalar("select count(*) from todos where text = 'finished after SIGTERM'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 1);
    // New connections are refused once it is gone.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

/// Waits until the app has logged `message`.
async fn wait_for_log(app: &AppProcess, message: &str) {
    app.service
        .wait_for_output(message, Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn with_an_admin_port_sigterm_closes_both_ports_and_exits_0() {
    let admin = free_port();
    let mut app = spawn_binary(&[("ADMIN_PORT", admin.to_string())]).await;
    let public = app.port;
    assert!(TcpStream::connect(("127.0.0.1", public)).await.is_ok());

    app.service.terminate();
    let status = app.service.wait(Duration::from_secs(10)).await.unwrap();

    assert!(
        status.success(),
        "exit {status:?}\n{}",
        app.service.output()
    );
    for port in [public, admin] {
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    }
}

#[tokio::test]
async fn each_change_is_logged_with_the_id_of_the_request_that_made_it() {
    let mut app = spawn_binary(&[("LOG_FORMAT", "json".into())]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |method: reqwest::Method, path: &str, request_id: &str| {
        client
            .request(method, app.url(path))
            .header("sec-fetch-site", "same-origin")
            .header("x-request-id", request_id)
    };

    let created = page(reqwest::Method::POST, "/todos", "req-create")
        .form(&[("text", "log me")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let pool = sqlx::PgPool::connect(app.database_url()).await.unwrap();
    let id: uuid::Uuid = sqlx::query_scalar("select id from todos where text = 'log me'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let path = format!("/todos/{id}");
    let updated = page(reqwest::Method::PUT, &path, "req-update")
        .form(&[("done", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 303);
    let deleted = page(reqwest::Method::DELETE, &path, "req-delete")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 303);
    app.service.terminate();
    app.service.wait(Duration::from_secs(10)).await.unwrap();

    let output = app.service.output();
    for (message, request_id) in [
        ("todo created", "req-create"),
        ("todo updated", "req-update"),
        ("todo deleted", "req-delete"),
    ] {
        assert!(
            output
                .lines()
                .any(|line| line.contains(message) && line.contains(request_id)),
            "no `{message}` line with {request_id}:\n{output}"
        );
    }
}
