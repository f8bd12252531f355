//! DDC, Deep Domain Confusion (Tzeng et al., 2014): an adaptation layer (the network's
//! bottleneck) between backbone and classifier, and a penalty on the MMD² between the
//! source and target outputs of that layer, so the classifier sees features in which the
//! domains look alike. One Gaussian kernel, its bandwidth the median distance.
//!
//! Loss: cross-entropy on the labelled batch + λ · ramp(p) · MMD²(source, target).

use super::mmd::mmd2;
use super::{
    DeviceMean, Method, MethodKind, MethodSettings, TrainBatch, annealed_lr, joint_forward, ramp,
};
use crate::model::Network;
use candle_core::{Result, Tensor};

/// Default weight of the MMD² term.
pub const DEFAULT_LAMBDA: f64 = 1.0;

/// Ddc's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "ddc",
    family: super::Family::Feature,
    summary: "Add an adaptation layer and pull the source and target features together with a Gaussian-kernel MMD² penalty.",
    // Labelled target images (`--target-labels K`) join the classification loss.
    labelled: super::LabelledData::SourceAndTarget,
    uses_unlabeled_target: true,
    bottleneck: Some(super::DEFAULT_BOTTLENECK),
    hyperparameters: &[super::Hyperparameter::lambda(DEFAULT_LAMBDA)],
    metrics: &[super::Metric::new("mmd2", "MMD²", super::Unit::Plain).higher_is_better(false)],
    build: Some(|settings, _net| Ok(Box::new(Ddc::new(settings)))),
};

/// Deep Domain Confusion.
pub struct Ddc {
    lambda: f64,
    mmd: DeviceMean,
}

impl Ddc {
    /// DDC with the settings' λ.
    pub fn new(settings: &MethodSettings) -> Self {
        Self {
            lambda: settings.lambda,
            mmd: DeviceMean::default(),
        }
    }
}

impl Method for Ddc {
    fn kind(&self) -> MethodKind {
        MethodKind::Ddc
    }

    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &batch.y)?;
        let Some(fs) = &out.source_features else {
            return Ok(ce);
        };
        let mmd = mmd2(fs, &out.target_features, &[1.0])?;
        self.mmd.add(&mmd)?;
        ce + (mmd * (self.lambda * ramp(progress)))?
    }

    fn lr_scale(&self, progress: f64) -> f64 {
        annealed_lr(progress)
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        self.mmd
            .take()
            .map(|v| vec![("mmd2".to_string(), v)])
            .unwrap_or_default()
    }
}
