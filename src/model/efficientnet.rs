//! EfficientNet-Lite0 with its ImageNet weights shipped in `assets/` (embedded in the
//! binary, so it works wherever the binary runs; nothing is downloaded). Stages: `stem`
//! (conv 3×3/2, 32), `stage1` … `stage7` (16 MBConv blocks: 1, 2, 2, 3, 3, 4, 1) and
//! `conv_head` (conv 1×1, 1280, then a global average pool). Every conv is followed by
//! batch-norm (eps 1e-3) and ReLU6, except the blocks' projection conv (no activation);
//! there is no squeeze-excite; a block adds its input back when its stride is 1 and its
//! width is unchanged. Padding is TensorFlow's "SAME" (asymmetric: the smaller half
//! before), which the weights were trained with. Parameter names are those of the
//! converted PyTorch file (`_conv_stem`, `_blocks.N._depthwise_conv`, …, `_fc`).
//!
//! In eval mode (frozen stages, feature extraction, evaluation) batch-norm is folded into
//! the convolution's weights, and the shift and ReLU6 are one fused pass.

use super::layers::{Pooled, Sequential, conv_no_bias};
use super::{
    Backbone, BackboneInfo, DefaultNormalisation, InputKind, Network, NetworkSpec, Normalisation,
    Stage, StageInfo, ops,
};
use crate::data::SampleShape;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{BatchNorm, ModuleT, VarBuilder, VarMap};
use std::collections::HashMap;

/// The converted ImageNet weights (f16 safetensors; see `assets/NOTICE.md`).
pub static WEIGHTS: &[u8] = include_bytes!("../../assets/efficientnet-lite0.safetensors");
/// The ImageNet-1k class names, one per line, in class order.
pub static IMAGENET_CLASSES: &str = include_str!("../../assets/imagenet-classes.txt");

/// Width of the features the backbone produces.
pub const FEATURES: usize = 1280;
/// Input side the weights were trained at.
pub const DEFAULT_INPUT: usize = 224;
/// Smallest input side accepted.
pub const MIN_INPUT: usize = 32;
/// The side quick feature comparisons load images at (`transferlab rank`): a fifth of the
/// work of 224 px per image, and still the network's ImageNet features.
pub const FEATURE_SIDE: usize = 96;
/// Batch-norm epsilon of every layer.
pub const BN_EPS: f64 = 1e-3;
/// Prefix of the ImageNet classifier (`_fc.weight`, `_fc.bias`).
pub const IMAGENET_HEAD: &str = "_fc";

/// EfficientNet-Lite0's descriptor.
pub const INFO: BackboneInfo = BackboneInfo {
    name: "efficientnet-lite0",
    title: "EfficientNet-Lite0 (ImageNet)",
    summary: "A network trained on ImageNet's 1.28 M photos (shipped, offline): transfer learning as people do it, for colour photos.",
    stages: &[
        "stem",
        "stage1",
        "stage2",
        "stage3",
        "stage4",
        "stage5",
        "stage6",
        "stage7",
        "conv_head",
    ],
    input: InputKind::Image {
        min_side: MIN_INPUT,
        default_side: DEFAULT_INPUT,
        max_side: super::MAX_SIDE,
        channels: Some(3),
        default_channels: 3,
    },
    head: IMAGENET_HEAD,
    normalisation: DefaultNormalisation::Imagenet,
};

/// (blocks, output channels, kernel, stride of the first block, expansion) per stage.
const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 16, 3, 1, 1),
    (2, 24, 3, 2, 6),
    (2, 40, 5, 2, 6),
    (3, 80, 3, 2, 6),
    (3, 112, 5, 1, 6),
    (4, 192, 5, 2, 6),
    (1, 320, 3, 1, 6),
];

/// The input normalisation the weights expect: `(255·x − 127) / 128` for `x` in [0, 1].
pub fn normalisation() -> Normalisation {
    Normalisation {
        mean: vec![127.0 / 255.0; 3],
        std: vec![128.0 / 255.0; 3],
    }
}

