//! Live-update streams cannot be opened without bound: against the real
//! `todo-app` binary, one process opens the replica's cap plus 1,000
//! streams (each as another client, through the proxy header), and the
//! extra are refused with 503 and `Retry-After` while pages are served as
//! fast as ever; one client alone is held to its own cap.

use std::time::Duration;

use faults::http;
use faults::metrics::metric;
use faults::stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const CAP: usize = 300;
const EXTRA: usize = 1_000;
const PER_CLIENT: usize = 32;

/// What the server answered to `GET /events`, read up to the end of the
/// headers; the stream itself stays open as long as `connection` lives.
struct Opened {
    head: String,
    _connection: TcpStream,
}

async fn open_stream(port: u16, client: &str) -> anyhow::Result<Opened> {
    let mut connection = TcpStream::connect(("127.0.0.1", port)).await?;
    connection
        .write_all(
            format!(
                "GET /events HTTP/1.1\r\nHost: docket\r\nAccept: text/event-stream\r\nX-Forwarded-For: {client}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read =
            tokio::time::timeout(Duration::from_secs(20), connection.read(&mut byte)).await??;
        anyhow::ensure!(read == 1, "the connection closed before the headers ended");
        head.push(byte[0]);
    }
    Ok(Opened {
        head: String::from_utf8_lossy(&head).into_owned(),
        _connection: connection,
    })
}

#[tokio::test]
async fn streams_past_the_caps_are_refused_and_pages_stay_fast() -> anyhow::Result<()> {
    let stack = stack::start_with_app(
        &[],
        &[
            ("LIVE_MAX_STREAMS", &CAP.to_string()),
            ("LIVE_MAX_STREAMS_PER_CLIENT", &PER_CLIENT.to_string()),
            ("CLIENT_IP_HEADER", "X-Forwarded-For"),
        ],
    )
    .await?;
    let base = stack.app.url();
    let port = stack.app.port;
    let client = http(Duration::from_secs(20));

    // The cap plus 1,000, each from its own address, in order.
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for i in 0..CAP + EXTRA {
        let address = format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256);
        let opened = open_stream(port, &address).await?;
        if opened.head.starts_with("HTTP/1.1 200") {
            open.push(opened);
        } else {
            refused.push(opened);
        }
    }
    assert_eq!(open.len(), CAP, "exactly the cap is served");
    assert_eq!(refused.len(), EXTRA);
    for opened in &refused {
        let head = opened.head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 503"), "{head}");
        assert!(head.contains("\r\nretry-after: 5\r\n"), "{head}");
    }
    assert_eq!(
        metric(&client, &base, "live_streams_open").await?,
        CAP as f64
    );
    assert_eq!(
        metric(
            &client,
            &base,
            "live_streams_refused_total{cap=\"replica\"}"
        )
        .await?,
        EXTRA as f64
    );

    // Pages are served as usual meanwhile.
    let mut took = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let page = client.get(&base).send().await?;
        assert_eq!(page.status(), 200);
        page.bytes().await?;
        took.push(started.elapsed());
    }
    took.sort();
    let p99 = took[took.len() * 99 / 100 - 1];
    assert!(
        p99 < Duration::from_millis(50),
        "GET / p99 {p99:?} with {CAP} streams open"
    );

    // Closing streams frees their places.
    drop(open);
    faults::eventually(
        Duration::from_secs(10),
        "the closed streams to be counted out",
        || async { (metric(&client, &base, "live_streams_open").await.ok()? == 0.0).then_some(()) },
    )
    .await?;

    // One client alone: its own cap, then 503 with a longer Retry-After.
    let mut own = Vec::new();
    for _ in 0..PER_CLIENT {
        let opened = open_stream(port, "192.0.2.1").await?;
        assert!(opened.head.starts_with("HTTP/1.1 200"), "{}", opened.head);
        own.push(opened);
    }
    let over = open_stream(port, "192.0.2.1").await?;
    let head = over.head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("\r\nretry-after: 30\r\n"), "{head}");
    // Another address is another client.
    let other = open_stream(port, "192.0.2.2").await?;
    assert!(other.head.starts_with("HTTP/1.1 200"), "{}", other.head);
    Ok(())
}
