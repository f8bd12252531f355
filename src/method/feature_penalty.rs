//! The shape shared by the methods that add one penalty on the joint pass to the
//! cross-entropy (DDC, DAN and CORAL between the domains' features, MCC on the target's
//! predictions): cross-entropy on the labelled batch plus λ · ramp(p) · the penalty, with
//! the penalty's epoch mean recorded under one metric key. Each method's file supplies
//! only the penalty.

use super::{EpochMeans, JointForward, Method, MethodSettings, TrainBatch, joint_forward, ramp};
use crate::model::Network;
use candle_core::{Result, Tensor};

/// The penalty of one joint pass; `None` when the batch cannot give one (no labelled
/// source row, too few rows), and the step is then plain cross-entropy.
pub type Penalty = Box<dyn Fn(&JointForward) -> Result<Option<Tensor>> + Send>;

/// A method whose loss is cross-entropy + λ · ramp(p) · penalty.
pub struct FeaturePenalty {
    lambda: f64,
    /// Key of the penalty in `history[].metrics`.
    metric: &'static str,
    penalty: Penalty,
    means: EpochMeans,
}

impl FeaturePenalty {
    /// The method with the settings' λ, recording `penalty` under `metric`.
    pub fn new(
        settings: &MethodSettings,
        metric: &'static str,
        penalty: impl Fn(&JointForward) -> Result<Option<Tensor>> + Send + 'static,
    ) -> Self {
        Self {
            lambda: settings.lambda,
            metric,
            penalty: Box::new(penalty),
            means: EpochMeans::default(),
        }
    }
}

impl FeaturePenalty {
    /// [`FeaturePenalty::new`], boxed for a descriptor's `build`.
    pub fn boxed(
        settings: &MethodSettings,
        metric: &'static str,
        penalty: impl Fn(&JointForward) -> Result<Option<Tensor>> + Send + 'static,
    ) -> Result<Box<dyn Method>> {
        Ok(Box::new(Self::new(settings, metric, penalty)))
    }
}

impl Method for FeaturePenalty {
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &batch.y)?;
        let Some(penalty) = (self.penalty)(&out)? else {
            return Ok(ce);
        };
        self.means.add(self.metric, &penalty)?;
        ce + (penalty * (self.lambda * ramp(progress)))?
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        self.means.take()
    }
}