/// The ImageNet class names, in class order.
pub fn imagenet_classes() -> Vec<String> {
    IMAGENET_CLASSES.lines().map(str::to_string).collect()
}

/// TensorFlow "SAME" padding of one side: (output size, padding before, padding after).
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (out, total / 2, total - total / 2)
}

/// Batch-norm in eval mode as a per-channel `(scale, shift)`: `bn(y) = y·scale + shift`.
/// Built from Candle ops on small tensors, so gradients still reach γ and β.
fn folded(bn: &BatchNorm) -> Result<(Tensor, Tensor)> {
    let (gamma, beta) = bn
        .weight_and_bias()
        .ok_or_else(|| candle_core::Error::Msg("batch-norm without affine parameters".into()))?;
    let scale = (gamma / (bn.running_var() + bn.eps())?.sqrt()?)?;
    let shift = (beta - (bn.running_mean() * &scale)?)?;
    Ok((scale, shift))
}

/// Conv output → batch-norm → optional ReLU6. In eval mode `y` was computed with the
/// folded weights already (`scale` applied), so only the shift and activation remain.
fn bn_act(bn: &BatchNorm, y: &Tensor, shift: Option<&Tensor>, act: bool) -> Result<Tensor> {
    match shift {
        Some(shift) => ops::bias_act(y, shift, act),
        None => {
            let y = bn.forward_t(y, true)?;
            if act {
                let zero = Tensor::zeros(y.dim(1)?, y.dtype(), y.device())?;
                ops::bias_act(&y, &zero, true)
            } else {
                Ok(y)
            }
        }
    }
}

/// Scale a conv weight (`C_out × …`) per output channel.
fn scale_weight(w: &Tensor, scale: &Tensor) -> Result<Tensor> {
    w.broadcast_mul(&scale.reshape((scale.dim(0)?, 1, 1, 1))?)
}

fn bn(c: usize, vb: VarBuilder) -> Result<BatchNorm> {
    let cfg = candle_nn::BatchNormConfig {
        eps: BN_EPS,
        ..Default::default()
    };
    candle_nn::batch_norm(c, cfg, vb)
}

/// A dense (not depthwise) conv with "SAME" padding, batch-norm and optional ReLU6.
struct ConvBnAct {
    weight: Tensor,
    k: usize,
    stride: usize,
    bn: BatchNorm,
    act: bool,
}

impl ConvBnAct {
    fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        act: bool,
        conv: VarBuilder,
        bn_vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            weight: conv_no_bias(c_in, c_out, k, stride, 0, conv)?.weight,
            k,
            stride,
            bn: bn(c_out, bn_vb)?,
            act,
        })
    }
}

impl Stage for ConvBnAct {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (_, pt, pb) = same_padding(h, self.k, self.stride);
        let (_, pl, pr) = same_padding(w, self.k, self.stride);
        let x = if pt + pb + pl + pr > 0 {
            x.pad_with_zeros(2, pt, pb)?.pad_with_zeros(3, pl, pr)?
        } else {
            x.clone()
        };
        if train {
            let y = ops::conv2d(&x, &self.weight, None, self.stride, 0)?;
            bn_act(&self.bn, &y, None, self.act)
        } else {
            let (scale, shift) = folded(&self.bn)?;
            let w = scale_weight(&self.weight, &scale)?;
            let y = ops::conv2d(&x, &w, None, self.stride, 0)?;
            bn_act(&self.bn, &y, Some(&shift), self.act)
        }
    }
}

/// Depthwise conv with "SAME" padding, batch-norm and ReLU6.
struct DepthwiseBn {
    weight: Tensor,
    k: usize,
    stride: usize,
    bn: BatchNorm,
}

impl DepthwiseBn {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (oh, pt, _) = same_padding(h, self.k, self.stride);
        let (ow, pl, _) = same_padding(w, self.k, self.stride);
        if train {
            let y = ops::depthwise_conv2d(x, &self.weight, self.stride, (pt, pl), (oh, ow))?;
            bn_act(&self.bn, &y, None, true)
        } else {
            let (scale, shift) = folded(&self.bn)?;
            let w = scale_weight(&self.weight, &scale)?;
            let y = ops::depthwise_conv2d(x, &w, self.stride, (pt, pl), (oh, ow))?;
            bn_act(&self.bn, &y, Some(&shift), true)
        }
    }
}

