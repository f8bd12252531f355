//! Deep CORAL (Sun & Saenko, 2016): align the second-order statistics of the two domains by
//! penalising the distance between the source and target feature covariances.
//!
//! CORAL loss = ‖C_s − C_t‖²_F / (4d²), with C the unbiased covariance (divided by n − 1)
//! of the d-dimensional features of a batch: the paper's normalisation. It is applied to
//! the adaptation layer's output; the default λ (100) compensates for the small scale.
//!
//! Loss: cross-entropy + λ · ramp(p) · CORAL.

use super::JointForward;
use super::feature_penalty::FeaturePenalty;
use candle_core::{Result, Tensor};

/// Default weight of the CORAL term: with 1/(4d²) at d = 256 the loss is small (≈0.04 at
/// the start), and λ = 100 puts it on the scale of the cross-entropy.
pub const DEFAULT_LAMBDA: f64 = 100.0;

/// Coral's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "coral",
    summary: "Deep CORAL: penalise the distance between the source and target feature covariances.",
    hyperparameters: &[super::Hyperparameter::lambda(DEFAULT_LAMBDA)],
    metrics: &[
        super::Metric::new("coral", "CORAL distance", super::Unit::Plain).higher_is_better(false),
    ],
    build: Some(|s, _| FeaturePenalty::boxed(s, "coral", distance)),
    ..super::ADAPTATION_BASE
};

/// Unbiased covariance of the rows of `x` (n×d, n ≥ 2): d×d.
pub fn covariance(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(0)?;
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    centred.t()?.matmul(&centred)? / (n.max(2) - 1) as f64
}

/// ‖C_s − C_t‖²_F / (4d²) between the rows of `source` and `target`: a scalar tensor.
pub fn coral_loss(source: &Tensor, target: &Tensor) -> Result<Tensor> {
    let d = source.dim(1)?;
    let diff = covariance(source)?.sub(&covariance(target)?)?;
    diff.sqr()?.sum_all()? / (4.0 * (d * d) as f64)
}

/// CORAL loss between the source and target adaptation-layer features; none while
/// either side has fewer than two rows (no covariance).
pub fn distance(out: &JointForward) -> Result<Option<Tensor>> {
    let Some(source) = out.source.as_ref().filter(|_| out.n_source >= 2) else {
        return Ok(None);
    };
    if out.target.features.dim(0)? < 2 {
        return Ok(None);
    }
    coral_loss(&source.features, &out.target.features).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn covariance_matches_the_textbook_formula() {
        let x = Tensor::from_slice(&[1f32, 2., 3., 6., 5., 4.], (3, 2), &Device::Cpu).unwrap();
        let c = covariance(&x).unwrap().to_vec2::<f32>().unwrap();
        // Columns (1,3,5) and (2,6,4): variances 4 and 4, covariance 2.
        assert_eq!(c, vec![vec![4.0, 2.0], vec![2.0, 4.0]]);
        let same = coral_loss(&x, &x).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(same, 0.0);
    }
}
