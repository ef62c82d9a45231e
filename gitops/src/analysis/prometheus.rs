//! Instant queries through Prometheus's HTTP API, as Argo Rollouts' provider
//! makes them: a vector becomes the list of its sample values.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// A Prometheus server, e.g. `http://127.0.0.1:9090`.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

/// One sample of an instant vector: its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The value of `label`, or "" when the series has none.
    pub fn label(&self, label: &str) -> &str {
        self.labels.get(label).map_or("", String::as_str)
    }
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
        let data = self.data(promql).await?;
        match data["resultType"].as_str() {
            Some("vector") => Ok(samples(&data, promql)?
                .into_iter()
                .map(|sample| sample.value)
                .collect()),
            Some("scalar") => Ok(vec![number(&data["result"])?]),
            other => bail!("unsupported result type {other:?} for `{promql}`"),
        }
    }

    /// The samples of a query whose result is an instant vector, with their
    /// labels (which pod, which commit).
    pub async fn vector(&self, promql: &str) -> anyhow::Result<Vec<Sample>> {
        let data = self.data(promql).await?;
        match data["resultType"].as_str() {
            Some("vector") => samples(&data, promql),
            other => bail!("`{promql}` is not an instant vector but {other:?}"),
        }
    }

    /// The `data` of a successful answer.
    async fn data(&self, promql: &str) -> anyhow::Result<Value> {
        let mut body: Value = self
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
        Ok(body["data"].take())
    }
}

fn samples(data: &Value, promql: &str) -> anyhow::Result<Vec<Sample>> {
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|series| {
            let labels = match &series["metric"] {
                Value::Null => BTreeMap::new(),
                metric => serde_json::from_value(metric.clone())
                    .with_context(|| format!("the labels of a sample of `{promql}`"))?,
            };
            Ok(Sample {
                labels,
                value: number(&series["value"])?,
            })
        })
        .collect()
}

/// The value of a `[timestamp, "value"]` pair.
fn number(sample: &Value) -> anyhow::Result<f64> {
    let text = sample[1].as_str().context("a sample without a value")?;
    text.parse::<f64>()
        .with_context(|| format!("sample value `{text}`"))
}
