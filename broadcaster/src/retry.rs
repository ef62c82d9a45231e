//! When to try a failed delivery again, and when to give up.
//!
//! The schedule (`WEBHOOK_RETRY_SCHEDULE`, default `5s,30s,2m,10m,30m`)
//! lists the waits between attempts, so an event gets one attempt more than
//! the schedule has entries. Each wait is jittered by ±20 % so that events
//! which failed together (an outage) do not all come back in the same
//! instant, and it is never shorter than a `Retry-After` the target sent.
//!
//! What is retried: timeouts, connection errors, 408, 429 and 5xx: the
//! target may well accept the same request later. Any other answer (a 400,
//! a 401 from a wrong secret, a 404 from a wrong URL, a 3xx) will not change
//! by waiting, so the event goes to the dead-letter stream at once.
//!
//! The attempt number is JetStream's delivery count for the message, so it
//! survives a replica crashing and is the same whichever replica holds the
//! event. A redelivery caused by a crash therefore uses up one attempt,
//! which errs on the side of dead-lettering a little early rather than
//! retrying forever.

use std::time::Duration;

use rand::Rng;
use service_kit::env::duration;

use crate::error::Error;

/// The longest `Retry-After` honoured; a longer request is capped so an
/// event cannot be parked for days by one answer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The waits between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// What to do with an event whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Hand it back to JetStream, to be redelivered after this delay.
    RetryAfter(Duration),
    /// Give up: dead-letter it.
    DeadLetter,
}

impl RetrySchedule {
    /// Parses a comma-separated list of durations; an empty list means "never retry".
    pub fn parse(value: &str) -> Result<RetrySchedule, String> {
        if value.trim() == "none" {
            return Ok(RetrySchedule(Vec::new()));
        }
        value
            .split(',')
            .map(duration)
            .collect::<Result<Vec<_>, _>>()
            .map(RetrySchedule)
    }

    /// How many attempts an event gets in all.
    pub fn attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// Decides after attempt number `attempt` (1-based) failed with `error`.
    pub fn decide(&self, attempt: u32, error: &Error) -> Decision {
        if !is_retryable(error) || attempt >= self.attempts() {
            return Decision::DeadLetter;
        }
        let planned = jitter(self.0[attempt.max(1) as usize - 1]);
        let asked = match error {
            Error::Status {
                retry_after: Some(after),
                ..
            } => (*after).min(MAX_RETRY_AFTER),
            _ => Duration::ZERO,
        };
        Decision::RetryAfter(planned.max(asked))
    }
}

/// Whether waiting could make the same request succeed.
pub fn is_retryable(error: &Error) -> bool {
    match error {
        Error::Timeout(_) | Error::Connect(_) | Error::Request(_) => true,
        Error::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
        Error::Decode(_)
        | Error::Config(_)
        | Error::Nats { .. }
        | Error::Stream(_)
        | Error::Listen { .. } => false,
    }
}

/// Reads a `Retry-After` header: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Spreads a delay over ±20 %.
fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::rng().random_range(0.8..=1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Error {
        Error::Status {
            status,
            retry_after: None,
        }
    }

    fn schedule() -> RetrySchedule {
        RetrySchedule::parse("5s,30s,2m,10m,30m").unwrap()
    }

    #[test]
    fn the_default_schedule_gives_six_attempts() {
        assert_eq!(schedule().attempts(), 6);
        assert_eq!(RetrySchedule::parse("none").unwrap().attempts(), 1);
    }

    #[test]
    fn waits_grow_with_the_attempt_and_are_jittered_within_twenty_percent() {
        for (attempt, base) in [(1, 5.0), (2, 30.0), (3, 120.0), (4, 600.0), (5, 1800.0)] {
            let Decision::RetryAfter(wait) = schedule().decide(attempt, &status(503)) else {
                panic!("attempt {attempt} should be retried");
            };
            let secs = wait.as_secs_f64();
            assert!(
                (base * 0.8..=base * 1.2).contains(&secs),
                "attempt {attempt}: {secs}"
            );
        }
    }

    #[test]
    fn the_last_attempt_dead_letters() {
        assert_eq!(schedule().decide(6, &status(503)), Decision::DeadLetter);
        assert_eq!(
            schedule().decide(9, &Error::Timeout(Duration::from_secs(5))),
            Decision::DeadLetter
        );
    }

    #[test]
    fn only_transient_failures_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable(&status(code)), "{code}");
        }
        for code in [301, 400, 401, 403, 404, 410, 422] {
            assert!(!is_retryable(&status(code)), "{code}");
            assert_eq!(schedule().decide(1, &status(code)), Decision::DeadLetter);
        }
        assert!(is_retryable(&Error::Timeout(Duration::from_secs(1))));
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_schedule() {
        let error = Error::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(
            schedule().decide(1, &error),
            Decision::RetryAfter(Duration::from_secs(90))
        );
        let huge = Error::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(86_400)),
        };
        assert_eq!(
            schedule().decide(1, &huge),
            Decision::RetryAfter(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn reads_both_forms_of_retry_after() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = std::time::SystemTime::now() + Duration::from_secs(600);
        let wait = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(wait > Duration::from_secs(590), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn rejects_a_malformed_schedule() {
        assert!(RetrySchedule::parse("5s,,30s").is_err());
        assert!(RetrySchedule::parse("fast").is_err());
    }
}
