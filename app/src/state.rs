//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use sqlx::PgPool;

use crate::changes::Writer;
use crate::domain::TodoLists;
use crate::faults::Faults;
use crate::live::{self, LiveUpdates};
use crate::metrics::Metrics;
use crate::page_cache::{self, PageCache};
use crate::picture::CurrentPicture;
use crate::rate_limit::WriteLimiter;
use crate::read_together::ReadTogether;
use crate::views::rendered::Rendered;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Makes every change (`changes`).
    pub writer: Writer,
    pub api_token: Option<Arc<SecretString>>,
    pub metrics: Metrics,
    /// Changes fanned out to open pages (`GET /events`).
    pub live: LiveUpdates,
    /// Test-only faults; `None` unless started with `--test-faults`.
    pub faults: Option<Faults>,
    /// `None` when `WRITE_RATE_LIMIT=off`.
    pub write_limiter: Option<Arc<WriteLimiter>>,
    pub page_cache: PageCache,
    /// Reads of the lists, shared by the requests that want them at once.
    pub lists: Arc<ReadTogether<TodoLists>>,
    /// The page and the lists fragment, rendered once per shared read.
    pub rendered: Arc<Rendered>,
    /// `None` when no `PICTURE_SOURCE_URL` is set: the page shows none.
    pub picture: Option<CurrentPicture>,
    migrated: Arc<AtomicBool>,
}

impl AppState {
    /// State with the page cache at its default maximum age. Starts the
    /// writers of changes, so it must run inside a tokio runtime.
    pub fn new(pool: PgPool, api_token: Option<SecretString>) -> Self {
        let metrics = Metrics::new();
        Self {
            writer: Writer::start(pool.clone(), &metrics),
            pool,
            api_token: api_token.map(Arc::new),
            page_cache: page_cache_for(&metrics, page_cache::DEFAULT_MAX_AGE),
            metrics,
            live: LiveUpdates::new(live::CAPACITY),
            faults: None,
            write_limiter: None,
            lists: Arc::default(),
            rendered: Arc::default(),
            picture: None,
            migrated: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Keeps the page at most `max_age` (zero: no cache).
    pub fn with_page_cache_max_age(mut self, max_age: Duration) -> Self {
        self.page_cache = page_cache_for(&self.metrics, max_age);
        self
    }

    /// Shows the picture on the page and serves it at `/picture`.
    pub fn with_picture(mut self) -> Self {
        self.picture = Some(CurrentPicture::default());
        self.rendered = Arc::new(Rendered::with_picture());
        self
    }

    pub fn mark_migrated(&self) {
        self.migrated.store(true, Ordering::Release);
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }
}

fn page_cache_for(metrics: &Metrics, max_age: Duration) -> PageCache {
    PageCache::new(
        max_age,
        metrics.page_cache_hits.clone(),
        metrics.page_cache_misses.clone(),
        metrics.page_cache_bypasses.clone(),
    )
}
