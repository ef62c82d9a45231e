//! Fetching pages from a real web server on loopback: the limits on time,
//! size and type, each with the reason the status will give.

mod support;

use std::time::Duration;

use dummysite::{FetchError, Fetcher, WebsiteUrl};
use support::{LIMIT, PAGE, Site};

async fn fetch(site: &Site, path: &str) -> Result<dummysite::Page, FetchError> {
    let fetcher = Fetcher::new(Duration::from_secs(1), LIMIT);
    fetcher
        .fetch(&WebsiteUrl::parse(&site.url(path)).unwrap())
        .await
}

#[tokio::test]
async fn an_html_page_is_fetched_whole() {
    let site = Site::start().await;
    let page = fetch(&site, "/page").await.unwrap();
    assert_eq!(page.body, PAGE.as_bytes());
    assert_eq!(page.content_type, "text/html; charset=utf-8");
}

#[tokio::test]
async fn each_failure_has_its_reason() {
    let site = Site::start().await;
    for (path, reason) in [
        ("/broken", "HttpStatus"),
        ("/missing", "HttpStatus"),
        ("/json", "NotHtml"),
        ("/huge", "TooLarge"),
        ("/endless", "TooLarge"),
        ("/slow", "Timeout"),
    ] {
        let error = fetch(&site, path).await.unwrap_err();
        assert_eq!(error.reason(), reason, "{path}: {error}");
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let fetcher = Fetcher::new(Duration::from_secs(1), LIMIT);
    let url = WebsiteUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let error = fetcher.fetch(&url).await.unwrap_err();
    assert_eq!(error.reason(), "Unreachable", "{error}");
}
