//! Steady traffic against the app's container while it is stopped the way
//! the kubelet stops a pod, and the verdict: every request that had started
//! before SIGTERM was answered 2xx, and every create answered 2xx is in the
//! database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Concurrent readers, each with its own keep-alive connection, as an
/// ingress keeps several open to a pod; one more client writes.
const READERS: usize = 7;
/// Between the writer's creates: all the load comes from one address, and
/// the app allows each client 5 writes a second (`WRITE_RATE_LIMIT`'s
/// default, 300/minute); staying under it keeps every 429 a real failure.
const BETWEEN_WRITES: Duration = Duration::from_millis(400);
/// Pause after a failed request, so a stopped container is not hammered.
const AFTER_A_FAILURE: Duration = Duration::from_millis(50);

/// One request and how it ended.
struct Sample {
    started: Instant,
    finished: Instant,
    /// The status, or why there was none.
    outcome: Result<u16, String>,
    /// The text sent, for creates.
    created: Option<String>,
}

/// Traffic running in the background until [`Load::finish`].
pub struct Load {
    running: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Vec<Sample>>>,
    /// Every created todo's text starts with it.
    pub marker: String,
}

impl Load {
    /// Starts the readers (the page and the JSON list, alternately) and
    /// the writer (JSON creates).
    pub fn start(runtime: &Runtime, base_url: &str, api_token: &str) -> anyhow::Result<Load> {
        let running = Arc::new(AtomicBool::new(true));
        let marker = format!("drain-{}", uuid::Uuid::new_v4().simple());
        let workers = (0..=READERS)
            .map(|worker| {
                let role = if worker == READERS {
                    Role::Writer(format!("{marker}-{worker}"))
                } else {
                    Role::Reader
                };
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()?;
                Ok(runtime.spawn(work(
                    client,
                    base_url.to_owned(),
                    api_token.to_owned(),
                    role,
                    running.clone(),
                )))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Load {
            running,
            workers,
            marker,
        })
    }

    /// Stops the workers and judges what they saw against `signalled`, the
    /// moment just before SIGTERM was sent; `stored` counts the todos in the
    /// database whose text starts with [`Load::marker`].
    pub fn finish(
        self,
        runtime: &Runtime,
        signalled: Instant,
        pause_began: Instant,
        stored: impl FnOnce(&str) -> anyhow::Result<u64>,
    ) -> anyhow::Result<Verdict> {
        self.running.store(false, Ordering::Relaxed);
        let mut samples = Vec::new();
        for worker in self.workers {
            samples.extend(runtime.block_on(worker).context("a load worker panicked")?);
        }
        let before: Vec<&Sample> = samples.iter().filter(|s| s.started < signalled).collect();
        let failed: Vec<String> = before
            .iter()
            .filter(|s| !matches!(s.outcome, Ok(200..=299)))
            .map(|s| match &s.outcome {
                Ok(status) => format!("HTTP {status}"),
                Err(error) => error.clone(),
            })
            .collect();
        if let Some(first) = failed.first() {
            bail!(
                "{} of {} requests started before SIGTERM failed, the first with: {first}",
                failed.len(),
                before.len()
            );
        }
        let during_pause = before.iter().filter(|s| s.started >= pause_began).count();
        if during_pause == 0 {
            bail!("no request was answered during the preStop pause");
        }
        let created = samples
            .iter()
            .filter(|s| s.created.is_some() && matches!(s.outcome, Ok(200..=299)))
            .count() as u64;
        let stored = stored(&self.marker)?;
        if stored != created {
            bail!("{created} creates were answered 2xx, but the database holds {stored} of them");
        }
        Ok(Verdict {
            before_signal: before.len(),
            in_flight: before.iter().filter(|s| s.finished > signalled).count(),
            during_pause,
            created,
        })
    }
}

/// What the drain showed.
pub struct Verdict {
    pub before_signal: usize,
    /// Started before SIGTERM and answered after it.
    pub in_flight: usize,
    /// Answered while the preStop pause ran.
    pub during_pause: usize,
    pub created: u64,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SIGTERM under load: {} requests before it ({} during preStop, {} in flight) all 2xx, \
             all {} creates stored",
            self.before_signal, self.during_pause, self.in_flight, self.created
        )
    }
}

/// What a worker sends.
enum Role {
    /// `GET /` and `GET /api/todos`, alternately, back to back.
    Reader,
    /// `POST /api/todos` with texts starting with the marker, paced.
    Writer(String),
}

async fn work(
    client: reqwest::Client,
    base_url: String,
    api_token: String,
    role: Role,
    running: Arc<AtomicBool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut count = 0_u64;
    while running.load(Ordering::Relaxed) {
        count += 1;
        let started = Instant::now();
        let (request, created) = match &role {
            Role::Writer(marker) => {
                let text = format!("{marker} {count}");
                let request = client
                    .post(format!("{base_url}api/todos"))
                    .bearer_auth(&api_token)
                    .json(&serde_json::json!({ "text": text }));
                (request, Some(text))
            }
            Role::Reader if count.is_multiple_of(2) => (
                client
                    .get(format!("{base_url}api/todos?limit=20"))
                    .bearer_auth(&api_token),
                None,
            ),
            Role::Reader => (client.get(&base_url), None),
        };
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // The whole body: a response cut off mid-way is a failure.
                match response.bytes().await {
                    Ok(_) => Ok(status),
                    Err(error) => Err(format!("{error:#}")),
                }
            }
            Err(error) => Err(format!("{error:#}")),
        };
        let failed = !matches!(outcome, Ok(200..=299));
        samples.push(Sample {
            started,
            finished: Instant::now(),
            outcome,
            created,
        });
        if failed {
            tokio::time::sleep(AFTER_A_FAILURE).await;
        } else if matches!(role, Role::Writer(_)) {
            tokio::time::sleep(BETWEEN_WRITES).await;
        }
    }
    samples
}
