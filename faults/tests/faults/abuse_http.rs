//! Bad input at the HTTP level against the real `todo-app` binary over a
//! socket: what a hostile or broken client can send is refused with a 4xx
//! (never a 5xx, a hang or a crash), stored text stays inert, and the JSON
//! API refuses missing and wrong tokens.

use std::time::Duration;

use faults::stack::{self, API_TOKEN};
use faults::{eventually, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn client() -> reqwest::Client {
    http(Duration::from_secs(20))
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_and_the_app_keeps_serving() -> anyhow::Result<()> {
    let stack = stack::start().await?;
    let base = stack.app.url();
    let client = client();
    let api = format!("{base}/api/todos");

    // Oversized bodies: declared, and streamed without a length.
    let big = "x".repeat(64 * 1024);
    let declared = client
        .post(&api)
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body(format!(r#"{{"text":"{big}"}}"#))
        .send()
        .await?;
    assert_eq!(declared.status(), 413);
    let streamed = raw_chunked_post(stack.app.port, 64 * 1024).await?;
    assert!(
        streamed.starts_with("HTTP/1.1 413"),
        "a chunked body over the limit: {streamed}"
    );

    // A very long URL.
    refused(
        client.get(format!("{base}/{}", "a".repeat(60_000))),
        "long URL",
    )
    .await?;

    // Invalid UTF-8 in a JSON body and in a form body.
    let json = refused(
        client
            .post(&api)
            .bearer_auth(API_TOKEN)
            .header("content-type", "application/json")
            .body(b"{\"text\":\"\xff\xfe\"}".to_vec()),
        "invalid UTF-8 JSON",
    )
    .await?;
    assert!(!json.text().await?.is_empty(), "the rejection says why");
    let form = client
        .post(format!("{base}/todos"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"text=%ff%fe".to_vec())
        .send()
        .await?;
    // The URL-encoded form standard decodes UTF-8 lossily (invalid bytes
    // become U+FFFD), so the form may be accepted; it must not be a 5xx.
    assert!(
        form.status().is_success() || form.status().is_client_error(),
        "invalid UTF-8 form: {}",
        form.status()
    );

    // Tokens: missing, wrong, and right but for one byte.
    for token in [None, Some("wrong"), Some(&API_TOKEN[..API_TOKEN.len() - 1])] {
        let mut request = client.post(&api).json(&serde_json::json!({ "text": "x" }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await?.status(), 401, "token {token:?}");
    }

    // Markup and SQL metacharacters are stored verbatim and served inert.
    let text = r#"<script>alert(1)</script>'; drop table todos; --"#;
    let created = client
        .post(&api)
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await?;
    assert_eq!(created["text"], text);
    // An API client carries no wrote-cookie, so the replica may serve the
    // page it cached (after the form post above) until it hears of the
    // change: milliseconds, at most the page cache's maximum age.
    let page = eventually(
        Duration::from_secs(5),
        "the page to list the todo",
        || async {
            let page = client.get(format!("{base}/")).send().await.ok()?;
            let page = page.text().await.ok()?;
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                .then_some(page)
        },
    )
    .await?;
    assert!(
        !page.contains("<script>alert(1)"),
        "the page escapes todo text"
    );
    let id = created["id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(30),
        "the webhook for the todo",
        || async {
            stack
                .receiver()
                .seen()
                .iter()
                .any(|s| s.todo_id().map(|t| t.to_string()).as_deref() == Some(id.as_str()))
                .then_some(())
        },
    )
    .await?;

    // Still serving.
    let ready = client.get(format!("{base}/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    Ok(())
}

/// A slow-loris client (headers trickled, never finished) must not hold a
/// connection for ever.
///
/// The app's 8 s request timeout only starts once the headers are complete;
/// the header read timeout (`app::server`) is what closes this connection.
#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() -> anyhow::Result<()> {
    let stack = stack::start().await?;
    let mut socket = TcpStream::connect(("127.0.0.1", stack.app.port)).await?;
    socket
        .write_all(b"POST /api/todos HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await?;
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    // The app allows 10 s for a request's headers; 5 s of reads on top.
    let limit = Duration::from_secs(15);
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => break, // an error answer (408) and a close both free it
            Err(_) if started.elapsed() < limit => {
                // Trickle one more header line, as a slow-loris does.
                socket.write_all(b"X-Slow: 1\r\n").await?;
            }
            Err(_) => anyhow::bail!("the connection is still open after {limit:?}"),
        }
    }
    println!(
        "slow-loris connection closed after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sends `request` and checks the app refused it as the client's fault
/// (a 4xx, never a 5xx); `what` names the abuse in the failure message.
async fn refused(
    request: reqwest::RequestBuilder,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let response = request.send().await?;
    assert!(
        response.status().is_client_error(),
        "{what}: {}",
        response.status()
    );
    Ok(response)
}

/// Posts `size` bytes to the JSON API with chunked encoding (no length
/// given up front); returns the status line.
async fn raw_chunked_post(port: u16, size: usize) -> anyhow::Result<String> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "POST /api/todos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_TOKEN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await?;
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    for _ in 0..size / 1024 {
        // The server may answer and close before the body ends.
        if socket.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !answer.windows(2).any(|w| w == b"\r\n") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
