//! Percentiles over latencies the bench measures itself (the event path);
//! wrk reports its own for the HTTP scenarios.

use serde::Serialize;

/// The nearest-rank percentile `p` (0-100] of ascending `sorted` samples:
/// the smallest sample with at least p% of all samples at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Count, p50, p99 and max of a set of latencies in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// `None` for no samples.
pub fn summarize(mut samples_ms: Vec<f64>) -> Option<Summary> {
    samples_ms.sort_by(f64::total_cmp);
    Some(Summary {
        count: samples_ms.len(),
        p50_ms: percentile(&samples_ms, 50.0)?,
        p99_ms: percentile(&samples_ms, 99.0)?,
        max_ms: *samples_ms.last()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_pick_real_samples() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&samples, 100.0), Some(100.0));
        // With few samples the p99 is the worst one, not an interpolation.
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summaries_sort_their_samples_first() {
        let summary = summarize(vec![30.0, 10.0, 20.0, 40.0]).unwrap();
        assert_eq!(
            summary,
            Summary {
                count: 4,
                p50_ms: 20.0,
                p99_ms: 40.0,
                max_ms: 40.0
            }
        );
        assert_eq!(summarize(Vec::new()), None);
    }
}
