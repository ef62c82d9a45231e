//! The hourly picture: fetched by one replica at most once per
//! `PICTURE_MAX_AGE`, kept in a JetStream object store, served by every
//! replica from memory.
//!
//! Two background tasks per replica, never on a request's path:
//! - [`follow_store`] keeps [`CurrentPicture`] equal to the stored object:
//!   it reads the last one at start-up (so a restart serves the same bytes
//!   without a fetch) and every one put after.
//! - [`fetch_when_due`] reads when the next fetch is due from a key-value
//!   entry. When it is due, it claims the fetch by moving the entry on by one
//!   maximum age with a compare-and-set on its revision: of replicas that
//!   look at once, one wins and fetches, the others see the new time. A
//!   fetch that fails or is refused is logged and counted; the stored
//!   picture stays, and the next try comes one maximum age later.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_nats::jetstream::{self, kv, object_store};
use axum::http::HeaderValue;
use bytes::Bytes;
use futures::StreamExt;
use prometheus::IntCounterVec;
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use service_kit::body::{BodyError, read_limited};
use service_kit::nats;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::domain::{Picture, PictureError};

/// The object store bucket holding the picture.
pub const PICTURE_BUCKET: &str = "docket_picture";
/// The key-value bucket holding when the next fetch is due.
pub const SCHEDULE_BUCKET: &str = "docket_picture_schedule";
/// The picture's object name; each fetch replaces it.
pub const PICTURE_OBJECT: &str = "current";
/// The schedule's key: unix milliseconds at which the next fetch is due.
pub const DUE_KEY: &str = "next_fetch_due";

/// `PICTURE_MAX_AGE`'s default: the course's hourly picture.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// `PICTURE_FETCH_TIMEOUT`'s default: the whole fetch, body included.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Between tries to reach NATS, or after the store's watch ends.
const RETRY: Duration = Duration::from_secs(2);

/// Where the picture comes from and how often (`PICTURE_*`).
#[derive(Debug, Clone)]
pub struct PictureSettings {
    pub source: Url,
    pub max_age: Duration,
    pub fetch_timeout: Duration,
}

/// The picture this replica serves, with its tag; cheap to clone.
#[derive(Clone, Default)]
pub struct CurrentPicture(Arc<RwLock<Option<Arc<Served>>>>);

/// A stored picture as `/picture` answers with it.
#[derive(Debug)]
pub struct Served {
    pub picture: Picture,
    /// From the object's digest, so every replica tags the same bytes alike.
    pub etag: HeaderValue,
    /// The stored object's id: a watch that replays it does not reload it.
    nuid: String,
}

impl CurrentPicture {
    pub fn get(&self) -> Option<Arc<Served>> {
        self.0.read().expect("never poisoned").clone()
    }

    fn set(&self, served: Option<Served>) {
        *self.0.write().expect("never poisoned") = served.map(Arc::new);
    }

    fn holds(&self, nuid: &str) -> bool {
        self.get().is_some_and(|served| served.nuid == nuid)
    }
}

/// How a fetch ended, as `picture_fetches_total` counts it.
#[derive(Debug)]
enum Fetched {
    Ok(Picture),
    /// The source answered with something that cannot be the picture.
    Refused(PictureError),
    /// The source could not be reached, answered an error, or was too slow.
    Failed(anyhow::Error),
}

/// Runs both tasks until `shutdown`.
pub async fn keep_current(
    jetstream: jetstream::Context,
    settings: PictureSettings,
    current: CurrentPicture,
    fetches: IntCounterVec,
    shutdown: CancellationToken,
) {
    tokio::join!(
        follow_store(jetstream.clone(), current, shutdown.clone()),
        fetch_when_due(jetstream, settings, fetches, shutdown),
    );
}

