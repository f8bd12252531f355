//! Plain supervised training with cross-entropy: `source-only`, `target-only` and
//! `fine-tune` differ only in which labelled images they see and where the weights start.

use super::{Method, MethodKind, TrainBatch};
use crate::model::Network;
use candle_core::{Result, Tensor};

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
