//! A small fully connected backbone for 2-D points: `fc1` and `fc2` (64 units, ReLU).

use super::{Backbone, BackboneInfo, DefaultNormalisation, InputKind, Stage, StageInfo, layers};
use crate::data::SampleShape;
use candle_core::{Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

/// Hidden width of the MLP.
pub const HIDDEN: usize = 64;

/// The MLP's descriptor.
pub const INFO: BackboneInfo = BackboneInfo {
    name: "mlp",
    title: "MLP",
    summary: "A small fully connected net for 2-D points (images are flattened).",
    stages: &["fc1", "fc2"],
    input: InputKind::Vector,
    head: "head",
    normalisation: DefaultNormalisation::FromData,
};

struct Dense(Linear);

impl Stage for Dense {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.0.forward(x)?.relu()
    }
}

/// Build the MLP for `input` (a vector, or an image flattened).
pub fn build(input: SampleShape, vb: VarBuilder) -> Result<Backbone> {
    let d_in = input.len();
    let names = INFO.stages;
    let fc1 = layers::linear(d_in, HIDDEN, vb.pp(names[0]))?;
    let fc2 = layers::linear(HIDDEN, HIDDEN, vb.pp(names[1]))?;
    Ok(Backbone {
        stages: vec![Box::new(Flatten(Dense(fc1))), Box::new(Dense(fc2))],
        info: names
            .iter()
            .map(|n| StageInfo::owning_own_name(n))
            .collect(),
        feature_dim: HIDDEN,
    })
}

struct Flatten<S>(S);

impl<S: Stage> Stage for Flatten<S> {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = if x.rank() > 2 {
            x.flatten_from(1)?
        } else {
            x.clone()
        };
        self.0.forward_t(&x, train)
    }
}
