//! Judging a canary the way Argo Rollouts does, outside a cluster.
//!
//! Reads the project's `AnalysisTemplate`s and the `Rollout`'s analysis
//! step from the YAML, substitutes the step's args (as the Rollout would
//! resolve them), runs each Prometheus metric's query against a real
//! Prometheus over its HTTP API and applies `successCondition` /
//! `failureCondition` with [`condition::Expr`], and ends each metric and the
//! run as an AnalysisRun does ([`run`]). The analysis test in
//! `gitops/tests/gitops/analysis.rs` uses it to prove that the templates pass
//! a healthy canary, fail an erroring or slow one, and find no evidence (an
//! Inconclusive run, which pauses the rollout) in a quiet or mislabelled one.

pub mod condition;
pub mod prometheus;
pub mod template;

use std::time::Duration;

use condition::Expr;
use prometheus::Prometheus;
use template::Metric;

/// One measurement's verdict, named as Argo Rollouts names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Successful,
    Failed,
    Inconclusive,
}

/// Argo Rollouts' rule (`EvaluateResult`): both given conditions are
/// evaluated (an error in either is an error); a true failure condition
/// fails; with both given and neither true the measurement is
/// inconclusive; with only one given, its negation stands for the other.
pub fn judge(
    success: Option<&Expr>,
    failure: Option<&Expr>,
    result: &[f64],
) -> anyhow::Result<Phase> {
    let succeeded = success.map(|e| e.holds(result)).transpose()?;
    let failed = failure.map(|e| e.holds(result)).transpose()?;
    let (succeeded, failed) = match (succeeded, failed) {
        (None, None) => return Ok(Phase::Successful),
        (Some(s), None) => (s, !s),
        (None, Some(f)) => (!f, f),
        (Some(s), Some(f)) => (s, f),
    };
    Ok(if failed {
        Phase::Failed
    } else if succeeded {
        Phase::Successful
    } else {
        Phase::Inconclusive
    })
}

impl Phase {
    /// Argo Rollouts' order from best to worst (`analysisStatusOrder`,
    /// without the phases this module does not model).
    fn rank(self) -> u8 {
        match self {
            Phase::Successful => 0,
            Phase::Inconclusive => 1,
            Phase::Failed => 2,
        }
    }

    /// The worse of two phases: what a run of two metrics ends as.
    pub fn worst(self, other: Phase) -> Phase {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// A metric's status after the measurements so far, as the AnalysisRun
/// assesses it after each one (`assessMetricStatus`): more inconclusive
/// measurements than `inconclusive_limit` end it Inconclusive, more failed
/// ones than `failure_limit` end it Failed (there the Inconclusive check
/// comes second and overrides), `count` measurements without either end it
/// Successful; `None` while it is still running.
pub fn assess(metric: &Metric, phases: &[Phase]) -> Option<Phase> {
    let tally = |wanted: Phase| phases.iter().filter(|p| **p == wanted).count() as u64;
    if tally(Phase::Inconclusive) > metric.inconclusive_limit {
        Some(Phase::Inconclusive)
    } else if tally(Phase::Failed) > metric.failure_limit {
        Some(Phase::Failed)
    } else if phases.len() as u64 >= metric.count {
        Some(Phase::Successful)
    } else {
        None
    }
}

/// One metric of a [`Run`]: each measurement's values and phase, and how it
/// ended.
#[derive(Debug, Clone)]
pub struct MetricRun {
    /// `template/metric`.
    pub name: String,
    pub measurements: Vec<(Vec<f64>, Phase)>,
    pub phase: Phase,
}

/// How an AnalysisRun ended.
#[derive(Debug, Clone)]
pub struct Run {
    /// The worst of its metrics: Inconclusive pauses the rollout, Failed
    /// aborts it.
    pub phase: Phase,
    pub metrics: Vec<MetricRun>,
}

impl Run {
    /// The phase of the metric named `template/metric`.
    pub fn metric(&self, name: &str) -> Option<Phase> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.phase)
    }
}

impl std::fmt::Display for Run {
    /// Every measurement, a line each, for a failing test's message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "run {:?}", self.phase)?;
        for metric in &self.metrics {
            writeln!(f, "  {} {:?}", metric.name, metric.phase)?;
            for (values, phase) in &metric.measurements {
                writeln!(f, "    {values:?} -> {phase:?}")?;
            }
        }
        Ok(())
    }
}

