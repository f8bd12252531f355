//! Networks as ordered, named stages plus a classifier head. Freezing depth *k* freezes the
//! first *k* stages: their output is detached, their variables are not trained and their
//! batch-norm stays in eval mode. Parameter names follow `vb.pp(..)` prefixes, so
//! checkpoints are stable (and the ResNet-18 layout matches the usual pretrained files).

pub mod checkpoint;
pub mod efficientnet;
pub mod layers;
pub mod mlp;
pub mod ops;
pub mod predict;
pub mod resnet;
pub mod small_cnn;

pub use checkpoint::{InitReport, ModelMeta, load_init, read_meta, save_checkpoint};

use crate::data::SampleShape;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// Which backbone a network uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum BackboneKind {
    /// Small fully connected net for 2-D points.
    Mlp,
    /// LeNet-sized CNN for ~28–32 px images (the peer benchmark's network).
    #[default]
    SmallCnn,
    /// ResNet-18 with the usual parameter names (`conv1`, `bn1`, `layer1`…`layer4`, `fc`).
    Resnet18,
    /// EfficientNet-Lite0 starting from its ImageNet weights (shipped in `assets/`).
    EfficientnetLite0,
}

/// Largest image side any run loads at, whatever the backbone (memory grows with its square).
pub const MAX_SIDE: usize = 512;

/// What kind of input a backbone takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Any vector (images are flattened).
    Vector,
    /// Images of `min_side..=max_side` pixels a side; `channels` None: any count, with
    /// `default_channels` when the data does not decide (benchmarks, random inputs).
    Image {
        min_side: usize,
        default_side: usize,
        max_side: usize,
        channels: Option<usize>,
        default_channels: usize,
    },
}

/// How a fresh network (not loaded from `--init`) normalises its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultNormalisation {
    /// Per-channel statistics of the training images.
    FromData,
    /// ImageNet's statistics (for networks whose weights were trained on it).
    Imagenet,
}

/// What the rest of the program knows about a backbone: the CLI, the GUI's picker and
/// diagram, validation and the benchmarks all read it from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackboneInfo {
    /// Name used on the command line and in checkpoints.
    pub name: &'static str,
    /// Name for people.
    pub title: &'static str,
    /// One sentence on what it is for.
    pub summary: &'static str,
    /// Its stages, in order (freezing depth k freezes the first k).
    pub stages: &'static [&'static str],
    pub input: InputKind,
    /// Variable prefix of the classifier head.
    pub head: &'static str,
    pub normalisation: DefaultNormalisation,
}

impl BackboneInfo {
    /// The image side used when none is asked for (None for vector input).
    pub fn default_side(&self) -> Option<usize> {
        match self.input {
            InputKind::Image { default_side, .. } => Some(default_side),
            InputKind::Vector => None,
        }
    }

    /// The input shape of benchmarks and examples: the default side (or `side`), the
    /// default channels; a 2-D point for vector input.
    pub fn example_shape(&self, side: Option<usize>) -> SampleShape {
        match self.input {
            InputKind::Image {
                default_side,
                default_channels,
                ..
            } => {
                let side = side.unwrap_or(default_side);
                SampleShape::Image {
                    channels: default_channels,
                    height: side,
                    width: side,
                }
            }
            InputKind::Vector => SampleShape::Vector { dim: 2 },
        }
    }

    /// Check an image side against the backbone's range; the error says the range.
    pub fn check_side(&self, side: usize) -> std::result::Result<(), String> {
        match self.input {
            InputKind::Image {
                min_side, max_side, ..
            } if !(min_side..=max_side).contains(&side) => Err(format!(
                "{} takes images of {min_side} to {max_side} pixels a side, not {side}",
                self.title
            )),
            _ => Ok(()),
        }
    }

    /// (channels, height, width) of an image input the backbone takes; an error naming
    /// the backbone for anything else.
    pub fn image_input(&self, input: SampleShape) -> Result<(usize, usize, usize)> {
        let SampleShape::Image {
            channels,
            height,
            width,
        } = input
        else {
            candle_core::bail!("{} needs image input, got {}", self.title, input.describe());
        };
        let checked = self
            .check_channels(channels)
            .and_then(|_| self.check_side(height.min(width)));
        if let Err(e) = checked {
            candle_core::bail!("{e}");
        }
        Ok((channels, height, width))
    }

