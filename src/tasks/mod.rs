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
use crate::model::{
    BackboneKind, InitReport, ModelMeta, Network, NetworkSpec, Normalisation, load_init,
};
use crate::train::RunError;
use crate::train::config::ExperimentConfig;
use crate::train::events::{Event, EventSink};
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
    let backbone = match (meta, config.backbone) {
        (Some(m), Some(b)) if m.backbone != b => {
            return Err(RunError::Invalid(format!(
                "--backbone {} differs from the --init model's backbone {}",
                b.name(),
                m.backbone.name()
            )));
        }
        (Some(m), _) => m.backbone,
        (None, Some(b)) => b,
        (None, None) => BackboneKind::default_for(shape),
    };
    if let Some(m) = meta {
        if m.input != shape {
            return Err(RunError::Invalid(format!(
                "the --init model expects {} input but the data was loaded as {}",
                m.input.describe(),
                shape.describe()
            )));
        }
    }
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

/// Batch progress for the sink: throttled `BatchFinished` events with images/s and ETA,
/// and the control's pause/stop checked every batch.
pub(crate) struct Ticker {
    pub epoch_start: Instant,
    last_emit: Instant,
    pub step: usize,
    pub total_steps: usize,
    pub batches: usize,
    pub batch: usize,
    pub images: usize,
}

impl Ticker {
    pub fn new(total_steps: usize, batches: usize) -> Self {
        Self {
            epoch_start: Instant::now(),
            last_emit: Instant::now(),
            step: 0,
            total_steps: total_steps.max(1),
            batches,
            batch: 0,
            images: 0,
        }
    }

    pub fn start_epoch(&mut self) {
        self.epoch_start = Instant::now();
        self.batch = 0;
        self.images = 0;
    }

    /// Before a batch: false when the run must stop.
    pub fn go_on(&mut self, sink: &mut dyn EventSink, control: &mut dyn Control) -> bool {
        control.check(sink) == Flow::Continue
    }

    /// After a batch of `n` images with loss `loss`.
    pub fn done(&mut self, sink: &mut dyn EventSink, epoch: usize, n: usize, loss: f64) {
        self.batch += 1;
        self.step += 1;
        self.images += n;
        if self.last_emit.elapsed().as_millis() >= 100 || self.batch == self.batches {
            self.last_emit = Instant::now();
            let secs = self.epoch_start.elapsed().as_secs_f64().max(1e-9);
            sink.emit(Event::BatchFinished {
                epoch,
                batch: self.batch,
                batches: self.batches,
                loss,
                images_per_sec: self.images as f64 / secs,
                eta_secs: secs / self.batch as f64 * (self.total_steps - self.step) as f64,
            });
        }
    }

    pub fn images_per_sec(&self) -> f64 {
        self.images as f64 / self.epoch_start.elapsed().as_secs_f64().max(1e-9)
    }
}
