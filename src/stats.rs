//! Summaries of repeated timings, the way hyperfine reports them: mean ±
//! standard deviation, min and max. A single run has no deviation.

use serde::{Deserialize, Serialize};

/// A summary of one or more timings, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many runs were timed.
    pub runs: usize,
    /// The mean, in seconds.
    pub mean: f64,
    /// The sample standard deviation; `None` for a single run.
    pub stddev: Option<f64>,
    /// The fastest run.
    pub min: f64,
    /// The slowest run.
    pub max: f64,
}

impl Summary {
    /// Summarizes the samples; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let n = samples.len();
        if n == 0 {
            return None;
        }
        let mean = samples.iter().sum::<f64>() / n as f64;
        let stddev = (n > 1).then(|| {
            let square_sum: f64 =
                samples.iter().map(|s| (s - mean).powi(2)).sum();
            (square_sum / (n - 1) as f64).sqrt()
        });
        Some(Summary {
            runs: n,
            mean,
            stddev,
            min: samples.iter().copied().fold(f64::INFINITY, f64::min),
            max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// `1.234 s ± 0.056 s`, or `1.234 s` for a single run.
    pub fn display(&self) -> String {
        match self.stddev {
            Some(sd) => format!("{:.3} s ± {sd:.3} s", self.mean),
            None => format!("{:.3} s", self.mean),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_runs_have_a_sample_standard_deviation() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();

        assert_eq!(s.runs, 4);
        assert_eq!(s.mean, 2.5);
        assert!((s.stddev.unwrap() - 1.2909944).abs() < 1e-6);
        assert_eq!((s.min, s.max), (1.0, 4.0));
        assert_eq!(s.display(), "2.500 s ± 1.291 s");
    }

    #[test]
    fn a_single_run_shows_no_deviation() {
        let s = Summary::of(&[0.25]).unwrap();

        assert_eq!(s.stddev, None);
        assert_eq!(s.display(), "0.250 s");
    }

    #[test]
    fn no_runs_is_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }
}
