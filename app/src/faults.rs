//! Test-only fault injection: makes an instance a bad canary on purpose.
//!
//! The canary analysis (`kustomize/base/app/analysis-templates.yaml`) must
//! fail a release that answers 5xx or answers slowly; `gitops`'s analysis
//! test proves it against a real Prometheus by starting one `todo-app` with
//! faults and one without. Nothing here runs unless the process was started
//! with the [`FLAG`] argument; the variables alone do nothing, so a stray
//! environment cannot break a real deployment:
//!
//! | variable                     | meaning |
//! |------------------------------|---------|
//! | `DOCKET_FAULT_ERROR_PERCENT` | 0-100: that share of requests answer 500 (every request `n` with `n % 100 < percent`) |
//! | `DOCKET_FAULT_DELAY_MS`      | every request waits this long before it is handled |
//!
//! Probes, `/metrics` and `/version` never fault (the routes module mounts
//! them outside this layer), so a faulty instance stays ready and scraped,
//! as a bad canary pod would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::ConfigError;

/// The command-line argument that allows faults at all.
pub const FLAG: &str = "--test-faults";

/// The faults an instance injects; cheap to clone (one shared counter).
#[derive(Debug, Clone)]
pub struct Faults {
    error_percent: u64,
    delay: Duration,
    requests: Arc<AtomicU64>,
}

impl Faults {
    /// `Some` only when `args` (the process arguments after the program
    /// name) contain [`FLAG`]; then reads the variables of this module's
    /// table through `get`. Any other argument is an error, so a typo in the
    /// flag cannot pass silently.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let mut enabled = false;
        for arg in args {
            if arg == FLAG {
                enabled = true;
            } else {
                return Err(ConfigError::invalid(
                    "command line",
                    format!("unknown argument `{arg}` (the only one is {FLAG})"),
                ));
            }
        }
        if !enabled {
            return Ok(None);
        }
        let number = |name: &'static str, max: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(0),
                Some(raw) => raw
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            name,
                            format!("expected a whole number from 0 to {max}, got `{raw}`"),
                        )
                    }),
            }
        };
        let error_percent = number("DOCKET_FAULT_ERROR_PERCENT", 100)?;
        let delay = Duration::from_millis(number("DOCKET_FAULT_DELAY_MS", 60_000)?);
        tracing::warn!(
            fault.error_percent = error_percent,
            fault.delay_ms = delay.as_millis() as u64,
            "test faults enabled: this instance misbehaves on purpose"
        );
        Ok(Some(Self {
            error_percent,
            delay,
            requests: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// Whether the `n`th request (from 0) answers 500: a fixed share of
    /// every hundred, so a test knows exactly what ratio to expect.
    fn fails(&self, n: u64) -> bool {
        n % 100 < self.error_percent
    }
}

/// Middleware: delays and fails requests as configured; a no-op without faults.
pub async fn inject(
    State(faults): State<Option<Faults>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(faults) = faults else {
        return next.run(request).await;
    };
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    let n = faults.requests.fetch_add(1, Ordering::Relaxed);
    if faults.fails(n) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected test fault\n").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(args: &[&str], vars: &[(&str, &str)]) -> Result<Option<Faults>, ConfigError> {
        Faults::from_args(args.iter().map(|a| a.to_string()), |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn without_the_flag_the_variables_do_nothing() {
        let vars = [
            ("DOCKET_FAULT_ERROR_PERCENT", "100"),
            ("DOCKET_FAULT_DELAY_MS", "500"),
        ];
        assert!(faults(&[], &vars).unwrap().is_none());
    }

    #[test]
    fn with_the_flag_the_share_of_failures_is_exact() {
        let f = faults(&[FLAG], &[("DOCKET_FAULT_ERROR_PERCENT", "30")])
            .unwrap()
            .unwrap();
        assert_eq!((0..1000).filter(|n| f.fails(*n)).count(), 300);
        assert!(f.delay.is_zero());
    }

    #[test]
    fn bad_values_and_unknown_arguments_are_named() {
        let err = faults(&[FLAG], &[("DOCKET_FAULT_ERROR_PERCENT", "101")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("DOCKET_FAULT_ERROR_PERCENT is not valid"),
            "{err}"
        );
        let err = faults(&["--test-fault"], &[]).unwrap_err();
        assert!(
            err.to_string().contains("unknown argument `--test-fault`"),
            "{err}"
        );
    }
}
