//! What every kind of run builds before it trains, built one way: the `--init` model's
//! metadata, the input normalisation and the device ([`prepare`]); the network with its
//! backbone, freezing depth and `--init` weights ([`build_network`]); and a network with
//! its optimizer ([`Learner`]).

use super::config::ExperimentConfig;
use super::experiment::RunError;
use super::settings::{Invalid, Setting};
use crate::data::{Domain, SampleShape};
use crate::model::ops::FusedAdamW;
use crate::model::{
    BackboneKind, DefaultNormalisation, InitReport, ModelMeta, Network, NetworkSpec, Normalisation,
    load_init, read_meta,
};
use candle_core::{Device, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};

/// A setup failure (before training starts).
pub(crate) fn setup<E: std::fmt::Display>(e: E) -> RunError {
    RunError::Setup(e.to_string())
}

/// A training-step failure in `epoch`.
pub(crate) fn in_epoch(epoch: usize) -> impl Fn(candle_core::Error) -> RunError {
    move |e| RunError::Training {
        epoch,
        message: e.to_string(),
    }
}

/// The model file's metadata when the config starts from one.
pub fn init_meta(config: &ExperimentConfig) -> Result<Option<ModelMeta>, RunError> {
    config
        .init
        .as_deref()
        .map(read_meta)
        .transpose()
        .map_err(RunError::from)
}

/// The backbone of a run: the `--init` model's (`--backbone`, if given, must agree), else
/// the one asked for, else the default for the data; an `--init` model must also take
/// inputs of `shape`.
pub fn resolve_backbone(
    meta: Option<&ModelMeta>,
    asked: Option<BackboneKind>,
    shape: SampleShape,
) -> Result<BackboneKind, RunError> {
    let backbone = match (meta, asked) {
        (Some(m), Some(b)) if m.backbone != b => {
            return Err(RunError::Invalid(
                Invalid::setting(
                    Setting::Backbone,
                    format!(" {} differs from the backbone of ", b.name()),
                )
                .name(Setting::Init)
                .then(format!(" ({})", m.backbone.name())),
            ));
        }
        (Some(m), _) => m.backbone,
        (None, Some(b)) => b,
        (None, None) => BackboneKind::default_for(shape),
    };
    if let Some(m) = meta
        && m.input != shape
    {
        return Err(RunError::Invalid(Invalid::setting(
            Setting::Init,
            format!(
                " expects {} input but the data was loaded as {}",
                m.input.describe(),
                shape.describe()
            ),
        )));
    }
    Ok(backbone)
}

/// What a run needs before it builds its network: the `--init` model's metadata, the
/// input normalisation (the model's, or the training images'), the device and the warnings.
pub struct Prepared {
    pub meta: Option<ModelMeta>,
    /// The run's backbone (see [`resolve_backbone`]), checked against the data's shape.
    pub backbone: BackboneKind,
    pub normalisation: Normalisation,
    pub device: Device,
    pub warnings: Vec<String>,
}

impl Prepared {
    /// The device's name for reports.
    pub fn device_label(&self) -> String {
        crate::device::device_name(&self.device).to_string()
    }
}

/// Open the device and take the normalisation for a run that trains on `train` of
/// `domain` (all of it when `train` is empty).
pub fn prepare(
    config: &ExperimentConfig,
    domain: &Domain,
    train: &[usize],
    mut warnings: Vec<String>,
) -> Result<Prepared, RunError> {
    let meta = init_meta(config)?;
    let backbone = resolve_backbone(meta.as_ref(), config.backbone, domain.shape)?;
    let colour = matches!(domain.shape, SampleShape::Image { channels: 3, .. });
    let normalisation = match &meta {
        Some(m) => m.normalisation.clone(),
        // A network pretrained on ImageNet expects ImageNet's statistics.
        None if backbone.info().normalisation == DefaultNormalisation::Imagenet && colour => {
            Normalisation::imagenet()
        }
        None if train.is_empty() => Normalisation::from_data(&domain.x, domain.shape),
        None => Normalisation::from_data(&domain.subset(train).x, domain.shape),
    };
    let (device, note) = crate::device::open_device(config.device);
    warnings.extend(note);
    Ok(Prepared {
        meta,
        backbone,
        normalisation,
        device,
        warnings,
    })
}

/// What the network of a run is for.
#[derive(Clone, Copy, Debug)]
pub struct NetworkGoal {
    /// Outputs of the head.
    pub outputs: usize,
    /// Adaptation layer width when `--bottleneck` is not given (the method's own).
    pub default_bottleneck: Option<usize>,
    /// Keep the `--init` model's head (its classes are the run's).
    pub keep_head: bool,
}

