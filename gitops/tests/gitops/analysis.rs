//! Canary analysis, proven on a real Prometheus.
//!
//! `todo-app` instances ("stable", "canary"), each with its own database and
//! `ADMIN_PORT` set as in the cluster, are scraped on their admin port every
//! second by a private Prometheus that labels their series the way the
//! cluster's PodMonitor does (`namespace`, `rollouts_pod_template_hash`).
//! Real traffic goes to their public port. The Rollout's first analysis step
//! is read from `kustomize/base/app/rollout.yaml`, its templates from
//! `analysis-templates.yaml`, args resolved as the Rollout would, and the
//! step is run as an AnalysisRun ([`gitops::analysis::run`]): queries
//! through Prometheus's HTTP API, the templates' own conditions and limits.
//! The templates' `[2m]` windows and `min-requests` stay as they are: with
//! 1 s scrapes, `rate()` has samples after a few seconds, so nothing about
//! production's semantics is changed here; only the 1m interval between
//! measurements is compressed to 1 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gitops::analysis::prometheus::Prometheus;
use gitops::analysis::template::{self, Cluster, Metric};
use gitops::analysis::{self, Phase, judge};
use test_support::{
    Prometheus as PrometheusServer, ScrapeTarget, Service, TestNats, free_port, test_database,
    test_nats, workspace_binary,
};

const NAMESPACE: &str = "docket-analysis";
const STABLE: &str = "stable-6f7d9c";
const CANARY: &str = "canary-5b8c4d";
/// A hash Prometheus gives no pod: what the analysis asks about when the
/// canary's series carry another one (labels or relabelling drifted).
const DRIFTED: &str = "canary-7a1e0f";
const ERROR_RATIO: &str = "todo-app-error-ratio/error-ratio";
const LATENCY: &str = "todo-app-latency-p99/latency-p99";
/// Scrapes of canary traffic Prometheus must hold before anything is judged.
const WARM_UP_SCRAPES: u32 = 5;
/// The templates' default `min-requests`.
const MIN_REQUESTS: u32 = 20;
/// The templates' `interval` (1m), compressed.
const INTERVAL: Duration = Duration::from_secs(1);
/// The operational routes, all on the admin port.
const OPERATIONAL: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/version"];

/// How the canary misbehaves (`todo-app --test-faults`).
struct Faults {
    error_percent: u32,
    delay_ms: u32,
}

impl Faults {
    /// A canary answering 5xx to `percent` of its requests, promptly.
    fn errors(percent: u32) -> Faults {
        Faults {
            error_percent: percent,
            delay_ms: 0,
        }
    }

