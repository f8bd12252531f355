//! ResNet-18 with the usual parameter layout (`conv1`, `bn1`, `layer1`…`layer4`, `fc`), so
//! a standard pretrained ResNet-18 safetensors file loads by name. Stages: `stem`
//! (conv1, bn1, ReLU, 3×3/2 max-pool), `layer1` … `layer4`; features are globally pooled.
//! Unlike candle-transformers' ResNet, batch-norm trains and the max-pool has a gradient.

use super::layers::{self, ConvBn};
use super::{Backbone, BackboneInfo, DefaultNormalisation, InputKind, Stage, StageInfo};
use crate::data::SampleShape;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

struct Stem(ConvBn);

impl Stage for Stem {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        layers::max_pool_3x3_s2(&self.0.forward_t(x, train)?.relu()?)
    }
}

struct BasicBlock {
    a: ConvBn,
    b: ConvBn,
    downsample: Option<ConvBn>,
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let conv_bn = |ci, co, k, s, p, conv: &str, bn: &str| -> Result<ConvBn> {
            Ok(ConvBn {
                conv: layers::conv_no_bias(ci, co, k, s, p, vb.pp(conv))?,
                bn: layers::batch_norm(co, vb.pp(bn))?,
            })
        };
        let downsample = if stride != 1 || c_in != c_out {
            Some(conv_bn(
                c_in,
                c_out,
                1,
                stride,
                0,
                "downsample.0",
                "downsample.1",
            )?)
        } else {
            None
        };
        Ok(Self {
            a: conv_bn(c_in, c_out, 3, stride, 1, "conv1", "bn1")?,
            b: conv_bn(c_out, c_out, 3, 1, 1, "conv2", "bn2")?,
            downsample,
        })
    }
}

impl Stage for BasicBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.a.forward_t(x, train)?.relu()?;
        let h = self.b.forward_t(&h, train)?;
        let skip = match &self.downsample {
            Some(d) => d.forward_t(x, train)?,
            None => x.clone(),
        };
        (h + skip)?.relu()
    }
}

/// ResNet-18's descriptor.
pub const INFO: BackboneInfo = BackboneInfo {
    name: "resnet18",
    title: "ResNet-18",
    summary: "ResNet-18 with the usual parameter names, so pretrained files load; for colour images of 32 px and more.",
    stages: &["stem", "layer1", "layer2", "layer3", "layer4"],
    input: InputKind::Image {
        min_side: 32,
        default_side: 32,
        max_side: 256,
        channels: None,
        default_channels: 3,
    },
    head: "fc",
    normalisation: DefaultNormalisation::FromData,
};

/// Build ResNet-18 for an image input of at least 32×32.
pub fn build(input: SampleShape, vb: VarBuilder) -> Result<Backbone> {
    let (channels, _, _) = INFO.image_input(input)?;
    let stem = ConvBn {
        conv: layers::conv_no_bias(channels, 64, 7, 2, 3, vb.pp("conv1"))?,
        bn: layers::batch_norm(64, vb.pp("bn1"))?,
    };
    let widths = [64, 128, 256, 512];
    let mut stages: Vec<Box<dyn Stage>> = vec![Box::new(Stem(stem))];
    let mut info = vec![StageInfo {
        name: INFO.stages[0].into(),
        var_prefixes: vec!["conv1.".into(), "bn1.".into()],
    }];
    let mut c_in = 64;
    for (i, &w) in widths.iter().enumerate() {
        let name = INFO.stages[i + 1].to_string();
        let stride = if i == 0 { 1 } else { 2 };
        let lvb = vb.pp(&name);
        let layer = layers::Sequential(vec![
            BasicBlock::new(c_in, w, stride, lvb.pp("0"))?,
            BasicBlock::new(w, w, 1, lvb.pp("1"))?,
        ]);
        c_in = w;
        stages.push(if i == 3 {
            Box::new(layers::Pooled(layer))
        } else {
            Box::new(layer)
        });
        info.push(StageInfo {
            var_prefixes: vec![format!("{name}.")],
            name,
        });
    }
    Ok(Backbone {
        stages,
        info,
        feature_dim: 512,
    })
}