/// The network of a run: its backbone (resolved by [`prepare`]), the adaptation layer
/// (`--bottleneck 0` turns it off; an `--init` model keeps its own), the freezing depth
/// (checked against the backbone's stages) and the `--init` weights.
pub fn build_network(
    config: &ExperimentConfig,
    prepared: &Prepared,
    shape: SampleShape,
    goal: NetworkGoal,
) -> Result<(Network, Option<InitReport>), RunError> {
    let meta = prepared.meta.as_ref();
    let backbone = prepared.backbone;
    let spec = NetworkSpec {
        backbone,
        input: shape,
        num_classes: goal.outputs,
        bottleneck: match config.bottleneck {
            Some(0) => None,
            Some(w) => Some(w),
            None => goal.default_bottleneck.or(meta.and_then(|m| m.bottleneck)),
        },
    };
    let mut net = Network::new(
        spec,
        prepared.normalisation.clone(),
        &prepared.device,
        config.seed,
    )
    .map_err(setup)?;
    let n_stages = net.stages().len();
    if config.freeze > n_stages {
        return Err(RunError::Invalid(Invalid::setting(
            Setting::Freeze,
            format!(
                " {} is more than the {} stages of {} ({}); {} freezes every stage (a linear probe)",
                config.freeze,
                n_stages,
                backbone.name(),
                net.stages()
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                n_stages
            ),
        )));
    }
    net.set_freeze(config.freeze);
    let report = match &config.init {
        Some(path) => Some(load_init(&net, path, goal.keep_head)?),
        None => None,
    };
    Ok((net, report))
}

/// AdamW over the variables a network's freezing depth leaves trainable.
pub struct Optimiser {
    opt: FusedAdamW,
    base_lr: f64,
    /// The first step's loss: a loss a million times larger has exploded.
    first_loss: Option<f64>,
}

/// A loss above this has exploded, whatever it started at.
pub const LOSS_LIMIT: f64 = 1e8;

/// How many times its first value a loss may grow to before the run stops.
const LOSS_GROWTH_LIMIT: f64 = 1e6;

impl Optimiser {
    /// An optimizer with learning rate `lr` for `net`'s trainable variables.
    pub fn new(net: &Network, lr: f64) -> Result<Self, RunError> {
        let vars: Vec<Var> = net.trainable_vars().into_iter().map(|(_, v)| v).collect();
        let opt = FusedAdamW::new(
            vars,
            ParamsAdamW {
                lr,
                ..Default::default()
            },
        )
        .map_err(setup)?;
        Ok(Self {
            opt,
            base_lr: lr,
            first_loss: None,
        })
    }

    /// Scale the configured learning rate (schedules); 1 restores it.
    pub fn set_lr_scale(&mut self, scale: f64) {
        self.opt.set_learning_rate(self.base_lr * scale);
    }

    /// One optimisation step on `loss`; returns its value. A loss that is not finite, or
    /// that has exploded (above `LOSS_LIMIT` or a million times the first), stops the run
    /// before any weight changes.
    pub fn step(&mut self, loss: &Tensor, epoch: usize) -> Result<f64, RunError> {
        let fail = in_epoch(epoch);
        let value = loss.to_scalar::<f32>().map_err(&fail)? as f64;
        if !value.is_finite() {
            return Err(RunError::NonFinite {
                epoch,
                value,
                term: String::new(),
            });
        }
        let first = *self.first_loss.get_or_insert(value);
        if value.abs() > LOSS_LIMIT || value.abs() > LOSS_GROWTH_LIMIT * first.abs().max(1e-2) {
            return Err(RunError::Exploded {
                epoch,
                value,
                first,
                term: String::new(),
            });
        }
        self.opt.backward_step(loss).map_err(fail)?;
        Ok(value)
    }
}

/// A network and its optimizer.
pub struct Learner {
    pub net: Network,
    pub opt: Optimiser,
}

impl Learner {
    /// `net` with an optimizer of learning rate `lr`.
    pub fn new(net: Network, lr: f64) -> Result<Self, RunError> {
        let opt = Optimiser::new(&net, lr)?;
        Ok(Self { net, opt })
    }

    /// One optimisation step on `loss`; returns its value.
    pub fn step(&mut self, loss: &Tensor, epoch: usize) -> Result<f64, RunError> {
        self.opt.step(loss, epoch)
    }
}
