//! DANN, domain-adversarial training (Ganin & Lempitsky, 2015): a domain classifier learns
//! to tell source from target on the adaptation layer's features, and those features are
//! trained to fool it through a gradient reversal layer (GRL). The GRL is identity going
//! forward and multiplies the gradient by −c going back, with no custom op:
//! `x.detach() + (x − x.detach()) · (−c)`. As the features become domain-invariant the
//! domain classifier's accuracy falls toward 50 %.
//!
//! c = λ · (2/(1+exp(−10p)) − 1), the usual ramp from 0 to λ. The domain classifier itself
//! always learns at full strength. Loss: cross-entropy + domain BCE (through the GRL).

use super::domain_classifier::{DomainClassifier, accuracy, bce_with_logits, domain_logits};
use super::{EpochMeans, Method, MethodSettings, TrainBatch, joint_forward, ramp};
use crate::model::Network;
use candle_core::{Result, Tensor};

/// Default final strength of the gradient reversal. The papers' 1 assumes tens of
/// thousands of steps; in a short run (the benchmark's 8 epochs, ~250 steps) the reversed
/// gradient then outweighs the class signal before the classes have formed, and on three
/// shifts λ = 1 ended below or level with source-only, where 0.3 gained on all three (see
/// docs/methods.md).
pub const DEFAULT_LAMBDA: f64 = 0.3;

/// Dann's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "dann",
    family: super::Family::Adversarial,
    summary: "A domain classifier tries to tell source from target features; the features learn to fool it through a gradient reversal layer.",
    hyperparameters: &[super::Hyperparameter::lambda(DEFAULT_LAMBDA)],
    metrics: &[
        super::domain_classifier::DOMAIN_ACCURACY,
        super::Metric::new("domain_loss", "domain classifier loss", super::Unit::Nats),
    ],
    build: Some(|settings, net| Ok(Box::new(Dann::new(settings, net)?))),
    ..super::ADAPTATION_BASE
};

/// How much faster than the network DANN's domain classifier learns. An adversary that
/// is close to optimal at every step gives the features an informative gradient; one that
/// lags lets them win by flipping it. Measured on three shifts at λ = 0.3 (points over
/// source-only): 10× −0.9/+5.4/+13.3, 30× +0.5/+9.5/+14.0, 100× diverged.
pub const CLASSIFIER_SPEED: f64 = 30.0;

/// Variable prefix of DANN's domain classifier.
pub const PREFIX: &str = "dann";

/// Identity forward, gradient multiplied by `−coeff` backward.
pub fn gradient_reversal(x: &Tensor, coeff: f64) -> Result<Tensor> {
    let frozen = x.detach();
    frozen.add(&(x.sub(&frozen)? * (-coeff))?)
}

/// Domain-adversarial training.
pub struct Dann {
    lambda: f64,
    classifier: DomainClassifier,
    means: EpochMeans,
}

impl Dann {
    /// DANN with its domain classifier created in `net` (under `dann.`).
    pub fn new(settings: &MethodSettings, net: &Network) -> Result<Self> {
        let width = net.spec.bottleneck.unwrap_or_else(|| net.feature_dim());
        Ok(Self {
            lambda: settings.lambda,
            classifier: DomainClassifier::new(net, PREFIX, width, settings.seed, CLASSIFIER_SPEED)?,
            means: EpochMeans::default(),
        })
    }
}

impl Method for Dann {
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &batch.y)?;
        let Some(fs) = out.source.as_ref().map(|s| &s.features) else {
            return Ok(ce);
        };
        let coeff = self.lambda * ramp(progress);
        let (logits, labels) = domain_logits(
            &self.classifier,
            &gradient_reversal(fs, coeff)?,
            &gradient_reversal(&out.target.features, coeff)?,
        )?;
        let domain_loss = bce_with_logits(&logits, &labels)?;
        self.means.add("domain_loss", &domain_loss)?;
        self.means.add("domain_acc", &accuracy(&logits, &labels)?)?;
        ce + domain_loss
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        self.means.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn gradient_reversal_is_identity_forward_and_negated_backward() {
        let x = Var::from_slice(&[1f32, -2.0, 3.0], 3, &Device::Cpu).unwrap();
        let y = gradient_reversal(x.as_tensor(), 0.5).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), vec![1.0, -2.0, 3.0]);
        let grads = (y * 2.0).unwrap().sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(g, vec![-1.0, -1.0, -1.0]);
    }
}
