//! The statistics of an experiment's report (`nudge simulate`): conversion
//! rates with 95% Wilson score intervals, the difference of two rates with
//! Newcombe's hybrid score interval (his method 10, built from the two Wilson
//! intervals), and the two-sided p-value of the pooled two-proportion z-test.
//! The normal distribution is statrs'.

use statrs::distribution::{ContinuousCDF, Normal};

/// The standard normal's 97.5th percentile: a two-sided 95% interval.
fn z95() -> f64 {
    Normal::standard().inverse_cdf(0.975)
}

/// A rate of `k` successes in `n` trials with its 95% Wilson interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub k: u64,
    pub n: u64,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

pub fn wilson(k: u64, n: u64) -> Rate {
    if n == 0 {
        return Rate {
            k,
            n,
            rate: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let z = z95();
    let (kf, nf) = (k as f64, n as f64);
    let p = kf / nf;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * nf)) / (1.0 + z2 / nf);
    let half = z / (1.0 + z2 / nf) * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    Rate {
        k,
        n,
        rate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

/// One arm against the control: the difference of rates (arm − control),
/// its 95% interval and the two-sided p-value of the z-test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    /// `None` when either arm has no entries, or every entry converted or
    /// none did in both (the test is undefined).
    pub p_value: Option<f64>,
}

pub fn compare(arm: Rate, control: Rate) -> Comparison {
    let d = arm.rate - control.rate;
    // Newcombe (1998), method 10.
    let low = d - ((arm.rate - arm.low).powi(2) + (control.high - control.rate).powi(2)).sqrt();
    let high = d + ((arm.high - arm.rate).powi(2) + (control.rate - control.low).powi(2)).sqrt();
    let p_value = if arm.n == 0 || control.n == 0 {
        None
    } else {
        let pooled = (arm.k + control.k) as f64 / (arm.n + control.n) as f64;
        let se = (pooled * (1.0 - pooled) * (1.0 / arm.n as f64 + 1.0 / control.n as f64)).sqrt();
        (se > 0.0).then(|| {
            let z = (d / se).abs();
            2.0 * (1.0 - Normal::standard().cdf(z))
        })
    };
    Comparison {
        difference: d,
        low: low.max(-1.0),
        high: high.min(1.0),
        p_value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    /// Wilson's interval against the closed form worked by hand: for 10 of 20,
    /// p = 0.5, z = 1.959964: centre 0.5, half-width
    /// z/(1 + z²/20) · sqrt(0.25/20 + z²/1600) = 0.2008 → (0.2993, 0.7007).
    #[test]
    fn wilson_matches_the_hand_worked_interval() {
        let r = wilson(10, 20);
        assert!(
            close(r.low, 0.2993, 1e-4) && close(r.high, 0.7007, 1e-4),
            "{r:?}"
        );
        // 0 of 10: (0, 0.2775) (Wilson's interval never leaves [0, 1]).
        let r = wilson(0, 10);
        assert!(
            close(r.low, 0.0, 1e-12) && close(r.high, 0.2775, 1e-4),
            "{r:?}"
        );
        assert_eq!(wilson(0, 0).n, 0);
    }

    /// Newcombe's own example (Statistics in Medicine 17, 1998, Table II,
    /// 56/70 − 48/80): difference 0.2000, method 10 interval 0.0524 to 0.3339;
    /// the pooled z-test by hand: p = 104/150, se = 0.07547, z = 2.650,
    /// two-sided p = 0.00804.
    #[test]
    fn newcombe_and_the_z_test_match_the_published_example() {
        let c = compare(wilson(56, 70), wilson(48, 80));
        assert!(close(c.difference, 0.2, 1e-12));
        assert!(
            close(c.low, 0.0524, 1e-4) && close(c.high, 0.3339, 1e-4),
            "{c:?}"
        );
        let p = c.p_value.unwrap();
        assert!(close(p, 0.00804, 5e-5), "{p}");
        // No entries on one side: no p-value.
        assert_eq!(compare(wilson(1, 2), wilson(0, 0)).p_value, None);
        // Identical arms: difference 0, p-value 1.
        let same = compare(wilson(30, 100), wilson(30, 100));
        assert!(close(same.difference, 0.0, 1e-12) && close(same.p_value.unwrap(), 1.0, 1e-9));
    }
}
