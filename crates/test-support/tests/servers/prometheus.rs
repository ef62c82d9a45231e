//! The private Prometheus: started on a free port, ready, and scraping what
//! it was given with the labels it was given.

use std::time::Duration;

use test_support::{Prometheus, ScrapeTarget, eventually, free_port};

#[tokio::test]
async fn prometheus_starts_ready_and_scrapes_its_targets_with_their_labels() {
    // Nothing listens on the target: its `up` series is 0, which is enough
    // to show the scrape and the labels.
    let target = ScrapeTarget::metrics(free_port(), &[("pod", "todo-app-x")]);
    let prometheus = Prometheus::scraping(&[target]).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let up = eventually(Duration::from_secs(20), "an `up` series", || async {
        let answer: serde_json::Value = http
            .get(format!("{}/api/v1/query", prometheus.url))
            .query(&[("query", r#"up{pod="todo-app-x"}"#)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let result = answer["data"]["result"].as_array()?.first()?.clone();
        Some(result)
    })
    .await
    .unwrap();

    assert_eq!(up["value"][1], "0", "{up}");
}