/// Keeps `current` equal to the stored picture, reconnecting as needed.
pub async fn follow_store(
    jetstream: jetstream::Context,
    current: CurrentPicture,
    shutdown: CancellationToken,
) {
    loop {
        let followed = async {
            let store = picture_store(&jetstream).await?;
            follow(&store, &current).await
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = followed => if let Err(e) = result {
                tracing::warn!(error = format!("{e:#}"), "following the stored picture failed; retrying");
            },
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

async fn follow(store: &object_store::ObjectStore, current: &CurrentPicture) -> anyhow::Result<()> {
    // With history: the stored picture first, then each one put after it.
    let mut watch = store
        .watch_with_history()
        .await
        .context("watching the picture store")?;
    while let Some(info) = watch.next().await {
        let info = info.context("reading the picture store's watch")?;
        if info.name != PICTURE_OBJECT || current.holds(&info.nuid) {
            continue;
        }
        if info.deleted {
            current.set(None);
            continue;
        }
        match load(store).await? {
            Ok(served) => {
                tracing::info!(
                    picture.bytes = served.picture.bytes().len(),
                    "serving the stored picture"
                );
                current.set(Some(served));
            }
            Err(e) => {
                tracing::warn!(error = %e, "the stored picture is not an image; keeping the last one")
            }
        }
    }
    anyhow::bail!("the picture store's watch ended")
}

/// The stored picture, read with the same cap as a fetch.
async fn load(store: &object_store::ObjectStore) -> anyhow::Result<Result<Served, PictureError>> {
    let object = store
        .get(PICTURE_OBJECT)
        .await
        .context("getting the stored picture")?;
    let info = object.info().clone();
    let mut bytes = Vec::with_capacity(info.size.min(Picture::MAX_BYTES));
    object
        .take(Picture::MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .context("reading the stored picture")?;
    let tag = info.digest.as_deref().unwrap_or(&info.nuid);
    let etag = HeaderValue::try_from(format!("\"{}\"", tag.replace('"', "")))
        .context("the stored picture's digest is not a header value")?;
    Ok(
        Picture::from_bytes(Bytes::from(bytes)).map(|picture| Served {
            picture,
            etag,
            nuid: info.nuid,
        }),
    )
}

/// Fetches whenever the schedule says so and this replica wins the claim.
pub async fn fetch_when_due(
    jetstream: jetstream::Context,
    settings: PictureSettings,
    fetches: IntCounterVec,
    shutdown: CancellationToken,
) {
    let http = match reqwest::Client::builder()
        .timeout(settings.fetch_timeout)
        .connect_timeout(settings.fetch_timeout)
        .user_agent(concat!("docket-todo-app/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for the picture; it will not be fetched");
            return;
        }
    };
    loop {
        // Stopping mid-fetch leaves the claim taken: the next try is one
        // maximum age later, as after a failed fetch.
        let looked = tokio::select! {
            () = shutdown.cancelled() => return,
            looked = look(&jetstream, &settings, &http, &fetches) => looked,
        };
        let wait = match looked {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the picture schedule could not be read; retrying"
                );
                RETRY
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One look at the schedule, and a fetch if it is due and this replica
/// claims it. Returns how long to wait before the next look.
async fn look(
    jetstream: &jetstream::Context,
    settings: &PictureSettings,
    http: &reqwest::Client,
    fetches: &IntCounterVec,
) -> anyhow::Result<Duration> {
    let schedule = schedule_store(jetstream).await?;
    let entry = schedule
        .entry(DUE_KEY)
        .await
        .context("reading when the picture is due")?;
    let now = SystemTime::now();
    // Missing or unreadable: due now.
    let due = entry
        .as_ref()
        .and_then(|entry| decode_time(&entry.value))
        .unwrap_or(UNIX_EPOCH);
    if let Ok(wait) = due.duration_since(now)
        && !wait.is_zero()
    {
        return Ok(wait);
    }

    let next = encode_time(now + settings.max_age);
    let claimed = match &entry {
        None => schedule.create(DUE_KEY, next).await.map_err(|e| {
            (e.kind() != kv::CreateErrorKind::AlreadyExists).then(|| anyhow::Error::new(e))
        }),
        Some(entry) => schedule
            .update(DUE_KEY, next, entry.revision)
            .await
            .map_err(|e| {
                (e.kind() != kv::UpdateErrorKind::WrongLastRevision).then(|| anyhow::Error::new(e))
            }),
    };
    match claimed {
        Ok(_) => {}
        // Another replica claimed it first: look again, and see its time.
        Err(None) => return Ok(Duration::ZERO),
        Err(Some(e)) => {
            return Err(e.context("claiming the picture fetch"));
        }
    }

    let outcome = match fetch(http, &settings.source).await {
        Fetched::Ok(picture) => {
            let store = picture_store(jetstream).await?;
            match put(&store, &picture).await {
                Ok(()) => {
                    tracing::info!(
                        picture.bytes = picture.bytes().len(),
                        picture.content_type = picture.kind().content_type(),
                        "fetched a new picture"
                    );
                    "ok"
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "the fetched picture could not be stored; keeping the last one"
                    );
                    "failed"
                }
            }
        }
        Fetched::Refused(reason) => {
            tracing::warn!(reason = %reason, "refused the picture source's answer; keeping the last picture");
            "refused"
        }
        Fetched::Failed(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "fetching the picture failed; keeping the last picture"
            );
            "failed"
        }
    };
    fetches.with_label_values(&[outcome]).inc();
    Ok(settings.max_age)
}

/// One GET of the source, its body read up to [`Picture::MAX_BYTES`] and
/// no further, whatever `Content-Length` says.
async fn fetch(http: &reqwest::Client, source: &Url) -> Fetched {
    let response = match http.get(source.clone()).send().await {
        Ok(response) => response,
        Err(e) => return Fetched::Failed(anyhow::Error::new(e).context("requesting the picture")),
    };
    if !response.status().is_success() {
        return Fetched::Failed(anyhow::anyhow!(
            "the picture source answered {}",
            response.status()
        ));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = match read_limited(response, Picture::MAX_BYTES).await {
        Ok(body) => body,
        Err(BodyError::TooLarge { .. }) => return Fetched::Refused(PictureError::TooLarge),
        Err(BodyError::Read(e)) => {
            return Fetched::Failed(anyhow::Error::new(e).context("reading the picture"));
        }
    };
    match Picture::parse(content_type.as_deref(), body) {
        Ok(picture) => Fetched::Ok(picture),
        Err(reason) => Fetched::Refused(reason),
    }
}

async fn put(store: &object_store::ObjectStore, picture: &Picture) -> anyhow::Result<()> {
    let meta = object_store::ObjectMetadata {
        name: PICTURE_OBJECT.to_owned(),
        description: Some("the page's picture".to_owned()),
        metadata: HashMap::from([(
            "content-type".to_owned(),
            picture.kind().content_type().to_owned(),
        )]),
        ..Default::default()
    };
    store
        .put(meta, &mut picture.bytes().as_ref())
        .await
        .context("storing the picture")?;
    Ok(())
}

/// The picture's bucket, created if missing (see
/// `service_kit::nats::key_value_stream` for why not `create_object_store`).
async fn picture_store(
    jetstream: &jetstream::Context,
) -> anyhow::Result<object_store::ObjectStore> {
    // Room for the picture and a replacement being written.
    let max_bytes = 2 * Picture::MAX_BYTES as i64 + 1024 * 1024;
    jetstream
        .get_or_create_stream(nats::object_store_stream(
            PICTURE_BUCKET,
            "Docket: the page's picture",
            max_bytes,
        ))
        .await
        .with_context(|| format!("creating bucket {PICTURE_BUCKET}"))?;
    jetstream
        .get_object_store(PICTURE_BUCKET)
        .await
        .with_context(|| format!("opening bucket {PICTURE_BUCKET}"))
}

/// The schedule's bucket, created if missing.
async fn schedule_store(jetstream: &jetstream::Context) -> anyhow::Result<kv::Store> {
    jetstream
        .get_or_create_stream(nats::key_value_stream(
            SCHEDULE_BUCKET,
            "Docket: when the page's picture is next fetched",
        ))
        .await
        .with_context(|| format!("creating bucket {SCHEDULE_BUCKET}"))?;
    jetstream
        .get_key_value(SCHEDULE_BUCKET)
        .await
        .with_context(|| format!("opening bucket {SCHEDULE_BUCKET}"))
}

fn encode_time(time: SystemTime) -> Bytes {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    Bytes::from(millis.to_string())
}

fn decode_time(value: &[u8]) -> Option<SystemTime> {
    let millis: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_time_reads_back_as_written_to_the_millisecond() {
        let time = UNIX_EPOCH + Duration::from_millis(1_796_000_000_123);
        assert_eq!(decode_time(&encode_time(time)), Some(time));
        assert_eq!(decode_time(b"soon"), None);
    }
}
