//! Plain supervised training with cross-entropy: `source-only`, `target-only` and
//! `fine-tune` differ only in which labelled images they see and where the weights start.

use super::{Family, LabelledData, Method, MethodInfo, TrainBatch};
use crate::model::Network;
use candle_core::{Result, Tensor};

/// What the three share: cross-entropy on the labelled batch, no unlabeled target.
const SUPERVISED: MethodInfo = MethodInfo {
    build: Some(|_, _| Ok(Box::new(Supervised))),
    ..super::PLAIN_BASE
};

/// Train on the source, evaluate on the target.
pub const SOURCE_ONLY: MethodInfo = MethodInfo {
    name: "source-only",
    summary: "Train on the labelled source only and test on the target: how far plain training gets.",
    ..SUPERVISED
};

/// Train on the labelled target images only.
pub const TARGET_ONLY: MethodInfo = MethodInfo {
    name: "target-only",
    summary: "Train on the few labelled target images only: the no-transfer baseline that reveals negative transfer.",
    labelled: LabelledData::Target,
    ..SUPERVISED
};

/// Start from a trained model and train on every labelled image.
pub const FINE_TUNE: MethodInfo = MethodInfo {
    name: "fine-tune",
    family: Family::Parameter,
    summary: "Reuse a trained network (the model the run starts from), freeze its first stages and train the rest on every labelled image.",
    labelled: LabelledData::SourceAndTarget,
    ..SUPERVISED
};

/// Cross-entropy on the labelled batch.
pub struct Supervised;

impl Method for Supervised {
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, _progress: f64) -> Result<Tensor> {
        let out = net.forward_t(&batch.x, true)?;
        candle_nn::loss::cross_entropy(&out.logits, &batch.y)
    }
}
