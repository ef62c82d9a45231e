//! Canary analysis, proven on a real Prometheus.
//!
//! Two `todo-app` instances, "stable" and "canary", each with its own
//! database, are scraped every second by a private Prometheus that labels
//! their series the way the cluster's scrape config does (`namespace`,
//! `rollouts_pod_template_hash`). Traffic goes to both. The Rollout's first
//! analysis step is read from `kustomize/base/app/rollout.yaml`, its
//! templates from `analysis-templates.yaml`, args resolved as the Rollout
//! would, queries run through Prometheus's HTTP API, and the templates'
//! own conditions decide, as Argo Rollouts would. The templates' `[2m]`
//! windows stay as they are: with 1 s scrapes, `rate()` has samples after
//! a few seconds, so nothing about production's semantics is changed here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gitops::analysis::prometheus::Prometheus;
use gitops::analysis::template::{self, Cluster};
use gitops::analysis::{Phase, judge, verdict};
use tempfile::TempDir;
use test_support::{Service, free_port, test_database, test_nats, workspace_binary};

const NAMESPACE: &str = "docket-analysis";
const STABLE: &str = "stable-6f7d9c";
const CANARY: &str = "canary-5b8c4d";
const ERROR_RATIO: &str = "todo-app-error-ratio/error-ratio";
const LATENCY: &str = "todo-app-latency-p99/latency-p99";
/// Scrapes of canary traffic Prometheus must hold before anything is judged.
const WARM_UP_SCRAPES: u32 = 5;