/// Runs `metrics` against `prometheus` as one AnalysisRun: a measurement of
/// every running metric per round, `interval` apart (the templates say 1m;
/// tests compress it), each metric assessed after each measurement. Once a
/// metric ends Failed or Inconclusive the run is terminating: the others end
/// Successful without further measurements, as they do there. A condition
/// that cannot be evaluated is an error here (an Error measurement there).
pub async fn run(
    prometheus: &Prometheus,
    metrics: &[Metric],
    interval: Duration,
) -> anyhow::Result<Run> {
    let mut runs: Vec<MetricRun> = metrics
        .iter()
        .map(|m| MetricRun {
            name: format!("{}/{}", m.template, m.name),
            measurements: Vec::new(),
            phase: Phase::Successful,
        })
        .collect();
    let mut done: Vec<Option<Phase>> = vec![None; metrics.len()];
    loop {
        for (i, metric) in metrics.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            let values = prometheus.query(&metric.query).await?;
            let phase = judge(metric.success.as_ref(), metric.failure.as_ref(), &values)?;
            runs[i].measurements.push((values, phase));
            let phases: Vec<Phase> = runs[i].measurements.iter().map(|(_, p)| *p).collect();
            done[i] = assess(metric, &phases);
        }
        let terminating = done
            .iter()
            .any(|d| d.is_some_and(|p| p != Phase::Successful));
        if terminating || done.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(interval).await;
    }
    let mut phase = Phase::Successful;
    for (metric, ended) in runs.iter_mut().zip(done) {
        metric.phase = ended.unwrap_or(Phase::Successful);
        phase = phase.worst(metric.phase);
    }
    Ok(Run {
        phase,
        metrics: runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(count: u64, failure_limit: u64, inconclusive_limit: u64) -> Metric {
        Metric {
            template: "t".into(),
            name: "m".into(),
            query: "q".into(),
            success: None,
            failure: None,
            count,
            failure_limit,
            inconclusive_limit,
        }
    }

    #[test]
    fn one_failure_is_tolerated_with_failure_limit_one() {
        use Phase::*;
        let m = metric(3, 1, 0);
        assert_eq!(
            assess(&m, &[Successful, Failed, Successful]),
            Some(Successful)
        );
        assert_eq!(assess(&m, &[Failed, Failed]), Some(Failed));
        assert_eq!(assess(&m, &[Successful, Failed]), None, "still running");
        assert_eq!(assess(&metric(1, 0, 0), &[Failed]), Some(Failed));
    }

    #[test]
    fn with_inconclusive_limit_zero_the_first_inconclusive_measurement_ends_the_metric() {
        use Phase::*;
        let m = metric(3, 1, 0);
        assert_eq!(assess(&m, &[Inconclusive]), Some(Inconclusive));
        assert_eq!(assess(&m, &[Successful, Inconclusive]), Some(Inconclusive));
        assert_eq!(assess(&metric(3, 1, 1), &[Inconclusive]), None);
    }

    #[test]
    fn a_run_is_its_worst_metric() {
        use Phase::*;
        assert_eq!(Successful.worst(Inconclusive), Inconclusive);
        assert_eq!(Inconclusive.worst(Failed), Failed);
        assert_eq!(Failed.worst(Inconclusive), Failed);
        assert_eq!(Successful.worst(Successful), Successful);
    }

    #[test]
    fn an_empty_or_nan_result_meets_neither_of_the_templates_conditions() {
        let s = Expr::parse("len(result) > 0 && !isNaN(result[0]) && result[0] <= 0.05").unwrap();
        let f = Expr::parse("len(result) > 0 && !isNaN(result[0]) && result[0] > 0.05").unwrap();
        let phase = |result: &[f64]| judge(Some(&s), Some(&f), result).unwrap();
        assert_eq!(phase(&[]), Phase::Inconclusive);
        assert_eq!(phase(&[f64::NAN]), Phase::Inconclusive);
        assert_eq!(phase(&[0.0]), Phase::Successful);
        assert_eq!(phase(&[0.3]), Phase::Failed);
    }

    #[test]
    fn failure_wins_and_neither_is_inconclusive() {
        let s = Expr::parse("result[0] < 1").unwrap();
        let f = Expr::parse("result[0] > 2").unwrap();
        assert_eq!(
            judge(Some(&s), Some(&f), &[0.5]).unwrap(),
            Phase::Successful
        );
        assert_eq!(judge(Some(&s), Some(&f), &[3.0]).unwrap(), Phase::Failed);
        assert_eq!(
            judge(Some(&s), Some(&f), &[1.5]).unwrap(),
            Phase::Inconclusive
        );
        assert_eq!(judge(Some(&s), None, &[1.5]).unwrap(), Phase::Failed);
        assert_eq!(judge(None, Some(&f), &[1.5]).unwrap(), Phase::Successful);
    }
}
