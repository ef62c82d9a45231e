//! Judging a canary the way Argo Rollouts does, outside a cluster.
//!
//! Reads the project's `AnalysisTemplate`s and the `Rollout`'s analysis
//! step from the YAML, substitutes the step's args (as the Rollout would
//! resolve them), runs each Prometheus metric's query against a real
//! Prometheus over its HTTP API and applies `successCondition` /
//! `failureCondition` with [`condition::Expr`]. The analysis test in
//! `gitops/tests/analysis.rs` uses it to prove that the templates pass a
//! healthy canary and fail an erroring or slow one.

pub mod condition;
pub mod prometheus;
pub mod template;

use condition::Expr;

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

/// A metric's verdict over its measurements, as the AnalysisRun decides
/// it: more failures than `failure_limit` fail it, more inconclusive ones
/// than `inconclusive_limit` make it inconclusive, otherwise it succeeds.
pub fn verdict(phases: &[Phase], failure_limit: u64, inconclusive_limit: u64) -> Phase {
    let count = |wanted: Phase| phases.iter().filter(|p| **p == wanted).count() as u64;
    if count(Phase::Failed) > failure_limit {
        Phase::Failed
    } else if count(Phase::Inconclusive) > inconclusive_limit {
        Phase::Inconclusive
    } else {
        Phase::Successful
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failure_is_tolerated_with_failure_limit_one() {
        use Phase::*;
        assert_eq!(verdict(&[Successful, Failed, Successful], 1, 0), Successful);
        assert_eq!(verdict(&[Failed, Failed, Successful], 1, 0), Failed);
        assert_eq!(
            verdict(&[Successful, Inconclusive, Successful], 1, 0),
            Inconclusive
        );
        assert_eq!(verdict(&[Failed], 0, 0), Failed);
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
