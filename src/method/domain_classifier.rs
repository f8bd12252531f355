//! The small network that tells source features from target features, shared by DANN
//! (which its features learn to fool) and instance weighting (whose odds estimate the
//! density ratio). Its variables live in the network's var map under the method's prefix,
//! so the runner's optimizer trains them with everything else.

use super::init_method_vars;
use crate::metric::{Metric, Unit};
use crate::model::{Network, layers};
use candle_core::{DType, Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

/// The domain classifier's accuracy on source against target features: at 0.5 (chance) it
/// can no longer tell them apart.
pub const DOMAIN_ACCURACY: Metric =
    Metric::new("domain_acc", "domain classifier accuracy", Unit::Fraction).with_chance(0.5);

/// Hidden width of the domain classifier.
pub const HIDDEN: usize = 256;

/// How much faster than the network a domain classifier learns by default. A domain
/// classifier that lags behind the features it judges is fooled by a flip, not by
/// alignment: the adversarial game then oscillates (its accuracy swinging far below 50 %)
/// instead of settling. The feature extractor has large fan-ins, so under Adam one step
/// moves its outputs much further than one step moves a small classifier's.
pub const SPEED: f64 = 10.0;

/// Standardised features → 256 → ReLU → 256 → ReLU → one logit (positive = target).
pub struct DomainClassifier {
    speed: f64,
    fc1: Linear,
    fc2: Linear,
    out: Linear,
}

impl DomainClassifier {
    /// Create the classifier's variables in `net` under `prefix` (e.g. `"dann"`), seeded;
    /// it learns `speed` times faster than the network (see [`SPEED`]).
    pub fn new(net: &Network, prefix: &str, in_dim: usize, seed: u64, speed: f64) -> Result<Self> {
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
        // Stored divided by `speed` and multiplied back in `forward`: same function, but Adam
        // (whose steps do not depend on the gradient's scale) moves it `speed`× faster.
        for l in [&fc1, &fc2, &out] {
            for t in [Some(l.weight()), l.bias()].into_iter().flatten() {
                scale_var(net, t, 1.0 / speed)?;
            }
        }
        Ok(Self {
            speed,
            fc1,
            fc2,
            out,
        })
    }

    /// One logit per row of `features` (N×in_dim): a vector of N. Each row is standardised
    /// first (zero mean, unit variance over its features): otherwise, under a gradient
    /// reversal, the features can win by growing without bound, and the adversarial game
    /// blows up instead of settling.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let centred = features.broadcast_sub(&features.mean_keepdim(1)?)?;
        let std = (centred.sqr()?.mean_keepdim(1)? + 1e-5)?.sqrt()?;
        let h = (self.fc1.forward(&centred.broadcast_div(&std)?)? * self.speed)?.relu()?;
        let h = (self.fc2.forward(&h)? * self.speed)?.relu()?;
        (self.out.forward(&h)? * self.speed)?.squeeze(1)
    }
}

/// Multiply the variable behind `t` (found by identity in the var map) by `factor`.
fn scale_var(net: &Network, t: &Tensor, factor: f64) -> Result<()> {
    let data = net
        .varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("var map poisoned".into()))?;
    for var in data.values() {
        if var.as_tensor().id() == t.id() {
            var.set(&(var.as_tensor() * factor)?)?;
        }
    }
    Ok(())
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
