//! MCC, minimum class confusion (Jin et al., 2020). On a shifted target a classifier
//! hedges between similar classes (a 4 that could be a 9); MCC measures that directly and
//! minimises it. For a target batch it takes the temperature-scaled predictions Ŷ (B×C),
//! weights each sample by its certainty, 1 + e^(−entropy) (normalised to sum to B), and
//! forms the class-confusion matrix Ŷᵀ·diag(w)·Ŷ (C×C). Each row is normalised to sum to
//! 1; the mass off the diagonal, divided by C, is the loss: 0 when no two classes are
//! ever predicted for the same images.
//!
//! Loss: cross-entropy + λ · ramp(p) · MCC. Needs no adaptation layer and no extra network.

use super::feature_penalty::FeaturePenalty;
use candle_core::{D, Result, Tensor};

/// MCC's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "mcc",
    family: super::Family::SelfTraining,
    summary: "Minimum class confusion: penalise how often the target predictions hedge between two classes (certainty-weighted class-confusion matrix).",
    hyperparameters: &[
        super::Hyperparameter::lambda(DEFAULT_LAMBDA),
        super::Hyperparameter::new(
            "temperature",
            "temperature",
            "Softens the target predictions before the confusion matrix is formed (above 1: softer).",
            DEFAULT_TEMPERATURE,
            (0.1, 100.0),
        )
        .logarithmic(),
    ],
    metrics: &[
        super::Metric::new("class_confusion", "class confusion", super::Unit::Plain)
            .higher_is_better(false),
    ],
    build: Some(|settings, _net| {
        let temperature = settings.param("temperature").unwrap_or(DEFAULT_TEMPERATURE);
        FeaturePenalty::boxed(settings, "class_confusion", move |out| {
            class_confusion(&out.target.logits, temperature).map(Some)
        })
    }),
    ..super::ADAPTATION_BASE
};

/// Default weight of the class-confusion term (the paper's 1).
pub const DEFAULT_LAMBDA: f64 = 1.0;
/// Default temperature of the predictions (the paper's 2.5).
pub const DEFAULT_TEMPERATURE: f64 = 2.5;

/// The MCC loss of a batch's class scores `logits` (B×C) at `temperature`: a scalar tensor
/// in [0, (C−1)/C].
pub fn class_confusion(logits: &Tensor, temperature: f64) -> Result<Tensor> {
    let (b, c) = logits.dims2()?;
    let p = candle_nn::ops::softmax(&(logits / temperature)?, D::Minus1)?;
    let logp = candle_nn::ops::log_softmax(&(logits / temperature)?, D::Minus1)?;
    // Certainty weights from the detached entropy (the weights steer, they are not trained).
    let entropy = (&p * &logp)?.sum(D::Minus1)?.neg()?.detach();
    let w = (entropy.neg()?.exp()? + 1.0)?;
    let w = (w.broadcast_div(&w.sum_all()?)? * b as f64)?;
    let confusion = p.broadcast_mul(&w.unsqueeze(1)?)?.t()?.matmul(&p)?;
    let confusion = confusion.broadcast_div(&confusion.sum_keepdim(1)?)?;
    let diagonal = confusion.mul(&Tensor::eye(c, confusion.dtype(), confusion.device())?)?;
    (confusion.sum_all()? - diagonal.sum_all()?)? / c as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn hedging_between_two_classes_is_confusion_and_certainty_is_not() {
        let t = |v: &[f32]| Tensor::from_slice(v, (2, 2), &Device::Cpu).unwrap();
        let mcc = |l: &Tensor| class_confusion(l, 1.0).unwrap().to_scalar::<f32>().unwrap();
        let certain = mcc(&t(&[20.0, 0.0, 0.0, 20.0]));
        let hedging = mcc(&t(&[0.0, 0.0, 0.0, 0.0]));
        assert!(certain < 1e-6, "{certain}");
        // Uniform predictions: every row of the confusion matrix is ½, ½ → off-diagonal ½.
        assert!((hedging - 0.5).abs() < 1e-5, "{hedging}");
    }
}
