//! The common scale the metrics share: per-feature standardisation by statistics
//! pooled over both domains.
//!
//! Pooled (not per-domain) statistics keep the shift between the domains visible:
//! standardising each domain by its own mean and deviation would erase exactly the
//! first- and second-order differences the A-distance and CORAL measure. Features
//! that are constant over the pooled data carry no information and are mapped to
//! zero; when every feature is constant there is nothing to compare.

use super::{AnalysisError, Features};

/// Pooled per-feature mean and inverse standard deviation.
#[derive(Debug, Clone)]
pub(crate) struct Standardizer {
    mean: Vec<f64>,
    /// 1/σ for varying features, 0 for constant ones (which therefore map to 0).
    inv_std: Vec<f64>,
}

impl Standardizer {
    /// Fits the pooled statistics of `parts` (all with the same `d`).
    pub(crate) fn fit(parts: &[&Features]) -> Result<Self, AnalysisError> {
        let d = parts.first().map_or(0, |f| f.d);
        let n: usize = parts.iter().map(|f| f.n).sum();
        if d == 0 {
            return Err(AnalysisError::NoDimensions);
        }
        let mut mean = vec![0.0f64; d];
        for f in parts {
            for row in f.rows() {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += f64::from(v);
                }
            }
        }
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
        // Two passes: the variance of centred values does not cancel catastrophically.
        let mut var = vec![0.0f64; d];
        for f in parts {
            for row in f.rows() {
                for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                    let c = f64::from(v) - m;
                    *s += c * c;
                }
            }
        }
        let mut varying = 0;
        let inv_std: Vec<f64> = var
            .iter()
            .zip(&mean)
            .map(|(&s, &m)| {
                let std = (s / n.max(1) as f64).sqrt();
                // f32 inputs: a deviation below ~1e-6 of the magnitude is rounding noise.
                if std > 1e-6 * m.abs() && std > 1e-30 {
                    varying += 1;
                    1.0 / std
                } else {
                    0.0
                }
            })
            .collect();
        if varying == 0 {
            return Err(AnalysisError::ConstantFeatures);
        }
        Ok(Self { mean, inv_std })
    }

    /// `f` on the pooled scale: zero pooled mean, unit pooled deviation per feature.
    pub(crate) fn apply(&self, f: &Features) -> Features {
        let d = f.d;
        let mut data = Vec::with_capacity(f.data.len());
        for row in f.rows() {
            for ((&v, m), s) in row.iter().zip(&self.mean).zip(&self.inv_std) {
                data.push(((f64::from(v) - m) * s) as f32);
            }
        }
        Features { data, n: f.n, d }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_statistics_keep_the_shift_and_zero_constant_columns() {
        let a = Features::new(vec![0.0, 5.0, 2.0, 5.0], 2, 2).unwrap();
        let b = Features::new(vec![4.0, 5.0, 6.0, 5.0], 2, 2).unwrap();
        let s = Standardizer::fit(&[&a, &b]).unwrap();
        let (za, zb) = (s.apply(&a), s.apply(&b));
        // Column 1 is constant: mapped to zero.
        assert_eq!(za.row(0)[1], 0.0);
        // Pooled mean 3, deviation sqrt(5): the source sits below, the target above.
        assert!(za.row(0)[0] < 0.0 && zb.row(1)[0] > 0.0);
        let all: f32 = za.data.iter().chain(&zb.data).map(|v| v * v).sum();
        assert!((all - 4.0).abs() < 1e-5, "unit pooled variance, got {all}");
    }

    #[test]
    fn all_constant_features_are_an_error() {
        let a = Features::new(vec![1.0; 6], 3, 2).unwrap();
        let err = Standardizer::fit(&[&a]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "all features are constant: nothing to compare"
        );
    }
}