    /// A canary answering every request, each `ms` late.
    fn slow(ms: u32) -> Faults {
        Faults {
            error_percent: 0,
            delay_ms: ms,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_passes_but_not_when_prometheus_labels_it_with_another_hash() {
    let world = World::under_traffic(None).await;

    world
        .expect(CANARY, Phase::Successful, &every_metric(Phase::Successful))
        .await;
    // The same canary, serving the same traffic, while the analysis asks
    // about a hash its series do not carry: no evidence, so no pass.
    world
        .expect(
            DRIFTED,
            Phase::Inconclusive,
            &every_metric(Phase::Inconclusive),
        )
        .await;

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_answering_5xx_fails_the_error_ratio_analysis() {
    judge_misbehaving_canary(
        Faults::errors(30),
        &[(ERROR_RATIO, Phase::Failed), (LATENCY, Phase::Successful)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_canary_fails_the_latency_analysis() {
    judge_misbehaving_canary(
        Faults::slow(800),
        &[(ERROR_RATIO, Phase::Successful), (LATENCY, Phase::Failed)],
    )
    .await;
}

/// Each metric of the analysis step ending in `phase`, for
/// [`World::expect`].
fn every_metric(phase: Phase) -> [(&'static str, Phase); 2] {
    [(ERROR_RATIO, phase), (LATENCY, phase)]
}

/// A canary with `faults` under traffic fails the run, each metric as expected.
async fn judge_misbehaving_canary(faults: Faults, expected: &[(&str, Phase)]) {
    let world = World::under_traffic(Some(faults)).await;
    world.expect(CANARY, Phase::Failed, expected).await;
    world.stop().await;
}

/// A canary nobody uses: Inconclusive with no traffic at all, still
/// Inconclusive after hundreds of probe, scrape and `/version` requests
/// (they are never counted), still Inconclusive with real requests below
/// `min-requests`, and judged (Successful) once they reach it.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_is_inconclusive_until_real_requests_reach_the_minimum() {
    let nats = test_nats().unwrap();
    let canary = start_app(&nats.url, None).await;
    let prometheus = start_prometheus(&[(&canary, CANARY)]).await;
    let client = Prometheus::new(prometheus.url.clone()).unwrap();
    let http = reqwest::Client::new();
    wait_for_targets(&client, 1).await;
    let scrapes = format!(
        "count_over_time(up{{rollouts_pod_template_hash=\"{CANARY}\"}}[2m]) >= 3 \
         and on() todo_app_build_info{{rollouts_pod_template_hash=\"{CANARY}\"}}"
    );
    poll(&client, &scrapes, Duration::from_secs(30), |v| {
        !v.is_empty()
    })
    .await;
    let metrics = step_metrics(CANARY);

    // No traffic: Prometheus scrapes the canary, and holds no request series.
    let run = analysis::run(&client, &metrics, INTERVAL).await.unwrap();
    assert_eq!(run.phase, Phase::Inconclusive, "no traffic\n{run}");

    // Probes and scrapes only, more than enough of them to pass if counted.
    for _ in 0..MIN_REQUESTS * 2 {
        for path in OPERATIONAL {
            let url = format!("http://127.0.0.1:{}{path}", canary.admin_port);
            assert_eq!(http.get(url).send().await.unwrap().status(), 200, "{path}");
        }
        let version = format!("http://127.0.0.1:{}/version", canary.port);
        assert_eq!(http.get(version).send().await.unwrap().status(), 200);
    }
    wait_for_a_scrape_after_now(&client).await;
    let requests = format!("http_requests_total{{rollouts_pod_template_hash=\"{CANARY}\"}}");
    assert_eq!(client.query(&requests).await.unwrap(), Vec::<f64>::new());
    let run = analysis::run(&client, &metrics, INTERVAL).await.unwrap();
    assert_eq!(run.phase, Phase::Inconclusive, "probes only\n{run}");

    // Real requests, well under the minimum in the window: the series are
    // there and the error ratio is 0, yet nothing is judged. The first
    // request only creates the series (`increase` starts from its first
    // sample); the next five are counted (`increase` extrapolates them to
    // at most about twice that over a short span, still under 20).
    send_pages(&http, canary.port, 1).await;
    wait_for_a_scrape_after_now(&client).await;
    send_pages(&http, canary.port, 5).await;
    wait_for_a_scrape_after_now(&client).await;
    let total = format!("sum({requests})");
    assert_eq!(client.query(&total).await.unwrap(), vec![6.0]);
    let run = analysis::run(&client, &metrics, INTERVAL).await.unwrap();
    assert_eq!(run.phase, Phase::Inconclusive, "below the minimum\n{run}");

    // Enough of them: now there is evidence, and it is good.
    send_pages(&http, canary.port, MIN_REQUESTS * 2).await;
    wait_for_a_scrape_after_now(&client).await;
    let run = analysis::run(&client, &metrics, INTERVAL).await.unwrap();
    assert_eq!(run.phase, Phase::Successful, "above the minimum\n{run}");
}

/// A stable and a canary `todo-app` under steady traffic, scraped by a
/// private Prometheus.
struct World {
    client: Prometheus,
    running: Arc<AtomicBool>,
    traffic: Vec<tokio::task::JoinHandle<()>>,
    _prometheus: PrometheusServer,
    _apps: [App; 2],
    _nats: TestNats,
}

impl World {
    /// Starts both apps (the canary with `faults`) and traffic to both, and
    /// returns once Prometheus holds several scrapes of the canary serving
    /// pages: a verdict on the first sample or two would be noise.
    async fn under_traffic(faults: Option<Faults>) -> World {
        let nats = test_nats().unwrap();
        let stable = start_app(&nats.url, None).await;
        let canary = start_app(&nats.url, faults.as_ref()).await;
        let prometheus = start_prometheus(&[(&stable, STABLE), (&canary, CANARY)]).await;
        let client = Prometheus::new(prometheus.url.clone()).unwrap();

        let running = Arc::new(AtomicBool::new(true));
        let traffic = [stable.port, canary.port]
            .into_iter()
            .flat_map(|port| (0..4).map(move |_| port))
            .map(|port| tokio::spawn(drive_traffic(port, running.clone())))
            .collect();

        wait_for_targets(&client, 2).await;
        let canary_series =
            format!("namespace=\"{NAMESPACE}\", rollouts_pod_template_hash=\"{CANARY}\"");
        for metric in ["http_requests_total", "http_request_duration_seconds_count"] {
            let seen = format!(
                "min(count_over_time({metric}{{{canary_series}, route=\"/\"}}[2m])) >= {WARM_UP_SCRAPES}"
            );
            // The templates judge only once the canary answered
            // `min-requests` in their window. A slow canary (800 ms a
            // request) on a busy machine had not, after the scrapes above,
            // and its analysis came out Inconclusive (seen once in CI).
            let enough = format!(
                "sum(increase({metric}{{{canary_series}}}[2m])) >= {}",
                MIN_REQUESTS * 2
            );
            for query in [seen, enough] {
                poll(&client, &query, Duration::from_secs(45), |values| {
                    !values.is_empty()
                })
                .await;
            }
        }
        World {
            client,
            running,
            traffic,
            _prometheus: prometheus,
            _apps: [stable, canary],
            _nats: nats,
        }
    }

    /// Runs the Rollout's first analysis step for the canary hash `asked`
    /// (what the Rollout resolves `podTemplateHashValue: Latest` to) and
    /// checks the run's phase and the given metrics' phases. When the canary
    /// passes, also checks that the same analysis of the stable pods passes,
    /// so the verdicts are about the canary only.
    async fn expect(&self, asked: &str, run_phase: Phase, expected: &[(&str, Phase)]) {
        let metrics = step_metrics(asked);
        let run = analysis::run(&self.client, &metrics, INTERVAL)
            .await
            .unwrap();
        assert_eq!(run.phase, run_phase, "asked about {asked}\n{run}");
        for (name, phase) in expected {
            assert_eq!(run.metric(name), Some(*phase), "{name}\n{run}");
        }

        for metric in step_metrics(STABLE) {
            let result = self.client.query(&metric.query).await.unwrap();
            let phase = judge(metric.success.as_ref(), metric.failure.as_ref(), &result).unwrap();
            assert_eq!(
                phase,
                Phase::Successful,
                "stable {}: {result:?}",
                metric.name
            );
        }
    }

    async fn stop(self) {
        self.running.store(false, Ordering::Relaxed);
        for worker in self.traffic {
            worker.await.unwrap();
        }
    }
}

/// The metrics of the Rollout's first analysis step, args resolved with
/// `canary_hash` as the canary's pod-template hash.
fn step_metrics(canary_hash: &str) -> Vec<Metric> {
    let cluster = Cluster {
        namespace: NAMESPACE.into(),
        stable_hash: STABLE.into(),
        canary_hash: canary_hash.into(),
    };
    let root = test_support::workspace_root();
    let read =
        |file: &str| std::fs::read_to_string(root.join("kustomize/base/app").join(file)).unwrap();
    let templates = template::templates(&read("analysis-templates.yaml")).unwrap();
    let steps = template::rollout_steps(&read("rollout.yaml"), &cluster).unwrap();
    let step = steps.first().expect("the Rollout has an analysis step");
    let metrics: Vec<Metric> = step
        .templates
        .iter()
        .flat_map(|name| template::metrics(&templates[name], &step.args).unwrap())
        .collect();
    assert_eq!(metrics.len(), 2, "both templates measured: {metrics:?}");
    for metric in &metrics {
        assert!(
            metric.query.contains(canary_hash) && metric.query.contains(NAMESPACE),
            "{}",
            metric.query
        );
        assert!(
            metric.query.contains(&format!(">= {MIN_REQUESTS}")),
            "the default minimum applies: {}",
            metric.query
        );
        assert_eq!(metric.inconclusive_limit, 0, "{}", metric.name);
    }
    metrics
}

struct App {
    port: u16,
    admin_port: u16,
    _service: Service,
    _database: test_support::TestDatabase,
}

async fn start_app(nats_url: &str, faults: Option<&Faults>) -> App {
    let database = test_database().await.unwrap();
    let port = free_port();
    let admin_port = free_port();
    let mut envs = vec![
        ("DATABASE_URL", database.url.clone()),
        ("NATS_URL", nats_url.to_owned()),
        ("PORT", port.to_string()),
        ("ADMIN_PORT", admin_port.to_string()),
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
        &format!("http://127.0.0.1:{admin_port}/readyz"),
    )
    .await
    .unwrap();
    App {
        port,
        admin_port,
        _service: service,
        _database: database,
    }
}

/// A private Prometheus scraping each app's admin port every second,
/// labelling its series with `namespace` and the given pod-template hash as
/// the cluster's PodMonitor would.
async fn start_prometheus(apps: &[(&App, &str)]) -> PrometheusServer {
    let targets: Vec<ScrapeTarget> = apps
        .iter()
        .map(|(app, hash)| {
            ScrapeTarget::metrics(
                app.admin_port,
                &[
                    ("namespace", NAMESPACE),
                    ("rollouts_pod_template_hash", hash),
                ],
            )
        })
        .collect();
    PrometheusServer::scraping(&targets).await.unwrap()
}

/// All `count` targets up: `/-/ready` answers long before the first scrape.
async fn wait_for_targets(client: &Prometheus, count: u32) {
    let up = format!("sum(up{{namespace=\"{NAMESPACE}\"}})");
    poll(client, &up, Duration::from_secs(30), |values| {
        values == [f64::from(count)]
    })
    .await;
}

/// Waits until Prometheus has scraped every target after this moment, so
/// whatever was sent before is in its data. (The margin covers Prometheus
/// nudging scrape timestamps by up to 2 ms to align them.)
async fn wait_for_a_scrape_after_now(client: &Prometheus) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let scraped = format!(
        "min(timestamp(up{{namespace=\"{NAMESPACE}\"}})) > {:.3}",
        now + 0.01
    );
    poll(client, &scraped, Duration::from_secs(15), |values| {
        !values.is_empty()
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

/// `count` page loads, each answered 200.
async fn send_pages(http: &reqwest::Client, port: u16, count: u32) {
    for _ in 0..count {
        let page = http.get(format!("http://127.0.0.1:{port}/")).send().await;
        assert_eq!(page.unwrap().status(), 200);
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
