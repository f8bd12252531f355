//! The small network that tells source features from target features, shared by DANN
//! (which its features learn to fool) and instance weighting (whose odds estimate the
//! density ratio). Its variables live in the network's var map under the method's prefix,
//! so the runner's optimizer trains them with everything else.

use super::init_method_vars;
use crate::model::{Network, layers};
use candle_core::{DType, Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

/// Hidden width of the domain classifier.
pub const HIDDEN: usize = 256;

/// Features → 256 → ReLU → 256 → ReLU → one logit (positive = target).
pub struct DomainClassifier {
    fc1: Linear,
    fc2: Linear,
    out: Linear,
}

impl DomainClassifier {
    /// Create the classifier's variables in `net` under `prefix` (e.g. `"dann"`), seeded.
    pub fn new(net: &Network, prefix: &str, in_dim: usize, seed: u64) -> Result<Self> {
        let vb = VarBuilder::from_varmap(&net.varmap, DType::F32, &net.device).pp(prefix);
        let fc1 = layers::linear(in_dim, HIDDEN, vb.pp("fc1"))?;
        let fc2 = layers::linear(HIDDEN, HIDDEN, vb.pp("fc2"))?;
        let out = layers::linear(HIDDEN, 1, vb.pp("out"))?;
        init_method_vars(
            net,
            &format!("{prefix}."),
            &[&format!("{prefix}.out.")],
            seed,
        )?;
        Ok(Self { fc1, fc2, out })
    }

    /// One logit per row of `features` (N×in_dim): a vector of N.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(features)?.relu()?;
        let h = self.fc2.forward(&h)?.relu()?;
        self.out.forward(&h)?.squeeze(1)
    }
}

/// Numerically stable binary cross-entropy of `logits` against 0/1 `targets` (same shape,
/// f32): max(z, 0) − z·y + log(1 + e^−|z|), averaged.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (logits.relu()? - (logits * targets)?)?
        .add(&softplus_neg_abs)?
        .mean_all()
}

/// Fraction of rows whose logit has the side of its 0/1 target: a scalar tensor.
pub fn accuracy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let predicted = logits.ge(0f32)?.to_dtype(DType::F32)?;
    (predicted - targets)?.abs()?.mean_all()?.affine(-1.0, 1.0)
}

/// Domain logits and 0/1 targets for a source set and a target set of features.
pub fn domain_logits(
    classifier: &DomainClassifier,
    source: &Tensor,
    target: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (n, m) = (source.dim(0)?, target.dim(0)?);
    let logits = classifier.forward(&Tensor::cat(&[source, target], 0)?)?;
    let labels = Tensor::cat(
        &[
            Tensor::zeros(n, DType::F32, source.device())?,
            Tensor::ones(m, DType::F32, source.device())?,
        ],
        0,
    )?;
    Ok((logits, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn stable_bce_matches_the_formula_and_survives_large_logits() {
        let z = Tensor::from_slice(&[0f32, 2.0, -3.0, 80.0], 4, &Device::Cpu).unwrap();
        let y = Tensor::from_slice(&[1f32, 0.0, 0.0, 0.0], 4, &Device::Cpu).unwrap();
        let got = bce_with_logits(&z, &y).unwrap().to_scalar::<f32>().unwrap();
        let sp = |v: f32| (1.0 + v.exp()).ln();
        let want = (sp(-0.0) + sp(2.0) + sp(-3.0) + 80.0) / 4.0;
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        let acc = accuracy(&z, &y).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(acc, 0.5);
    }
}