    /// Check a channel count against what the backbone takes.
    pub fn check_channels(&self, channels: usize) -> std::result::Result<(), String> {
        match self.input {
            _ if !(channels == 1 || channels == 3) => Err(format!(
                "images have 1 channel (gray) or 3 (colour), not {channels}"
            )),
            InputKind::Image {
                channels: Some(c), ..
            } if c != channels => Err(format!(
                "{} takes {c}-channel images, not {channels}",
                self.title
            )),
            _ => Ok(()),
        }
    }
}

impl BackboneKind {
    /// Every backbone, in menu order.
    pub const ALL: [BackboneKind; 4] = [
        BackboneKind::SmallCnn,
        BackboneKind::Resnet18,
        BackboneKind::EfficientnetLite0,
        BackboneKind::Mlp,
    ];

    /// Everything known about this backbone.
    pub fn info(self) -> &'static BackboneInfo {
        match self {
            BackboneKind::Mlp => &mlp::INFO,
            BackboneKind::SmallCnn => &small_cnn::INFO,
            BackboneKind::Resnet18 => &resnet::INFO,
            BackboneKind::EfficientnetLite0 => &efficientnet::INFO,
        }
    }

    /// Name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Parse a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The default backbone for a sample shape.
    pub fn default_for(shape: SampleShape) -> Self {
        match shape {
            SampleShape::Vector { .. } => BackboneKind::Mlp,
            SampleShape::Image { .. } => BackboneKind::SmallCnn,
        }
    }

    /// Variable prefix of the classifier head.
    pub fn head_name(self) -> &'static str {
        self.info().head
    }

    /// The input normalisation a pretrained backbone needs (`None`: taken from the data).
    pub fn fixed_normalisation(self) -> Option<Normalisation> {
        match self {
            BackboneKind::EfficientnetLite0 => Some(efficientnet::normalisation()),
            _ => None,
        }
    }

    /// Whether the backbone starts from shipped pretrained weights.
    pub fn is_pretrained(self) -> bool {
        self == BackboneKind::EfficientnetLite0
    }
}

/// Per-channel (or per-dimension) input normalisation: `(x − mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalisation {
    /// Statistics of `x` (rows of `shape`), per channel for images, per dimension for vectors.
    pub fn from_data(x: &[f32], shape: SampleShape) -> Self {
        let (groups, per_group) = match shape {
            SampleShape::Image {
                channels,
                height,
                width,
            } => (channels, height * width),
            SampleShape::Vector { dim } => (dim, 1),
        };
        let row = shape.len().max(1);
        let n = x.len() / row;
        let mut mean = vec![0f64; groups];
        let mut sq = vec![0f64; groups];
        for r in 0..n {
            for g in 0..groups {
                for &v in &x[r * row + g * per_group..r * row + (g + 1) * per_group] {
                    mean[g] += v as f64;
                    sq[g] += (v as f64) * (v as f64);
                }
            }
        }
        let count = (n * per_group).max(1) as f64;
        let mean: Vec<f64> = mean.iter().map(|m| m / count).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| ((s / count - m * m).max(0.0).sqrt().max(1e-3)) as f32)
            .collect();
        Self {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// ImageNet statistics, for imported pretrained ResNets.
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }
}

/// One stage of a backbone.
pub trait Stage: Send + Sync {
    /// Run the stage; `train` selects batch-norm's mode.
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor>;
}

/// A stage's name and the variable prefixes it owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub name: String,
    pub var_prefixes: Vec<String>,
}

impl StageInfo {
    /// A stage that owns the variables under its own name (`NAME.…`).
    pub fn owning_own_name(name: &str) -> Self {
        Self {
            name: name.to_string(),
            var_prefixes: vec![format!("{name}.")],
        }
    }
}

