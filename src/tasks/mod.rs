//! Transfer beyond one source and one target: multitask learning (one trunk, a head per
//! task), zero-shot learning by attributes (recognise classes never seen in training from
//! their attribute signature) and stepping-stone transfer (source → intermediate domains
//! → target). Each runs through the same events and report as an ordinary run, so the CLI
//! and the GUI's training and compare views show them without special cases; what is
//! particular to each lives in the report's `extra`.

pub mod multitask;
pub mod stepping;
pub mod tables;
pub mod zeroshot;

use crate::data::split::rng_for;
use crate::model::checkpoint::ModelError;
use crate::model::ops::FusedAdamW;
use crate::model::{InitReport, ModelMeta, Network, NetworkSpec, Normalisation, load_init};
use crate::train::RunError;
use crate::train::config::ExperimentConfig;
use crate::train::events::{EpochRecord, Event, EventSink, FinalMetrics, RunReport};
use crate::train::experiment::{Control, Flow};
use candle_core::{Device, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use std::time::Instant;

fn setup<E: std::fmt::Display>(e: E) -> RunError {
    RunError::Setup(e.to_string())
}

/// A network built for `config` (backbone, freezing, `--init`) with `outputs` outputs.
pub(crate) fn build_network(
    config: &ExperimentConfig,
    meta: Option<&ModelMeta>,
    shape: crate::data::SampleShape,
    outputs: usize,
    normalisation: Normalisation,
    device: &Device,
) -> Result<(Network, Option<InitReport>), RunError> {
    let backbone = crate::train::experiment::resolve_backbone(meta, config.backbone, shape)?;
    let spec = NetworkSpec {
        backbone,
        input: shape,
        num_classes: outputs,
        bottleneck: match config.bottleneck {
            Some(0) | None => None,
            Some(w) => Some(w),
        },
    };
    let mut net = Network::new(spec, normalisation, device, config.seed).map_err(setup)?;
    let n_stages = net.stages().len();
    if config.freeze > n_stages {
        return Err(RunError::Invalid(format!(
            "--freeze {} is more than the {} stages of {}; {} freezes every stage (a linear probe)",
            config.freeze,
            n_stages,
            backbone.name(),
            n_stages
        )));
    }
    net.set_freeze(config.freeze);
    let report = match &config.init {
        Some(path) => {
            Some(load_init(&net, path, false).map_err(|e: ModelError| RunError::from(e))?)
        }
        None => None,
    };
    Ok((net, report))
}

/// A network and its optimizer.
pub(crate) struct Learner {
    pub net: Network,
    opt: FusedAdamW,
}

impl Learner {
    pub fn new(net: Network, lr: f64) -> Result<Self, RunError> {
        let vars: Vec<Var> = net.trainable_vars().into_iter().map(|(_, v)| v).collect();
        let opt = FusedAdamW::new(
            vars,
            ParamsAdamW {
                lr,
                ..Default::default()
            },
        )
        .map_err(setup)?;
        Ok(Self { net, opt })
    }

    /// One optimisation step on `loss`; returns its value.
    pub fn step(&mut self, loss: &Tensor, epoch: usize) -> Result<f64, RunError> {
        let fail = |e: candle_core::Error| RunError::Training {
            epoch,
            message: e.to_string(),
        };
        let value = loss.to_scalar::<f32>().map_err(fail)? as f64;
        if !value.is_finite() {
            return Err(RunError::NonFinite { epoch, value });
        }
        self.opt.backward_step(loss).map_err(fail)?;
        Ok(value)
    }
}

/// Masked mean cross-entropy: rows whose `mask` is 0 (no label for this task) count for
/// nothing. `logits` N×C, `y` N (u32), `mask` N (f32 0/1).
pub(crate) fn masked_cross_entropy(
    logits: &Tensor,
    y: &Tensor,
    mask: &Tensor,
) -> candle_core::Result<Tensor> {
    let per = crate::method::cross_entropy_per_sample(logits, y)?;
    let n = mask.sum_all()?.clamp(1f32, f32::MAX)?;
    (per * mask)?.sum_all()?.div(&n)
}

/// Shuffled, seeded split of `indices` into (train, held out) with `fraction` held out
/// (at least one when there are two or more), stratified by `group`.
pub(crate) fn stratified_split(
    indices: &[usize],
    group: impl Fn(usize) -> usize,
    fraction: f64,
    seed: u64,
    purpose: &str,
) -> (Vec<usize>, Vec<usize>) {
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &i in indices {
        groups.entry(group(i)).or_default().push(i);
    }
    let mut rng = rng_for(seed, purpose);
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (_, mut members) in groups {
        members.shuffle(&mut rng);
        let mut k = (members.len() as f64 * fraction).round() as usize;
        if fraction > 0.0 && k == 0 && members.len() >= 2 {
            k = 1;
        }
        held.extend_from_slice(&members[..k]);
        train.extend_from_slice(&members[k..]);
    }
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}

/// Rows `idx` of `x` as a batch.
pub(crate) fn rows(x: &Tensor, idx: &[usize]) -> candle_core::Result<Tensor> {
    let v: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
    let t = Tensor::from_vec(v, idx.len(), x.device())?;
    x.index_select(&t, 0)
}

/// The network's outputs (eval mode) for rows `idx` of `x`, copied to the host.
pub(crate) fn outputs(
    net: &Network,
    x: &Tensor,
    idx: &[usize],
) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(256) {
        let logits = net.forward_t(&rows(x, chunk)?, false)?.logits;
        out.extend(logits.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// What a run needs before it trains: the `--init` model's metadata, the input
/// normalisation (the model's, or the training images'), the device and the warnings.
pub(crate) struct Prepared {
    pub meta: Option<ModelMeta>,
    pub normalisation: Normalisation,
    pub device: Device,
    pub warnings: Vec<String>,
}

/// Open the device and take the normalisation for a run training on `train` of `domain`.
pub(crate) fn prepare(
    config: &ExperimentConfig,
    domain: &crate::data::Domain,
    train: &[usize],
    mut warnings: Vec<String>,
) -> Result<Prepared, RunError> {
    let meta = crate::train::experiment::init_meta(config)?;
    let normalisation = match &meta {
        Some(m) => m.normalisation.clone(),
        None => Normalisation::from_data(&domain.subset(train).x, domain.shape),
    };
    let (device, note) = crate::device::open_device(config.device);
    warnings.extend(note);
    Ok(Prepared {
        meta,
        normalisation,
        device,
        warnings,
    })
}

/// An epoch's figures, as the run's curves show them.
pub(crate) struct EpochFigures {
    pub source_accuracy: Option<f64>,
    pub target_accuracy: Option<f64>,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// The shared training loop of the across-task runs: `Started`, shuffled batches of
/// `train` with pause/stop checked before each, throttled `BatchFinished` events, and at
/// each epoch's end `end_epoch` (evaluate, save) before `EpochFinished`. `step` trains on
/// one batch and returns the loss it reports. Returns the history and whether it stopped
/// early.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_epochs<S>(
    config: &ExperimentConfig,
    train: &[usize],
    (trainable_params, total_params): (usize, usize),
    prepared: &Prepared,
    state: &mut S,
    sink: &mut dyn EventSink,
    control: &mut dyn Control,
    mut step: impl FnMut(&mut S, &[usize], usize) -> Result<f64, RunError>,
    mut end_epoch: impl FnMut(&mut S, usize) -> Result<EpochFigures, RunError>,
) -> Result<(Vec<EpochRecord>, bool), RunError> {
    let mut batcher =
        crate::data::Batcher::new(train.to_vec(), config.batch_size, config.seed, "batches");
    let batches = batcher.batches_per_epoch();
    sink.emit(Event::Started {
        epochs: config.epochs,
        batches_per_epoch: batches,
        trainable_params,
        total_params,
        device: crate::device::device_name(&prepared.device).to_string(),
        warnings: prepared.warnings.clone(),
    });
    let total_steps = (config.epochs * batches).max(1);
    let mut history = Vec::new();
    let mut last_emit = Instant::now();
    let mut steps = 0usize;
    for epoch in 1..=config.epochs {
        let epoch_start = Instant::now();
        batcher.reshuffle();
        let (mut loss_sum, mut b, mut images) = (0.0, 0usize, 0usize);
        while let Some(idx) = batcher.next_batch() {
            if control.check(sink) == Flow::Stop {
                return Ok((history, true));
            }
            let loss = step(state, &idx, epoch)?;
            loss_sum += loss;
            b += 1;
            steps += 1;
            images += idx.len();
            if last_emit.elapsed().as_millis() >= 100 || b == batches {
                last_emit = Instant::now();
                let secs = epoch_start.elapsed().as_secs_f64().max(1e-9);
                sink.emit(Event::BatchFinished {
                    epoch,
                    batch: b,
                    batches,
                    loss,
                    images_per_sec: images as f64 / secs,
                    eta_secs: secs / b as f64 * (total_steps - steps) as f64,
                });
            }
        }
        let images_per_sec = images as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
        let figures = end_epoch(state, epoch)?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / b.max(1) as f64,
            source_accuracy: figures.source_accuracy,
            target_accuracy: figures.target_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
            images_per_sec,
            metrics: figures.metrics,
        };
        sink.emit(Event::EpochFinished(record.clone()));
        history.push(record);
    }
    Ok((history, false))
}

/// The parts of a report every across-task run fills the same way.
pub(crate) fn base_report(
    config: &ExperimentConfig,
    net: &Network,
    prepared: &Prepared,
    history: Vec<EpochRecord>,
    stopped_early: bool,
    started: Instant,
) -> RunReport {
    let (trainable_params, total_params) = net.param_counts(config.freeze);
    RunReport {
        method: config.method.name().into(),
        backbone: net.spec.backbone.name().into(),
        freeze: config.freeze,
        stages: net.stages().iter().map(|s| s.name.clone()).collect(),
        seed: config.seed,
        device: crate::device::device_name(&prepared.device).to_string(),
        trainable_params,
        total_params,
        final_metrics: FinalMetrics::of(&history),
        history,
        stopped_early,
        elapsed_secs: started.elapsed().as_secs_f64(),
        warnings: prepared.warnings.clone(),
        config: config.clone(),
        ..Default::default()
    }
}

/// A training-step failure in `epoch`.
pub(crate) fn in_epoch(epoch: usize) -> impl Fn(candle_core::Error) -> RunError {
    move |e| RunError::Training {
        epoch,
        message: e.to_string(),
    }
}
