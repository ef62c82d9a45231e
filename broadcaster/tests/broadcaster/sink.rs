//! The `broadcaster sink` process when whoever reads its stdout falls behind.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use test_support::free_port;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::helpers::{SECRET, eventually, sink_messages};

/// More messages than the pipe's 64 KiB and the sink's line queue hold.
const MESSAGES: usize = 8_000;

/// With stdout not read at all, every message is still answered at once and
/// kept for `GET /messages`; once stdout is read again, the lines that did
/// not fit are counted there. A `println!` in the handler stalled every
/// request as soon as the pipe was full (the bench's 128 deliveries in
/// flight sat unanswered for seconds).
#[tokio::test]
async fn a_reader_that_falls_behind_does_not_hold_up_the_sink() {
    let port = free_port();
    let mut sink = Command::new(Path::new(env!("CARGO_BIN_EXE_broadcaster")))
        .args(["sink", "--port", &port.to_string(), "--secret", SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the sink starts");
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/hook");
    eventually(Duration::from_secs(30), "the sink to listen", || async {
        let health = http.get(format!("http://127.0.0.1:{port}/healthz"));
        health.send().await.ok().filter(|r| r.status().is_success())
    })
    .await
    .unwrap();

    // Unsigned: answered 401, and printed like any other message.
    let sent = futures::stream::iter(0..MESSAGES)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let sent = http
                    .post(url)
                    .timeout(Duration::from_secs(5))
                    .body(format!(r#"{{"message": "message {i}"}}"#))
                    .send()
                    .await;
                sent.map_or(0, |response| response.status().as_u16())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>();
    // Unread stdout used to stall the sink for good: fail, don't hang.
    let answered = tokio::time::timeout(Duration::from_secs(60), sent)
        .await
        .expect("every message answered within a minute");
    let unanswered = answered.iter().filter(|&&status| status != 401).count();
    assert_eq!(unanswered, 0, "of {MESSAGES} messages, with stdout unread");
    let kept = sink_messages(port).await.expect("GET /messages answers");
    assert_eq!(kept.len(), MESSAGES);

    // Read stdout again: the queued lines, then how many were skipped.
    let mut stdout = sink.stdout.take().expect("piped");
    let mut printed = String::new();
    let mut chunk = vec![0; 64 * 1024];
    let noted = tokio::time::timeout(Duration::from_secs(20), async {
        while !printed.contains("lines not printed") {
            let n = stdout.read(&mut chunk).await.expect("stdout reads");
            assert_ne!(n, 0, "stdout ended");
            printed.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
    .await;
    assert!(noted.is_ok(), "no count of skipped lines in:\n{printed}");
    assert!(printed.contains("message 0  ("), "{printed}");
}
