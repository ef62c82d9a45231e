//! The site's status after a reconcile: computed from what happened, so it
//! is tested without an API server.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::DummySiteStatus;

pub const READY: &str = "Ready";
pub const FETCH_FAILED: &str = "FetchFailed";

/// A copy being served: where it came from and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub url: String,
    pub bytes: u64,
}

/// What a reconcile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A copy of the spec's URL is served (fetched now, or still fresh).
    Serving(Served),
    /// The spec's URL could not be copied; `previous` is the copy still
    /// served, if there is one.
    Failed {
        reason: &'static str,
        message: String,
        previous: Option<Served>,
    },
}

/// The status after `outcome`, for the object's `generation`. A condition
/// keeps its `lastTransitionTime` while its status stays the same.
pub fn next(
    previous: Option<&DummySiteStatus>,
    generation: Option<i64>,
    spec_url: &str,
    outcome: &Outcome,
    now: Timestamp,
) -> DummySiteStatus {
    let (ready, fetch_failed, served) = match outcome {
        Outcome::Serving(served) => (
            (
                "True",
                "Serving",
                format!("serving a copy of {} ({} bytes)", served.url, served.bytes),
            ),
            ("False", "Fetched", format!("fetched {}", served.url)),
            Some(served.clone()),
        ),
        Outcome::Failed {
            reason,
            message,
            previous: served,
        } => {
            let ready = match served {
                // A refresh failed: the copy of this very URL still serves.
                Some(served) if served.url == spec_url => (
                    "True",
                    "ServingPreviousCopy",
                    format!("serving the copy of {} fetched before", served.url),
                ),
                Some(served) => (
                    "False",
                    "ServingPreviousCopy",
                    format!(
                        "still serving the copy of {}: {spec_url} cannot be copied",
                        served.url
                    ),
                ),
                None => ("False", *reason, format!("no copy to serve: {message}")),
            };
            (ready, ("True", *reason, message.clone()), served.clone())
        }
    };
    let condition = |type_: &str, (status, reason, message): (&str, &str, String)| {
        let unchanged = previous
            .and_then(|p| p.condition(type_))
            .filter(|c| c.status == status);
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: unchanged
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now)),
        }
    };
    DummySiteStatus {
        conditions: vec![
            condition(READY, ready),
            condition(FETCH_FAILED, fetch_failed),
        ],
        observed_generation: generation,
        served_url: served.as_ref().map(|s| s.url.clone()),
        served_bytes: served.map(|s| s.bytes),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    const URL: &str = "https://example.com/";

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn served(url: &str) -> Served {
        Served {
            url: url.into(),
            bytes: 10,
        }
    }

    fn failed(previous: Option<Served>) -> Outcome {
        Outcome::Failed {
            reason: "HttpStatus",
            message: "the site answered 500".into(),
            previous,
        }
    }

    fn status_of<'a>(status: &'a DummySiteStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status.condition(type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_served_copy_is_ready() {
        let status = next(None, Some(1), URL, &Outcome::Serving(served(URL)), at(1));
        assert_eq!(status_of(&status, READY), ("True", "Serving"));
        assert_eq!(status_of(&status, FETCH_FAILED), ("False", "Fetched"));
        assert_eq!(status.served_url.as_deref(), Some(URL));
        assert_eq!(status.observed_generation, Some(1));
    }

    #[test]
    fn a_failed_first_fetch_is_not_ready_and_says_why() {
        let status = next(None, Some(1), URL, &failed(None), at(1));
        assert_eq!(status_of(&status, READY), ("False", "HttpStatus"));
        assert_eq!(status_of(&status, FETCH_FAILED), ("True", "HttpStatus"));
        assert_eq!(status.served_url, None);
    }

    #[test]
    fn a_failed_refresh_keeps_serving_and_stays_ready() {
        let status = next(None, Some(1), URL, &failed(Some(served(URL))), at(1));
        assert_eq!(status_of(&status, READY), ("True", "ServingPreviousCopy"));
        assert_eq!(status_of(&status, FETCH_FAILED), ("True", "HttpStatus"));
    }

    #[test]
    fn a_new_url_that_fails_is_not_ready_while_the_old_copy_serves() {
        let old = "https://old.example.com/";
        let status = next(None, Some(2), URL, &failed(Some(served(old))), at(1));
        assert_eq!(status_of(&status, READY), ("False", "ServingPreviousCopy"));
        assert_eq!(status.served_url.as_deref(), Some(old));
    }

    #[test]
    fn transition_times_move_only_when_a_status_changes() {
        let first = next(None, Some(1), URL, &Outcome::Serving(served(URL)), at(1));
        let again = next(
            Some(&first),
            Some(1),
            URL,
            &Outcome::Serving(served(URL)),
            at(2),
        );
        let time = |s: &DummySiteStatus, t| s.condition(t).unwrap().last_transition_time.0;
        assert_eq!(time(&again, READY), at(1));
        let broken = next(Some(&again), Some(1), URL, &failed(None), at(3));
        assert_eq!(time(&broken, READY), at(3));
        assert_eq!(time(&broken, FETCH_FAILED), at(3));
    }
}
