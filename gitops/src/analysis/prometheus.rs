//! Instant queries through Prometheus's HTTP API, as Argo Rollouts' provider
//! makes them: a vector becomes the list of its sample values.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// A Prometheus server, e.g. `http://127.0.0.1:9090`.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

impl Prometheus {
    pub fn new(base: impl Into<String>) -> anyhow::Result<Prometheus> {
        Ok(Prometheus {
            base: base.into().trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
        })
    }

    /// `GET /api/v1/query?query=…`: the values of the resulting vector
    /// (NaN included), or the one value of a scalar.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<f64>> {
        let body: Value = self
            .client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .await
            .context("querying Prometheus")?
            .json()
            .await
            .context("reading Prometheus's answer")?;
        if body["status"] != "success" {
            bail!("Prometheus refused `{promql}`: {body}");
        }
        let number = |sample: &Value| -> anyhow::Result<f64> {
            let text = sample[1].as_str().context("a sample without a value")?;
            text.parse::<f64>()
                .with_context(|| format!("sample value `{text}`"))
        };
        let data = &body["data"];
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|series| number(&series["value"]))
                .collect(),
            Some("scalar") => Ok(vec![number(&data["result"])?]),
            other => bail!("unsupported result type {other:?} for `{promql}`"),
        }
    }
}
