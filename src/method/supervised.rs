//! Plain supervised training with cross-entropy: `source-only`, `target-only` and
//! `fine-tune` differ only in which labelled images they see and where the weights start.

use super::{Family, LabelledData, Method, MethodInfo, MethodKind, TrainBatch};
use crate::model::Network;
use candle_core::{Result, Tensor};

/// Train on the source, evaluate on the target.
pub const SOURCE_ONLY: MethodInfo = MethodInfo {
    name: "source-only",
    family: Family::Baseline,
    summary: "Train on the labelled source only and test on the target: how far plain training gets.",
    build: Some(|_, _| Ok(Box::new(Supervised::new(MethodKind::SourceOnly)))),
    ..super::PLAIN_BASE
};

/// Train on the labelled target images only.
pub const TARGET_ONLY: MethodInfo = MethodInfo {
    name: "target-only",
    family: Family::Baseline,
    summary: "Train on the few labelled target images only: the no-transfer baseline that reveals negative transfer.",
    labelled: LabelledData::Target,
    build: Some(|_, _| Ok(Box::new(Supervised::new(MethodKind::TargetOnly)))),
    ..super::PLAIN_BASE
};

/// Start from a trained model and train on every labelled image.
pub const FINE_TUNE: MethodInfo = MethodInfo {
    name: "fine-tune",
    family: Family::Parameter,
    summary: "Reuse a trained network (the model the run starts from), freeze its first stages and train the rest on every labelled image.",
    labelled: LabelledData::SourceAndTarget,
    build: Some(|_, _| Ok(Box::new(Supervised::new(MethodKind::FineTune)))),
    ..super::PLAIN_BASE
};

/// Cross-entropy on the labelled batch.
pub struct Supervised {
    kind: MethodKind,
}

impl Supervised {
    /// A supervised method of the given kind.
    pub fn new(kind: MethodKind) -> Self {
        Self { kind }
    }
}

impl Method for Supervised {
    fn kind(&self) -> MethodKind {
        self.kind
    }

    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, _progress: f64) -> Result<Tensor> {
        let out = net.forward_t(&batch.x, true)?;
        candle_nn::loss::cross_entropy(&out.logits, &batch.y)
    }
}