/// An inverted-residual (MBConv) block without squeeze-excite.
struct MbConv {
    expand: Option<ConvBnAct>,
    depthwise: DepthwiseBn,
    project: ConvBnAct,
    residual: bool,
}

impl MbConv {
    fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        expand: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mid = c_in * expand;
        let expand = if expand != 1 {
            Some(ConvBnAct::new(
                c_in,
                mid,
                1,
                1,
                true,
                vb.pp("_expand_conv"),
                vb.pp("_bn0"),
            )?)
        } else {
            None
        };
        let depthwise = DepthwiseBn {
            weight: vb.pp("_depthwise_conv").get((mid, 1, k, k), "weight")?,
            k,
            stride,
            bn: bn(mid, vb.pp("_bn1"))?,
        };
        let project = ConvBnAct::new(
            mid,
            c_out,
            1,
            1,
            false,
            vb.pp("_project_conv"),
            vb.pp("_bn2"),
        )?;
        Ok(Self {
            expand,
            depthwise,
            project,
            residual: stride == 1 && c_in == c_out,
        })
    }
}

impl Stage for MbConv {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = match &self.expand {
            Some(e) => e.forward_t(x, train)?,
            None => x.clone(),
        };
        let h = self
            .project
            .forward_t(&self.depthwise.forward_t(&h, train)?, train)?;
        if self.residual { h + x } else { Ok(h) }
    }
}

/// Build EfficientNet-Lite0 for RGB images of at least 32×32 (variables only; the
/// ImageNet weights are put in by [`load_imagenet_weights`]).
pub fn build(input: SampleShape, vb: VarBuilder) -> Result<Backbone> {
    // Gray images are repeated to 3 channels when they are loaded (`--channels 3`).
    INFO.image_input(input)?;
    let stem = ConvBnAct::new(3, 32, 3, 2, true, vb.pp("_conv_stem"), vb.pp("_bn0"))?;
    let mut stages: Vec<Box<dyn Stage>> = vec![Box::new(stem)];
    let mut info = vec![StageInfo {
        name: "stem".into(),
        var_prefixes: vec!["_conv_stem.".into(), "_bn0.".into()],
    }];
    let (mut c_in, mut block) = (32, 0);
    for (i, &(n, c_out, k, stride, expand)) in STAGES.iter().enumerate() {
        let mut blocks = Vec::with_capacity(n);
        let mut prefixes = Vec::with_capacity(n);
        for j in 0..n {
            let s = if j == 0 { stride } else { 1 };
            blocks.push(MbConv::new(
                c_in,
                c_out,
                k,
                s,
                expand,
                vb.pp(format!("_blocks.{block}")),
            )?);
            prefixes.push(format!("_blocks.{block}."));
            c_in = c_out;
            block += 1;
        }
        stages.push(Box::new(Sequential(blocks)));
        info.push(StageInfo {
            name: format!("stage{}", i + 1),
            var_prefixes: prefixes,
        });
    }
    let head = ConvBnAct::new(
        c_in,
        FEATURES,
        1,
        1,
        true,
        vb.pp("_conv_head"),
        vb.pp("_bn1"),
    )?;
    // Conv 1×1 to 1280, batch-norm, ReLU6, global average pool.
    stages.push(Box::new(Pooled(head)));
    info.push(StageInfo {
        name: "conv_head".into(),
        var_prefixes: vec!["_conv_head.".into(), "_bn1.".into()],
    });
    Ok(Backbone {
        stages,
        info,
        feature_dim: FEATURES,
    })
}

/// Errors are candle errors: the embedded file is part of the build.
fn shipped_tensors() -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load_buffer(WEIGHTS, &Device::Cpu)
}

