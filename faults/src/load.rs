//! A steady write load through the app's JSON API: one create every
//! `interval`, each its own task, so a slow or absent app does not slow the
//! rate down. Every outcome is kept for the ledger.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::stack::API_TOKEN;

/// What happened to one create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 201 with the new todo's id, and when: the app promised to keep it.
    Acked(Uuid, Instant),
    /// Any other status: the app said no (e.g. 503 while Postgres is down).
    Rejected(u16),
    /// The connection was refused: no app was listening.
    Refused,
    /// Sent but cut off or timed out after `after`: the app may or may not
    /// have kept it.
    Broken { after: Duration, error: String },
}

pub struct Load {
    tasks: Arc<Mutex<JoinSet<Outcome>>>,
    driver: tokio::task::JoinHandle<()>,
}

/// The load's results.
#[derive(Debug, Default)]
pub struct Results {
    pub sent: usize,
    pub acked: Vec<Uuid>,
    /// When each of `acked` was answered, in the same order.
    pub acked_at: Vec<Instant>,
    pub rejected: usize,
    pub refused: usize,
    pub broken: Vec<(Duration, String)>,
}

impl Load {
    /// Sends `total` creates to `base_url`, one every `interval`.
    pub fn start(base_url: String, label: &str, total: usize, interval: Duration) -> Load {
        let client = crate::http(Duration::from_secs(15));
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let label = label.to_owned();
        let driver = {
            let tasks = tasks.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                for i in 0..total {
                    tick.tick().await;
                    let request = client
                        .post(format!("{base_url}/api/todos"))
                        .bearer_auth(API_TOKEN)
                        .json(&serde_json::json!({ "text": format!("{label} #{i}") }));
                    tasks.lock().await.spawn(async move { send(request).await });
                }
            })
        };
        Load { tasks, driver }
    }

    /// Waits for every request to be sent and answered.
    pub async fn finish(self) -> Results {
        self.driver.await.expect("the load driver does not panic");
        let mut tasks = self.tasks.lock().await;
        let mut results = Results::default();
        while let Some(outcome) = tasks.join_next().await {
            results.sent += 1;
            match outcome.expect("a request task does not panic") {
                Outcome::Acked(id, at) => {
                    results.acked.push(id);
                    results.acked_at.push(at);
                }
                Outcome::Rejected(_) => results.rejected += 1,
                Outcome::Refused => results.refused += 1,
                Outcome::Broken { after, error } => results.broken.push((after, error)),
            }
        }
        results
    }
}

impl Results {
    /// The app acknowledged every write the load sent; `why` says why the
    /// scenario expects that despite its fault.
    #[track_caller]
    pub fn assert_all_acknowledged(&self, why: &str) {
        assert_eq!(self.acked.len(), self.sent, "{why}: {self:?}");
    }
}

async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let started = std::time::Instant::now();
    match request.send().await {
        Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
            match response.json::<serde_json::Value>().await {
                Ok(body) => body["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .map_or_else(
                        || Outcome::Broken {
                            after: started.elapsed(),
                            error: format!("201 without an id: {body}"),
                        },
                        |id| Outcome::Acked(id, Instant::now()),
                    ),
                Err(e) => Outcome::Broken {
                    after: started.elapsed(),
                    error: format!("201 with an unreadable body: {e}"),
                },
            }
        }
        Ok(response) => Outcome::Rejected(response.status().as_u16()),
        Err(e) if e.is_connect() => Outcome::Refused,
        Err(e) => Outcome::Broken {
            after: started.elapsed(),
            error: service_kit::backoff::chain(&e),
        },
    }
}
