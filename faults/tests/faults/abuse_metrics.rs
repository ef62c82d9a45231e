//! Made-up methods and paths cannot grow `/metrics` or the app: against the
//! real `todo-app` binary, 10,000 requests with random methods (standard
//! ones and made-up tokens) on random paths (unmatched, and under the
//! routes that take an id or a file name) leave the scrape with exactly the
//! series it had, and the process's resident memory about where it was.
//!
//! Before counting, one request of each kind (method class by path shape)
//! is sent, so every series those kinds can add exists; after that no
//! request may add one. A label taken from the raw method or path would
//! add a series for nearly every request.

use std::time::Duration;

use faults::stack;
use futures::StreamExt;
use reqwest::Method;

const REQUESTS: usize = 10_000;
/// How many requests are in flight at once.
const CONCURRENCY: usize = 16;
/// The most the app's resident memory may grow over the 10,000 requests.
/// Measured (a debug build, which the suite runs): between -1.9 and +1.8 MiB
/// in 7 runs, the allocator's noise; a new series per request (a counter
/// and a 13-bucket histogram, about 1 KiB or more each) or any per-path
/// entry kept that large would pass the limit. A leak of under about 800
/// bytes a request would not: this guards against growth per request, not
/// every leak.
const RSS_GROWTH_LIMIT_KIB: u64 = 8 * 1024;

/// The standard methods the metrics name, and made-up ones (`None`).
const METHODS: [Option<Method>; 9] = [
    Some(Method::GET),
    Some(Method::HEAD),
    Some(Method::POST),
    Some(Method::PUT),
    Some(Method::DELETE),
    Some(Method::PATCH),
    Some(Method::OPTIONS),
    Some(Method::TRACE),
    None,
];

/// Where random paths go: nowhere, and into the routes with a parameter.
const SHAPES: [&str; 4] = ["/{}/{}", "/todos/{}", "/api/todos/{}", "/static/{}"];

/// Random lowercase letters, `len` of them: never a number, so an id in a
/// path never parses and every request of one kind is answered alike.
fn letters(random: &[u8]) -> String {
    random.iter().map(|b| char::from(b'a' + b % 26)).collect()
}

/// A random request of the kind `(method, shape)`: a made-up method is
/// 3 to 12 random capital letters.
fn request(method: usize, shape: usize) -> (Method, String) {
    let random = *uuid::Uuid::new_v4().as_bytes();
    let method = METHODS[method].clone().unwrap_or_else(|| {
        let len = 3 + usize::from(random[0]) % 10;
        let token: String = random[1..=len]
            .iter()
            .map(|b| char::from(b'A' + b % 26))
            .collect();
        Method::from_bytes(token.as_bytes()).expect("capital letters are a method")
    });
    let path = SHAPES[shape]
        .replacen("{}", &letters(&random[4..12]), 1)
        .replacen("{}", &letters(&random[12..16]), 1);
    (method, path)
}

/// The sample lines of a scrape: one per series (and per bucket).
fn series(scrape: &str) -> Vec<&str> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.rsplit_once(' ').map_or(line, |(name, _)| name))
        .collect()
}

/// The requests counted in a scrape, all series together.
fn requests_counted(scrape: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

#[tokio::test]
async fn random_methods_and_paths_add_no_series_and_no_memory() -> anyhow::Result<()> {
    let stack = stack::start().await?;
    let base = stack.app.url();
    let pid = stack
        .app
        .service
        .as_ref()
        .expect("the stack started the app")
        .pid();
    // Keeps connections, unlike the suite's `http`: 10,000 fresh ones would
    // measure the kernel's sockets, not the app.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()?;
    let send = |(method, path): (Method, String)| {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        async move {
            let response = client.request(method.clone(), &url).send().await?;
            let status = response.status();
            response.bytes().await?;
            anyhow::ensure!(
                !status.is_server_error(),
                "{method} {url} answered {status}"
            );
            anyhow::Ok(())
        }
    };
    let scrape = || async {
        client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    };

    // One of each kind, so that every series a kind adds is there.
    for method in 0..METHODS.len() {
        for shape in 0..SHAPES.len() {
            send(request(method, shape)).await?;
        }
    }
    let before = scrape().await?;
    let rss_before = rss_kib(pid)?;

    let kinds = (0..REQUESTS).map(|_| {
        let random = uuid::Uuid::new_v4().as_bytes()[0];
        let method = usize::from(random) % METHODS.len();
        let shape = usize::from(random / 16) % SHAPES.len();
        request(method, shape)
    });
    let failures: Vec<anyhow::Error> = futures::stream::iter(kinds)
        .map(send)
        .buffer_unordered(CONCURRENCY)
        .filter_map(|sent| async move { sent.err() })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let after = scrape().await?;
    let rss_after = rss_kib(pid)?;
    // They reached the app and were counted, made-up methods as `other`.
    assert_eq!(
        requests_counted(&after) - requests_counted(&before),
        REQUESTS as f64
    );
    assert!(before.contains(r#"method="other""#), "{before}");
    let (before, after) = (series(&before), series(&after));
    let new: Vec<&&str> = after.iter().filter(|line| !before.contains(line)).collect();
    eprintln!(
        "abuse_metrics: {} series before, {} after {REQUESTS} random requests; RSS {rss_before} KiB -> {rss_after} KiB ({:+} KiB)",
        before.len(),
        after.len(),
        rss_after as i64 - rss_before as i64
    );
    assert_eq!(before.len(), after.len(), "new series: {new:?}");
    assert!(new.is_empty(), "new series: {new:?}");
    assert!(
        rss_after <= rss_before + RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB over {REQUESTS} requests"
    );
    Ok(())
}