/// What is needed to build a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub backbone: BackboneKind,
    pub input: SampleShape,
    pub num_classes: usize,
    /// Width of an adaptation (bottleneck) layer between backbone and head, if any.
    pub bottleneck: Option<usize>,
}

/// A backbone's stages and the width of the features they produce.
pub struct Backbone {
    pub stages: Vec<Box<dyn Stage>>,
    pub info: Vec<StageInfo>,
    pub feature_dim: usize,
}

/// A backbone, an optional bottleneck and a classifier head, with their variables.
pub struct Network {
    pub spec: NetworkSpec,
    pub varmap: VarMap,
    pub normalisation: Normalisation,
    pub device: Device,
    backbone: Backbone,
    bottleneck: Option<Linear>,
    head: Linear,
    norm_mean: Tensor,
    norm_std: Tensor,
    freeze: usize,
    /// Stage at which forward passes start: 0 for raw inputs, `k` for cached outputs of stage `k − 1`.
    input_stage: usize,
}

/// Output of a forward pass.
pub struct Forward {
    /// Backbone output (after flattening/pooling), `B×feature_dim`.
    pub backbone_features: Tensor,
    /// What the head sees: the bottleneck output when there is one, else the backbone features.
    pub features: Tensor,
    pub logits: Tensor,
}

impl Network {
    /// Build a network with seeded initial weights.
    pub fn new(
        spec: NetworkSpec,
        normalisation: Normalisation,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        // A pretrained backbone needs the normalisation its weights were trained with.
        let normalisation = spec.backbone.fixed_normalisation().unwrap_or(normalisation);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let backbone = match spec.backbone {
            BackboneKind::Mlp => mlp::build(spec.input, vb.clone())?,
            BackboneKind::SmallCnn => small_cnn::build(spec.input, vb.clone())?,
            BackboneKind::Resnet18 => resnet::build(spec.input, vb.clone())?,
            BackboneKind::EfficientnetLite0 => efficientnet::build(spec.input, vb.clone())?,
        };
        let mut head_in = backbone.feature_dim;
        let bottleneck = match spec.bottleneck {
            Some(width) => {
                let l = layers::linear(head_in, width, vb.pp("bottleneck"))?;
                head_in = width;
                Some(l)
            }
            None => None,
        };
        let head_name = spec.backbone.head_name();
        let head = layers::linear(head_in, spec.num_classes, vb.pp(head_name))?;
        layers::seeded_init(&varmap, seed, &[head_name])?;
        if spec.backbone == BackboneKind::EfficientnetLite0 {
            efficientnet::load_imagenet_weights(&varmap, false)?;
        }
        let groups = normalisation.mean.len();
        let norm_shape: Vec<usize> = match spec.input {
            SampleShape::Image { .. } => vec![1, groups, 1, 1],
            SampleShape::Vector { .. } => vec![1, groups],
        };
        let norm_mean = Tensor::from_vec(
            normalisation.mean.clone(),
            norm_shape.as_slice(),
            &Device::Cpu,
        )?
        .to_device(device)?;
        let norm_std = Tensor::from_vec(
            normalisation.std.clone(),
            norm_shape.as_slice(),
            &Device::Cpu,
        )?
        .to_device(device)?;
        Ok(Self {
            spec,
            varmap,
            normalisation,
            device: device.clone(),
            backbone,
            bottleneck,
            head,
            norm_mean,
            norm_std,
            freeze: 0,
            input_stage: 0,
        })
    }

    /// The backbone's stages (name and variable prefixes), in order.
    pub fn stages(&self) -> &[StageInfo] {
        &self.backbone.info
    }

    /// Width of the backbone's output features.
    pub fn feature_dim(&self) -> usize {
        self.backbone.feature_dim
    }

    /// Current freezing depth.
    pub fn freeze(&self) -> usize {
        self.freeze
    }

    /// Freeze the first `k` stages (clamped to the number of stages).
    pub fn set_freeze(&mut self, k: usize) {
        self.freeze = k.min(self.backbone.stages.len());
    }

