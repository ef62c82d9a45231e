//! A circuit breaker in front of the webhook.
//!
//! After `threshold` consecutive transient failures (timeouts, connection
//! errors, 408/429/5xx) the circuit opens: no request goes out for
//! `cooldown`. Then exactly one event is let through as a probe (half-open);
//! if it succeeds the circuit closes, if it fails it opens for another
//! cooldown. Answers such as 400 do not count: the target is up, it just
//! refused that one event.
//!
//! Nothing is lost while the circuit is open: events already pulled wait
//! here (their consumer keeps them alive with in-progress acks), and the
//! pull loop stops fetching new ones, so the rest stay in JetStream. The
//! breaker is per replica; each replica learns about an outage on its own
//! within `threshold` attempts, which is cheaper than sharing state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the circuit.
    pub threshold: u32,
    /// How long it stays open before a probe.
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// The breaker; clone-free, share it through an `Arc`.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
    changed: Notify,
}

/// Leave to send one request. Report how it went with [`Permit::record`];
/// a probe permit dropped without a report lets the next waiter probe.
#[derive(Debug)]
#[must_use]
pub struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    recorded: bool,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Arc<Breaker> {
        Arc::new(Breaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
            changed: Notify::new(),
        })
    }

    /// Whether requests may go out now without waiting.
    pub fn is_closed(&self) -> bool {
        matches!(*self.state.lock().unwrap(), State::Closed { .. })
    }

    /// Waits until a request may go out.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            // Registered before reading the state, so a change in between is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wait_until = {
                let mut state = self.state.lock().unwrap();
                match *state {
                    State::Closed { .. } => return self.permit(false),
                    State::Open { until } if Instant::now() >= until => {
                        *state = State::HalfOpen;
                        tracing::info!("circuit half-open: sending one probe");
                        return self.permit(true);
                    }
                    State::Open { until } => Some(until),
                    State::HalfOpen => None,
                }
            };
            match wait_until {
                Some(until) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Waits until the circuit is not open (the pull loop uses this to stop fetching).
    pub async fn wait_until_not_open(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let until = match *self.state.lock().unwrap() {
                State::Open { until } if Instant::now() < until => until,
                _ => return,
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = &mut changed => {}
            }
        }
    }

    fn permit(self: &Arc<Self>, probe: bool) -> Permit {
        Permit {
            breaker: Arc::clone(self),
            probe,
            recorded: false,
        }
    }

    fn record(&self, probe: bool, success: bool) {
        let mut state = self.state.lock().unwrap();
        let next = match (*state, probe, success) {
            (_, true, true) => {
                tracing::info!("circuit closed: the webhook answered the probe");
                State::Closed { failures: 0 }
            }
            (_, true, false) => {
                tracing::warn!(cooldown = ?self.config.cooldown, "circuit re-opened: the probe failed");
                State::Open {
                    until: Instant::now() + self.config.cooldown,
                }
            }
            (State::Closed { .. }, false, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false, false) if failures + 1 >= self.config.threshold => {
                tracing::warn!(
                    failures = failures + 1,
                    cooldown = ?self.config.cooldown,
                    "circuit opened: the webhook keeps failing"
                );
                State::Open {
                    until: Instant::now() + self.config.cooldown,
                }
            }
            (State::Closed { failures }, false, false) => State::Closed {
                failures: failures + 1,
            },
            // A request that started before the circuit opened does not change it.
            (other, false, _) => other,
        };
        if next != *state {
            *state = next;
            self.changed.notify_waiters();
        }
    }
}

impl Permit {
    /// Reports the outcome: `false` for a transient failure only.
    pub fn record(mut self, success: bool) {
        self.recorded = true;
        self.breaker.record(self.probe, success);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            // The probe was abandoned (shutdown, or the event turned out to be a
            // duplicate): let the next waiter probe at once.
            let mut state = self.breaker.state.lock().unwrap();
            if *state == State::HalfOpen {
                *state = State::Open {
                    until: Instant::now(),
                };
                self.breaker.changed.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Arc<Breaker> {
        Breaker::new(BreakerConfig {
            threshold: 3,
            cooldown: Duration::from_secs(30),
        })
    }

    async fn fail(breaker: &Arc<Breaker>) {
        breaker.acquire().await.record(false);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_lets_one_probe_through_after_the_cooldown() {
        let breaker = breaker();
        fail(&breaker).await;
        fail(&breaker).await;
        assert!(breaker.is_closed());
        fail(&breaker).await;
        assert!(!breaker.is_closed());

        let started = Instant::now();
        let probe = breaker.acquire().await;
        assert!(started.elapsed() >= Duration::from_secs(30));
        assert!(probe.probe);

        // While the probe is out, others wait.
        let waiter = tokio::spawn({
            let breaker = Arc::clone(&breaker);
            async move { breaker.acquire().await.probe }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished());

        probe.record(true);
        assert!(
            !waiter.await.unwrap(),
            "after a good probe, requests flow normally"
        );
        assert!(breaker.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_another_cooldown() {
        let breaker = breaker();
        for _ in 0..3 {
            fail(&breaker).await;
        }
        breaker.acquire().await.record(false);
        let started = Instant::now();
        let probe = breaker.acquire().await;
        assert!(probe.probe);
        assert!(started.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let breaker = breaker();
        fail(&breaker).await;
        fail(&breaker).await;
        breaker.acquire().await.record(true);
        fail(&breaker).await;
        fail(&breaker).await;
        assert!(breaker.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_hands_over_to_the_next_waiter() {
        let breaker = breaker();
        for _ in 0..3 {
            fail(&breaker).await;
        }
        let probe = breaker.acquire().await;
        drop(probe);
        let next = tokio::time::timeout(Duration::from_secs(1), breaker.acquire())
            .await
            .unwrap();
        assert!(next.probe);
    }
}
