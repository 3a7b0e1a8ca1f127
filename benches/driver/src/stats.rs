//! Summaries of latency samples and rates over a window.

use serde::Serialize;

/// Percentiles of a set of latency samples, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many samples.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile (meaningful only with well over 1000 samples).
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Summary {
    /// Summarizes samples given in microseconds (nearest-rank percentiles).
    pub fn of_micros(mut samples: Vec<i64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        Self {
            samples: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: samples[samples.len() - 1] as f64 / 1000.0,
        }
    }
}

/// A counter read at two instants.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Seconds since some fixed instant.
    pub at_s: f64,
    /// The counter's value.
    pub value: f64,
}

/// The counter's rate per second between two readings.
pub fn rate(from: Reading, to: Reading) -> f64 {
    let seconds = to.at_s - from.at_s;
    if seconds <= 0.0 { 0.0 } else { (to.value - from.value) / seconds }
}

/// Microseconds since the Unix epoch, by the wall clock the load generator stamps readings with.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Summary::of_micros((1..=1000).map(|ms| ms * 1000).rev().collect());
        assert_eq!(s.samples, 1000);
        assert_eq!(s.p50_ms, 500.0);
        assert_eq!(s.p99_ms, 990.0);
        assert_eq!(s.p999_ms, 999.0);
        assert_eq!(s.max_ms, 1000.0);
        assert_eq!(Summary::of_micros(vec![]), Summary::default());
        assert_eq!(Summary::of_micros(vec![1500]).p999_ms, 1.5);
    }

    #[test]
    fn rate_between_readings() {
        assert_eq!(rate(Reading { at_s: 1.0, value: 100.0 }, Reading { at_s: 3.0, value: 500.0 }), 200.0);
        assert_eq!(rate(Reading { at_s: 1.0, value: 100.0 }, Reading { at_s: 1.0, value: 500.0 }), 0.0);
    }
}