/// How the canary misbehaves (`todo-app --test-faults`).
struct Faults {
    error_percent: u32,
    delay_ms: u32,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_passes_both_analyses() {
    analyse(
        None,
        &[
            (ERROR_RATIO, Phase::Successful),
            (LATENCY, Phase::Successful),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_answering_5xx_fails_the_error_ratio_analysis() {
    let faults = Faults {
        error_percent: 30,
        delay_ms: 0,
    };
    analyse(
        Some(faults),
        &[(ERROR_RATIO, Phase::Failed), (LATENCY, Phase::Successful)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_canary_fails_the_latency_analysis() {
    let faults = Faults {
        error_percent: 0,
        delay_ms: 800,
    };
    analyse(
        Some(faults),
        &[(ERROR_RATIO, Phase::Successful), (LATENCY, Phase::Failed)],
    )
    .await;
}

/// Runs stable and canary under traffic, then runs the Rollout's first
/// analysis step as an AnalysisRun would and checks each metric's verdict.
/// Also checks that the same analysis of the stable pods passes, so a
/// verdict is about the canary only.
async fn analyse(faults: Option<Faults>, expected: &[(&str, Phase)]) {
    let nats = test_nats().unwrap();
    let stable = start_app(&nats.url, None).await;
    let canary = start_app(&nats.url, faults.as_ref()).await;
    let prometheus = start_prometheus(stable.port, canary.port).await;
    let client = Prometheus::new(prometheus.url.clone()).unwrap();

    let running = Arc::new(AtomicBool::new(true));
    let traffic: Vec<_> = [stable.port, canary.port]
        .into_iter()
        .flat_map(|port| (0..4).map(move |_| port))
        .map(|port| tokio::spawn(drive_traffic(port, running.clone())))
        .collect();

    wait_for_targets(&client).await;
    // Judge only once Prometheus holds several scrapes of the canary serving
    // pages (not only its own scrapes): a quiet canary passes vacuously, and
    // a verdict on the first sample or two would be noise.
    for metric in ["http_requests_total", "http_request_duration_seconds_count"] {
        let seen = format!(
            "min(count_over_time({metric}{{namespace=\"{NAMESPACE}\", rollouts_pod_template_hash=\"{CANARY}\", route=\"/\"}}[2m])) >= {WARM_UP_SCRAPES}"
        );
        poll(&client, &seen, Duration::from_secs(45), |values| {
            !values.is_empty()
        })
        .await;
    }

    let cluster = Cluster {
        namespace: NAMESPACE.into(),
        stable_hash: STABLE.into(),
        canary_hash: CANARY.into(),
    };
    let root = test_support::workspace_root();
    let read =
        |file: &str| std::fs::read_to_string(root.join("kustomize/base/app").join(file)).unwrap();
    let templates = template::templates(&read("analysis-templates.yaml")).unwrap();
    let steps = template::rollout_steps(&read("rollout.yaml"), &cluster).unwrap();
    let step = steps.first().expect("the Rollout has an analysis step");
    let metrics: Vec<_> = step
        .templates
        .iter()
        .flat_map(|name| template::metrics(&templates[name], &step.args).unwrap())
        .collect();
    assert_eq!(metrics.len(), 2, "both templates measured: {metrics:?}");
    assert!(
        metrics
            .iter()
            .all(|m| m.query.contains(CANARY) && m.query.contains(NAMESPACE))
    );

    // Each metric's `count` measurements, judged with its limits; the
    // templates' `interval` (1m) is compressed to 1 s, the one liberty taken.
    let mut verdicts = BTreeMap::new();
    let mut log = Vec::new();
    let mut phases: BTreeMap<String, Vec<Phase>> = BTreeMap::new();
    let rounds = metrics.iter().map(|m| m.count).max().unwrap_or(1);
    for round in 0..rounds {
        for metric in metrics.iter().filter(|m| m.count > round) {
            let result = client.query(&metric.query).await.unwrap();
            let phase = judge(metric.success.as_ref(), metric.failure.as_ref(), &result).unwrap();
            let key = format!("{}/{}", metric.template, metric.name);
            log.push(format!("{key} = {result:?} -> {phase:?}"));
            phases.entry(key).or_default().push(phase);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for metric in &metrics {
        let key = format!("{}/{}", metric.template, metric.name);
        let phase = verdict(
            &phases[&key],
            metric.failure_limit,
            metric.inconclusive_limit,
        );
        verdicts.insert(key, phase);
    }
    for (name, phase) in expected {
        assert_eq!(
            verdicts.get(*name),
            Some(phase),
            "{name}; measurements:\n{}",
            log.join("\n")
        );
    }

    // The stable pods, judged by the same templates, pass.
    let stable_args: BTreeMap<String, String> = step
        .args
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if v == CANARY {
                    STABLE.to_owned()
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    for name in &step.templates {
        for metric in template::metrics(&templates[name], &stable_args).unwrap() {
            let result = client.query(&metric.query).await.unwrap();
            let phase = judge(metric.success.as_ref(), metric.failure.as_ref(), &result).unwrap();
            assert_eq!(
                phase,
                Phase::Successful,
                "stable {}: {result:?}",
                metric.name
            );
        }
    }

    running.store(false, Ordering::Relaxed);
    for worker in traffic {
        worker.await.unwrap();
    }
}

struct App {
    port: u16,
    _service: Service,
    _database: test_support::TestDatabase,
}

async fn start_app(nats_url: &str, faults: Option<&Faults>) -> App {
    let database = test_database().await.unwrap();
    let port = free_port();
    let mut envs = vec![
        ("DATABASE_URL", database.url.clone()),
        ("NATS_URL", nats_url.to_owned()),
        ("PORT", port.to_string()),
    ];
    let mut args = Vec::new();
    if let Some(faults) = faults {
        args.push("--test-faults");
        envs.push((
            "DOCKET_FAULT_ERROR_PERCENT",
            faults.error_percent.to_string(),
        ));
        envs.push(("DOCKET_FAULT_DELAY_MS", faults.delay_ms.to_string()));
    }
    let service = Service::spawn(
        &workspace_binary("todo-app"),
        &args,
        &envs,
        &format!("http://127.0.0.1:{port}/readyz"),
    )
    .await
    .unwrap();
    App {
        port,
        _service: service,
        _database: database,
    }
}

struct PrometheusServer {
    url: String,
    _service: Service,
    _dir: TempDir,
}

/// A private Prometheus scraping both apps every second, labelling them as
/// the cluster's pod scrape config would.
async fn start_prometheus(stable: u16, canary: u16) -> PrometheusServer {
    let dir = TempDir::new().unwrap();
    let target = |port: u16, hash: &str| {
        format!(
            "      - targets: [\"127.0.0.1:{port}\"]\n        labels:\n          namespace: {NAMESPACE}\n          rollouts_pod_template_hash: {hash}\n"
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: todo-app\n    static_configs:\n{}{}",
        target(stable, STABLE),
        target(canary, CANARY)
    );
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let port = free_port();
    let program = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .expect("prometheus is installed (Debian package `prometheus`; `cargo xtask install`)");
    let service = Service::spawn(
        &program,
        &[
            &format!("--config.file={}", config_file.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &[],
        &format!("http://127.0.0.1:{port}/-/ready"),
    )
    .await
    .unwrap();
    PrometheusServer {
        url: format!("http://127.0.0.1:{port}"),
        _service: service,
        _dir: dir,
    }
}

/// Both targets up: `/-/ready` answers long before the first scrape.
async fn wait_for_targets(client: &Prometheus) {
    let up = format!("sum(up{{namespace=\"{NAMESPACE}\"}})");
    poll(client, &up, Duration::from_secs(30), |values| {
        values == [2.0]
    })
    .await;
}

/// Polls a query until `done` accepts its result, or panics at the deadline.
async fn poll(client: &Prometheus, query: &str, within: Duration, done: impl Fn(&[f64]) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let values = client.query(query).await.unwrap();
        if done(&values) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{query}` is still {values:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Requests the page and the JSON list, paced at about 50 per second per
/// worker, until `running` is cleared. Answers are not checked: a faulty
/// canary's 500s are the point.
async fn drive_traffic(port: u16, running: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    let mut n = 0u64;
    while running.load(Ordering::Relaxed) {
        pace.tick().await;
        let path = if n.is_multiple_of(2) {
            "/"
        } else {
            "/api/todos"
        };
        n += 1;
        let _ = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await;
    }
}
