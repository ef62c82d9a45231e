//! What every handler shares.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use sqlx::PgPool;

use crate::api_tags::ApiTags;
use crate::api_tokens::CurrentTokens;
use crate::auth::Oidc;
use crate::changes::Writer;
use crate::client::ClientIp;
use crate::domain::ApiTokens;
use crate::faults::Faults;
use crate::generation::Generation;
use crate::live::{self, LiveUpdates};
use crate::metrics::Metrics;
use crate::open_streams::{OpenStreams, StreamLimits};
use crate::page_cache::{self, PageCache};
use crate::picture::CurrentPicture;
use crate::rate_limit::WriteLimiter;
use crate::reads::Reads;
use crate::views::rendered::Rendered;
use crate::write_marker::{CookieKey, WriteMarker};

/// What every handler shares, behind one `Arc`. axum clones the state for
/// every middleware and extractor of every request; as a plain struct of
/// some thirty reference-counted parts, cloning and dropping those copies
/// took 17 % of the app's CPU under toggles (perf), every count an atomic
/// write contended between the cores. Now a clone is one count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`], read through it.
#[derive(Clone)]
pub struct Shared {
    pub pool: PgPool,
    /// Makes every change (`changes`).
    pub writer: Writer,
    /// The JSON API's tokens; `None`: API writes answer 503.
    pub api_tokens: Option<CurrentTokens>,
    pub metrics: Metrics,
    /// Changes fanned out to open pages (`GET /events`).
    pub live: LiveUpdates,
    /// The caps on those streams.
    pub open_streams: Arc<OpenStreams>,
    /// Where a request's client address comes from.
    pub client_ip: ClientIp,
    /// Test-only faults; `None` unless started with `--test-faults`.
    pub faults: Option<Faults>,
    /// `None` when `WRITE_RATE_LIMIT=off`.
    pub write_limiter: Option<Arc<WriteLimiter>>,
    /// Moves whenever the todos change: what says a kept read is current.
    pub generation: Generation,
    pub page_cache: PageCache,
    /// The JSON list's tags known current, for 304s without a read.
    pub api_tags: ApiTags,
    /// Signs and checks the cookie that sends a writer past the page cache.
    pub write_marker: WriteMarker,
    /// What the app shows, each read shared by the requests that want it at once.
    pub reads: Arc<Reads>,
    /// The page and the lists fragment, rendered once per shared read.
    pub rendered: Arc<Rendered>,
    /// `None` when no `PICTURE_SOURCE_URL` is set: the page shows none.
    pub picture: Option<CurrentPicture>,
    /// Sign-in, with `AUTH=oidc`; `None`: anyone reads and writes.
    pub oidc: Option<Arc<Oidc>>,
    migrated: Arc<AtomicBool>,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State with the page cache at its default maximum age, and
    /// `api_token` as the one read-write token (`default`). Starts the
    /// writers of changes, so it must run inside a tokio runtime.
    pub fn new(pool: PgPool, api_token: Option<SecretString>) -> Self {
        let metrics = Metrics::new();
        let generation = Generation::default();
        Self(Arc::new(Shared {
            writer: Writer::start(pool.clone(), &metrics, generation.clone()),
            reads: Arc::new(Reads::new(pool.clone())),
            pool,
            api_tokens: api_token.map(|token| CurrentTokens::fixed(ApiTokens::single(&token))),
            page_cache: page_cache_for(&metrics, &generation, page_cache::DEFAULT_MAX_AGE),
            api_tags: ApiTags::new(generation.clone(), page_cache::DEFAULT_MAX_AGE),
            generation,
            write_marker: WriteMarker::new(CookieKey::random()),
            open_streams: OpenStreams::new(
                StreamLimits::DEFAULT,
                metrics.live_streams_open.clone(),
            ),
            metrics,
            live: LiveUpdates::new(live::CAPACITY),
            client_ip: ClientIp::Peer,
            faults: None,
            write_limiter: None,
            rendered: Arc::default(),
            picture: None,
            oidc: None,
            migrated: Arc::new(AtomicBool::new(false)),
        }))
    }

    /// Takes the API's tokens from `tokens` instead (`None`: no API writes).
    pub fn with_api_tokens(mut self, tokens: Option<CurrentTokens>) -> Self {
        self.parts().api_tokens = tokens;
        self
    }

    /// Keeps the page, and the API's tags, at most `max_age` (zero: no cache).
    pub fn with_page_cache_max_age(mut self, max_age: Duration) -> Self {
        let parts = self.parts();
        parts.page_cache = page_cache_for(&parts.metrics, &parts.generation, max_age);
        parts.api_tags = ApiTags::new(parts.generation.clone(), max_age);
        self
    }

    /// Caps live-update streams at `limits` instead of the defaults.
    pub fn with_stream_limits(mut self, limits: StreamLimits) -> Self {
        let parts = self.parts();
        parts.open_streams = OpenStreams::new(limits, parts.metrics.live_streams_open.clone());
        self
    }

    /// Takes each request's client address from `client_ip` instead of the peer.
    pub fn with_client_ip(mut self, client_ip: ClientIp) -> Self {
        self.parts().client_ip = client_ip;
        self
    }

    /// Signs write markers with `key` (shared by every replica) instead of
    /// this process's random one.
    pub fn with_cookie_key(mut self, key: CookieKey) -> Self {
        self.parts().write_marker = WriteMarker::new(key);
        self
    }

    /// Asks for sign-in through `oidc`.
    pub fn with_oidc(mut self, oidc: Oidc) -> Self {
        self.parts().oidc = Some(Arc::new(oidc));
        self
    }

    /// Limits writes per client with `limiter`.
    pub fn with_write_limiter(mut self, limiter: WriteLimiter) -> Self {
        self.parts().write_limiter = Some(Arc::new(limiter));
        self
    }

    /// Turns on test-only faults (see [`crate::faults`]).
    pub fn with_faults(mut self, faults: Option<Faults>) -> Self {
        self.parts().faults = faults;
        self
    }

    /// Shows the picture on the page and serves it at `/picture`.
    pub fn with_picture(mut self) -> Self {
        let parts = self.parts();
        parts.picture = Some(CurrentPicture::default());
        parts.rendered = Arc::new(Rendered::with_picture());
        self
    }

    /// The parts, to set one up. Only the `with_*` methods change them, so
    /// a handler holding the state cannot. They run before a router holds
    /// it, when the `Arc` is not shared and nothing is copied; on a state
    /// already cloned, the change is this handle's alone, as it would be
    /// with a plain struct.
    fn parts(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    pub fn mark_migrated(&self) {
        self.migrated.store(true, Ordering::Release);
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }
}

fn page_cache_for(metrics: &Metrics, generation: &Generation, max_age: Duration) -> PageCache {
    PageCache::new(
        generation.clone(),
        max_age,
        metrics.page_cache_hits.clone(),
        metrics.page_cache_misses.clone(),
        metrics.page_cache_bypasses.clone(),
    )
}