    /// Variable names owned by the first `k` stages.
    fn frozen_prefixes(&self, k: usize) -> Vec<String> {
        self.backbone.info[..k.min(self.backbone.info.len())]
            .iter()
            .flat_map(|s| s.var_prefixes.iter().cloned())
            .collect()
    }

    fn is_trainable_name(name: &str, frozen: &[String]) -> bool {
        !name.ends_with("running_mean")
            && !name.ends_with("running_var")
            && !frozen.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// Variables the optimizer may change at the current freezing depth, sorted by name.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        let frozen = self.frozen_prefixes(self.freeze);
        let data = self.varmap.data().lock().expect("var map lock");
        let mut out: Vec<(String, Var)> = data
            .iter()
            .filter(|(n, _)| Self::is_trainable_name(n, &frozen))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// (trainable, total) parameter counts for freezing depth `k` (running statistics excluded).
    pub fn param_counts(&self, k: usize) -> (usize, usize) {
        let frozen = self.frozen_prefixes(k);
        let data = self.varmap.data().lock().expect("var map lock");
        let mut trainable = 0;
        let mut total = 0;
        for (name, var) in data.iter() {
            if name.ends_with("running_mean") || name.ends_with("running_var") {
                continue;
            }
            let n = var.elem_count();
            total += n;
            if Self::is_trainable_name(name, &frozen) {
                trainable += n;
            }
        }
        (trainable, total)
    }

    /// Normalise a batch of raw inputs (values in [0, 1]).
    pub fn normalise(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_sub(&self.norm_mean)?
            .broadcast_div(&self.norm_std)
    }

    /// Run stages `from..to` on `x` (already normalised or the output of stage `from − 1`).
    pub fn run_stages(&self, x: &Tensor, from: usize, to: usize, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, stage) in self.backbone.stages.iter().enumerate().take(to).skip(from) {
            let stage_train = train && i >= self.freeze;
            h = stage.forward_t(&h, stage_train)?;
            if i + 1 == self.freeze {
                // Nothing upstream of the freeze boundary needs a gradient.
                h = h.detach();
            }
        }
        Ok(h)
    }

    /// Make forward passes take the output of stage `k − 1` (e.g. frozen stages computed once
    /// and cached) instead of raw inputs; 0 restores raw inputs. Clamped to the stage count.
    pub fn set_input_stage(&mut self, k: usize) {
        self.input_stage = k.min(self.backbone.stages.len());
    }

    /// The stage forward passes start at (see [`Network::set_input_stage`]).
    pub fn input_stage(&self) -> usize {
        self.input_stage
    }

    /// Backbone features of a batch (raw, or stage activations after
    /// [`Network::set_input_stage`]), flattened to `B×feature_dim`.
    pub fn backbone_features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let n = self.backbone.stages.len();
        let h = match self.input_stage {
            0 => self.run_stages(&self.normalise(x)?, 0, n, train)?,
            k => self.run_stages(x, k, n, train)?,
        };
        if h.rank() > 2 {
            h.flatten_from(1)
        } else {
            Ok(h)
        }
    }

    /// Features as seen by the head (through the bottleneck when there is one).
    pub fn head_features(&self, backbone_features: &Tensor) -> Result<Tensor> {
        match &self.bottleneck {
            Some(b) => backbone_features.apply(b)?.relu(),
            None => Ok(backbone_features.clone()),
        }
    }

    /// Class scores from head features.
    pub fn classify(&self, features: &Tensor) -> Result<Tensor> {
        self.head.forward(features)
    }

    /// A full forward pass.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Forward> {
        let backbone_features = self.backbone_features(x, train)?;
        let features = self.head_features(&backbone_features)?;
        let logits = self.classify(&features)?;
        Ok(Forward {
            backbone_features,
            features,
            logits,
        })
    }

    /// Output of stage `stage` (0-based) for a raw batch, flattened, in eval mode.
    pub fn stage_output(&self, x: &Tensor, stage: usize) -> Result<Tensor> {
        let h = self.run_stages(&self.normalise(x)?, 0, stage + 1, false)?;
        if h.rank() > 2 {
            h.flatten_from(1)
        } else {
            Ok(h)
        }
    }
}
