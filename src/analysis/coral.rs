//! The CORAL distance: how different the two domains' second-order statistics
//! (feature covariances) are, `‖C_s − C_t‖²_F / (4d²)`.
//!
//! The `1/(4d²)` normalisation is Deep CORAL's (Sun & Saenko, 2016), so this number
//! and a Deep CORAL run's loss are on the same scale. The covariances are those of
//! features standardised by statistics pooled over both domains: unlike Deep CORAL
//! on raw activations, the number does not depend on the units of the features.
//! Each covariance is one `XᵀX` product through the blocked parallel GEMM.

use super::linalg::{Operand, centred, column_means, matmul};
use super::random::{self, Stream};
use super::standardize::Standardizer;
use super::{AnalysisError, Features, validate_pair};

/// `‖C_s − C_t‖²_F / (4d²)` with covariances of pooled-standardised features.
pub fn coral_distance(source: &Features, target: &Features) -> Result<f64, AnalysisError> {
    validate_pair(source, target, "the CORAL distance", 2)?;
    let scaler = Standardizer::fit(&[source, target])?;
    let cs = covariance(&scaler.apply(source));
    let ct = covariance(&scaler.apply(target));
    let d = source.d as f64;
    let squared: f64 = cs
        .iter()
        .zip(&ct)
        .map(|(a, b)| {
            let diff = f64::from(*a) - f64::from(*b);
            diff * diff
        })
        .sum();
    Ok(squared / (4.0 * d * d))
}

/// `coral_distance` on seeded subsamples of at most `max_points` rows per domain.
pub fn coral_distance_subsampled(
    source: &Features,
    target: &Features,
    max_points: usize,
    seed: u64,
) -> Result<f64, AnalysisError> {
    let mut rng = random::rng(seed, Stream::CoralSubsample);
    let (s, _) = source.subsample(max_points.max(2), &mut rng);
    let (t, _) = target.subsample(max_points.max(2), &mut rng);
    coral_distance(&s, &t)
}

/// Sample covariance (divisor n − 1) of the rows of `f`, row-major `d × d`.
fn covariance(f: &Features) -> Vec<f32> {
    let means = column_means(&f.data, f.n, f.d);
    let z = centred(&f.data, f.d, &means);
    let op = Operand::new(&z, f.n, f.d);
    let mut c = matmul(op.t(), op);
    let scale = 1.0 / (f.n as f32 - 1.0);
    c.iter_mut().for_each(|v| *v *= scale);
    c
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::gaussian_domain;
    use super::*;

    #[test]
    fn identical_covariances_give_about_zero() {
        let x = gaussian_domain(500, 4, 0.0, 1.0, 1);
        let y = gaussian_domain(500, 4, 0.0, 1.0, 2);
        // Sampling noise alone: about (16 entries × 0.09²) / (4 · 4²) ≈ 2e-3.
        let c = coral_distance(&x, &y).unwrap();
        assert!(c < 5e-3, "{c}");
    }

    #[test]
    fn coral_grows_with_a_covariance_scaling_shift() {
        let x = gaussian_domain(400, 5, 0.0, 1.0, 3);
        let mut last = -1.0;
        for shift in [0.0f32, 0.5, 1.0, 2.0] {
            let y = gaussian_domain(400, 5, 0.0, 1.0 + shift, 4);
            let c = coral_distance(&x, &y).unwrap();
            assert!(c > last, "shift {shift}: {c} after {last}");
            last = c;
        }
    }

    #[test]
    fn matches_the_formula_on_a_tiny_example() {
        // One feature: pooled mean 0, pooled variance 5/2; source variance 2, target 8,
        // in pooled units 0.8 and 3.2: (3.2 − 0.8)² / 4 = 1.44.
        let s = Features::new(vec![-1.0, 1.0], 2, 1).unwrap();
        let t = Features::new(vec![-2.0, 2.0], 2, 1).unwrap();
        let c = coral_distance(&s, &t).unwrap();
        assert!((c - 1.44).abs() < 1e-5, "{c}");
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        let x = gaussian_domain(5, 2, 0.0, 1.0, 1);
        let one = gaussian_domain(1, 2, 0.0, 1.0, 2);
        assert!(matches!(
            coral_distance(&one, &x),
            Err(AnalysisError::TooFewSamples { got: 1, .. })
        ));
        let flat = Features::new(vec![1.0; 10], 5, 2).unwrap();
        assert_eq!(
            coral_distance(&flat, &flat).unwrap_err(),
            AnalysisError::ConstantFeatures
        );
    }
}
