//! A private Prometheus on loopback, scraping given targets every second
//! with the labels a PodMonitor would give their series.

use std::path::PathBuf;

use anyhow::Context;
use tempfile::TempDir;

use crate::{Service, start_on_a_free_port_async};

/// One scrape target: a loopback port, the path of its metrics, and the
/// labels its series get (as a PodMonitor adds `namespace`, `pod` and the
/// pod labels it copies).
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    pub port: u16,
    pub path: String,
    pub labels: Vec<(String, String)>,
}

impl ScrapeTarget {
    /// `/metrics` on `port`, with `labels`.
    pub fn metrics(port: u16, labels: &[(&str, &str)]) -> ScrapeTarget {
        ScrapeTarget {
            port,
            path: "/metrics".to_owned(),
            labels: labels
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }
}

/// A running Prometheus; stopped and its data removed when dropped.
pub struct Prometheus {
    pub url: String,
    _service: Service,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping every target each second (the cluster's
    /// interval is compressed; rules and queries are unchanged) and returns
    /// once it is ready.
    pub async fn scraping(targets: &[ScrapeTarget]) -> anyhow::Result<Prometheus> {
        let dir = TempDir::new().context("creating Prometheus's folder")?;
        let jobs: String = targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let labels: String = target
                    .labels
                    .iter()
                    .map(|(name, value)| format!("          {name}: {value:?}\n"))
                    .collect();
                format!(
                    "  - job_name: target-{index}\n    metrics_path: {path:?}\n    static_configs:\n\
                     \x20     - targets: [\"127.0.0.1:{port}\"]\n        labels:\n{labels}",
                    path = target.path,
                    port = target.port,
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n{jobs}"
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config)
            .with_context(|| format!("writing {}", config_file.display()))?;
        let program = prometheus_path().context(
            "prometheus is not installed (Debian package `prometheus`; `cargo xtask install`)",
        )?;
        // Another port when the picked one was taken meanwhile.
        let (port, service) = start_on_a_free_port_async("Prometheus", |port| {
            let args = [
                format!("--config.file={}", config_file.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ];
            let program = program.clone();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let ready = format!("http://127.0.0.1:{port}/-/ready");
                Ok((port, Service::spawn(&program, &args, &[], &ready).await?))
            }
        })
        .await?;
        Ok(Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            _service: service,
            _dir: dir,
        })
    }
}

/// Where Debian's package (or a manual install) puts the binary.
fn prometheus_path() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}
