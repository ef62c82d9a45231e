//! Reading the app's `/metrics`, as the abuse scenarios check what a
//! request did (a cache hit, a refused stream) by its counters.

/// The value of `series` (its name with any labels, as the exposition
/// writes it) in the `/metrics` under `base`; 0 when the app has not
/// written it yet, as Prometheus counters start.
pub async fn metric(client: &reqwest::Client, base: &str, series: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or("0");
    Ok(value.trim().parse()?)
}
