//! The LeNet-sized CNN of the peer benchmark: `conv1` (C→32, 5×5, max-pool 2, ReLU),
//! `conv2` (32→64, 5×5, max-pool 2, ReLU), `fc1` (→1024, ReLU). For 28×28 input the
//! flattened conv output is 64×4×4 = 1024.

use super::layers::{self, Conv, Dense};
use super::{Backbone, BackboneInfo, DefaultNormalisation, InputKind, Stage, StageInfo, ops};
use crate::data::SampleShape;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

/// Width of the features the small CNN produces.
pub const FEATURES: usize = 1024;

/// The small CNN's descriptor.
pub const INFO: BackboneInfo = BackboneInfo {
    name: "small-cnn",
    title: "Small CNN",
    summary: "A LeNet-sized CNN for small images (digits at 28 px): quick to train from scratch.",
    stages: &["conv1", "conv2", "fc1"],
    input: InputKind::Image {
        min_side: 16,
        default_side: 28,
        // Its dense layer grows with the square of the side (1024 × 64·29² weights at 128).
        max_side: 128,
        channels: None,
        default_channels: 1,
    },
    head: "head",
    normalisation: DefaultNormalisation::FromData,
};

struct ConvPool(Conv);

impl Stage for ConvPool {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        let c = &self.0;
        ops::conv2d_pool2_relu(x, &c.weight, c.bias.as_ref(), c.stride, c.padding)
    }
}

/// Flatten, fully connected layer, ReLU (fused).
struct FlattenDense(Dense);

impl Stage for FlattenDense {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.0.forward(&x.flatten_from(1)?)
    }
}

/// Build the small CNN for an image input of at least 16×16.
pub fn build(input: SampleShape, vb: VarBuilder) -> Result<Backbone> {
    let (channels, height, width) = INFO.image_input(input)?;
    let out = |s: usize| ((s - 4) / 2 - 4) / 2;
    let flat = 64 * out(height) * out(width);
    let conv1 = layers::conv(channels, 32, 5, vb.pp("conv1"))?;
    let conv2 = layers::conv(32, 64, 5, vb.pp("conv2"))?;
    let fc1 = layers::dense(flat, FEATURES, true, vb.pp("fc1"))?;
    Ok(Backbone {
        stages: vec![
            Box::new(ConvPool(conv1)),
            Box::new(ConvPool(conv2)),
            Box::new(FlattenDense(fc1)),
        ],
        info: INFO
            .stages
            .iter()
            .map(|n| StageInfo::owning_own_name(n))
            .collect(),
        feature_dim: FEATURES,
    })
}