/// A conv's weight and the per-channel mean and variance its batch-norm recorded on
/// ImageNet (f32): the network's own summary of what it was trained on. `conv` and `bn`
/// are parameter prefixes, e.g. `_conv_stem` and `_bn0`, or `_conv_head` and `_bn1`.
pub fn bn_statistics(conv: &str, bn: &str) -> Result<(Tensor, Tensor, Tensor)> {
    let tensors = shipped_tensors()?;
    let get = |name: String| match tensors.get(&name) {
        Some(t) => t.to_dtype(DType::F32),
        None => candle_core::bail!("the shipped EfficientNet-Lite0 weights have no {name}"),
    };
    Ok((
        get(format!("{conv}.weight"))?,
        get(format!("{bn}.running_mean"))?,
        get(format!("{bn}.running_var"))?,
    ))
}

/// Put the shipped ImageNet weights into `varmap`: every backbone variable, and the
/// ImageNet classifier (`_fc`) too when `with_imagenet_head`. Fails if a backbone
/// variable is missing from the file or differs in shape.
pub fn load_imagenet_weights(varmap: &VarMap, with_imagenet_head: bool) -> Result<()> {
    let tensors = shipped_tensors()?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("var map poisoned".into()))?;
    let head = format!("{IMAGENET_HEAD}.");
    let mut loaded = 0;
    for (name, var) in data.iter() {
        let is_head = name.starts_with(&head);
        let is_backbone = name.starts_with("_conv_stem.")
            || name.starts_with("_bn0.")
            || name.starts_with("_blocks.")
            || name.starts_with("_conv_head.")
            || name.starts_with("_bn1.");
        if !(is_backbone || (is_head && with_imagenet_head)) {
            continue;
        }
        let Some(t) = tensors.get(name) else {
            candle_core::bail!("the shipped EfficientNet-Lite0 weights have no {name}");
        };
        if t.dims() != var.dims() {
            candle_core::bail!(
                "the shipped EfficientNet-Lite0 weight {name} is {:?}, the network wants {:?}",
                t.dims(),
                var.dims()
            );
        }
        var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
        loaded += 1;
    }
    let expected = tensors.len() - if with_imagenet_head { 0 } else { 2 };
    if loaded != expected {
        candle_core::bail!("loaded {loaded} of the {expected} shipped EfficientNet-Lite0 tensors");
    }
    Ok(())
}

/// The full ImageNet classifier: EfficientNet-Lite0 with its 1000-class `_fc` head, at
/// `input_size` (224 is what it was trained at).
pub fn imagenet_network(input_size: usize, device: &Device) -> Result<Network> {
    let spec = NetworkSpec {
        backbone: super::BackboneKind::EfficientnetLite0,
        input: SampleShape::Image {
            channels: 3,
            height: input_size,
            width: input_size,
        },
        num_classes: 1000,
        bottleneck: None,
    };
    let net = Network::new(spec, normalisation(), device, 0)?;
    load_imagenet_weights(&net.varmap, true)?;
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_smaller_half_before() {
        // 224 → 112 with a 3×3/2 kernel: one column of padding, after.
        assert_eq!(same_padding(224, 3, 2), (112, 0, 1));
        // 5×5/2 on 56 → 28: 3 in all, 1 before and 2 after.
        assert_eq!(same_padding(56, 5, 2), (28, 1, 2));
        assert_eq!(same_padding(7, 5, 1), (7, 2, 2));
        assert_eq!(same_padding(14, 1, 1), (14, 0, 0));
    }

    #[test]
    fn stages_own_every_variable_once() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let shape = SampleShape::Image {
            channels: 3,
            height: 32,
            width: 32,
        };
        let b = build(shape, vb).unwrap();
        assert_eq!(b.info.len(), 9);
        let data = varmap.data().lock().unwrap();
        for name in data.keys() {
            let owners = b
                .info
                .iter()
                .filter(|s| s.var_prefixes.iter().any(|p| name.starts_with(p.as_str())))
                .count();
            assert_eq!(owners, 1, "{name}");
        }
        // 245 backbone tensors = the shipped file less `_fc.weight` and `_fc.bias`.
        assert_eq!(data.len(), 245);
    }
}
