//! Latency percentiles and the aggregation of repeated runs.

use serde::{Deserialize, Serialize};

/// Nearest-rank percentile of an ascending slice: the smallest value such that at least `p` percent
/// of the samples are at or below it. `None` for an empty slice. `p` is clamped to 0..=100.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(sorted.len() - 1)])
}

/// Latency summary of one run, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_us: u32,
    pub p95_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
}

impl Latency {
    /// Sorts `samples` in place and summarizes them; `None` when there are none.
    pub fn of(samples: &mut [u32]) -> Option<Latency> {
        samples.sort_unstable();
        Some(Latency {
            samples: samples.len(),
            p50_us: percentile(samples, 50.0)?,
            p95_us: percentile(samples, 95.0)?,
            p99_us: percentile(samples, 99.0)?,
            max_us: *samples.last()?,
        })
    }
}

/// One figure over repeated runs: the median, and the min and max.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Agg {
    /// Median (mean of the middle two for an even count), min and max; `None` for no values.
    /// NaNs are ignored.
    pub fn of(values: &[f64]) -> Option<Agg> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Agg { median, min: v[0], max: v[n - 1], runs: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&v, 150.0), Some(100));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
        // 10 samples: p99 is the largest, p50 the 5th.
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&v, 99.0), Some(10));
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 51.0), Some(6));
    }

    #[test]
    fn latency_summary_sorts() {
        let mut v = vec![5, 1, 4, 2, 3];
        let l = Latency::of(&mut v).unwrap();
        assert_eq!(l, Latency { samples: 5, p50_us: 3, p95_us: 5, p99_us: 5, max_us: 5 });
        assert!(Latency::of(&mut []).is_none());
    }

    #[test]
    fn aggregate_runs() {
        assert_eq!(Agg::of(&[3.0, 1.0, 2.0]), Some(Agg { median: 2.0, min: 1.0, max: 3.0, runs: 3 }));
        assert_eq!(Agg::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Agg::of(&[f64::NAN, 5.0]).unwrap(), Agg { median: 5.0, min: 5.0, max: 5.0, runs: 1 });
        assert!(Agg::of(&[]).is_none());
    }
}
