//! The shape shared by the feature-alignment methods (DDC, DAN, CORAL): cross-entropy on
//! the labelled batch plus λ · ramp(p) · a distance between the source and target
//! features, with the annealed learning rate, and the distance's epoch mean recorded
//! under one metric key. Each method's file supplies only the distance.

use super::{
    DeviceMean, JointForward, Method, MethodKind, MethodSettings, TrainBatch, annealed_lr,
    joint_forward, ramp,
};
use crate::model::Network;
use candle_core::{Result, Tensor};

/// The distance between the domains in one joint pass; `None` when the batch cannot give
/// one (no labelled source row, too few rows), and the step is then plain cross-entropy.
pub type Distance = fn(&JointForward) -> Result<Option<Tensor>>;

/// A feature-alignment method: cross-entropy + λ · ramp(p) · distance.
pub struct FeaturePenalty {
    kind: MethodKind,
    lambda: f64,
    /// Key of the distance in `history[].metrics`.
    metric: &'static str,
    distance: Distance,
    mean: DeviceMean,
}

impl FeaturePenalty {
    /// The method `kind` with the settings' λ, recording `distance` under `metric`.
    pub fn new(
        kind: MethodKind,
        settings: &MethodSettings,
        metric: &'static str,
        distance: Distance,
    ) -> Self {
        Self {
            kind,
            lambda: settings.lambda,
            metric,
            distance,
            mean: DeviceMean::default(),
        }
    }
}

impl Method for FeaturePenalty {
    fn kind(&self) -> MethodKind {
        self.kind
    }

    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &batch.y)?;
        let Some(distance) = (self.distance)(&out)? else {
            return Ok(ce);
        };
        self.mean.add(&distance)?;
        ce + (distance * (self.lambda * ramp(progress)))?
    }

    fn lr_scale(&self, progress: f64) -> f64 {
        annealed_lr(progress)
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        self.mean.take_into(self.metric, &mut out);
        out
    }
}
