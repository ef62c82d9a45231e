//! Prometheus metrics, one registry per app instance (tests run several).

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::build;
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub todos_created: IntCounter,
    /// Todos per create statement (see `changes::writer`).
    pub create_batch_size: Histogram,
    pub outbox_pending: IntGauge,
    pub events_published: IntCounter,
    /// `GET /` answered from the page cache, rendered to be cached, or
    /// rendered from the database for a reader who just wrote.
    pub page_cache_hits: IntCounter,
    pub page_cache_misses: IntCounter,
    pub page_cache_bypasses: IntCounter,
    /// `GET /api/todos` answered 304 from the tags known current, without
    /// a database read, or after reading the page (see `api_tags`).
    pub api_not_modified_from_memory: IntCounter,
    pub api_not_modified_from_database: IntCounter,
    /// Live-update streams open now (see `open_streams`).
    pub live_streams_open: IntGauge,
    /// Streams refused, by the cap that refused them.
    pub live_streams_refused: IntCounterVec,
    /// Fetches of the page's picture by outcome: ok, refused or failed.
    pub picture_fetches: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let todos_created =
            IntCounter::new("todos_created_total", "Todos created").expect("valid metric");
        let create_batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "todo_create_batch_size",
                "Todos written by one create statement: creates that queued together",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        )
        .expect("valid metric");
        let outbox_pending = IntGauge::new(
            "outbox_pending",
            "Events written to the outbox and not yet acknowledged by JetStream",
        )
        .expect("valid metric");
        let events_published = IntCounter::new(
            "events_published_total",
            "Events published to JetStream and acknowledged",
        )
        .expect("valid metric");

        let page_cache = IntCounterVec::new(
            Opts::new(
                "page_cache_lookups_total",
                "Page loads by how the page cache answered: hit, miss or bypass",
            ),
            &["result"],
        )
        .expect("valid metric");
        let api_not_modified = IntCounterVec::new(
            Opts::new(
                "api_not_modified_total",
                "GET /api/todos answered 304, by where the tag was known from: memory (no database read) or database",
            ),
            &["answered_from"],
        )
        .expect("valid metric");

        let live_streams_open = IntGauge::new(
            "live_streams_open",
            "Live-update streams (GET /events) open on this replica",
        )
        .expect("valid metric");
        let live_streams_refused = IntCounterVec::new(
            Opts::new(
                "live_streams_refused_total",
                "Live-update streams refused, by the cap that was reached: replica or client",
            ),
            &["cap"],
        )
        .expect("valid metric");
        let picture_fetches = IntCounterVec::new(
            Opts::new(
                "picture_fetches_total",
                "Fetches of the page's picture from PICTURE_SOURCE_URL by outcome: ok, refused (not an image, too large) or failed (unreachable, an error status, too slow)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for outcome in ["ok", "refused", "failed"] {
            picture_fetches.with_label_values(&[outcome]);
        }

        // Always 1; the labels are the point: which version and commit each
        // pod runs, joinable onto any other series of the pod.
        let build_info = IntGaugeVec::new(
            Opts::new(
                "todo_app_build_info",
                "The running build: version and commit (as /version reports them)",
            ),
            &["version", "commit"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[build::VERSION, build::commit()])
            .set(1);

        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(todos_created.clone()),
            Box::new(create_batch_size.clone()),
            Box::new(outbox_pending.clone()),
            Box::new(events_published.clone()),
            Box::new(page_cache.clone()),
            Box::new(api_not_modified.clone()),
            Box::new(live_streams_open.clone()),
            Box::new(live_streams_refused.clone()),
            Box::new(picture_fetches.clone()),
            Box::new(build_info),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }

        Self {
            registry,
            http_requests,
            http_duration,
            todos_created,
            create_batch_size,
            outbox_pending,
            events_published,
            page_cache_hits: page_cache.with_label_values(&["hit"]),
            page_cache_misses: page_cache.with_label_values(&["miss"]),
            page_cache_bypasses: page_cache.with_label_values(&["bypass"]),
            api_not_modified_from_memory: api_not_modified.with_label_values(&["memory"]),
            api_not_modified_from_database: api_not_modified.with_label_values(&["database"]),
            live_streams_open,
            live_streams_refused,
            picture_fetches,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        service_kit::ops::text(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
