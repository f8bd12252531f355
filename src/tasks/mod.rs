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

use crate::data::Domain;
use crate::data::split::rng_for;
use crate::model::Network;
use crate::train::RunError;
use crate::train::config::ExperimentConfig;
use crate::train::epoch_loop::{EpochFigures, LoopOutcome, LoopPlan, StepAt, TrainStep};
use crate::train::events::{DataReport, EventSink, NetworkSummary, RunReport};
use crate::train::experiment::Control;
use crate::train::learner::Prepared;
use candle_core::Tensor;
use rand::seq::SliceRandom;
use std::time::Instant;

/// What an across-task run trained on: its data's origin, its images, and the counts the
/// report gives.
pub(crate) struct TaskData<'a> {
    pub origin: &'a str,
    pub domain: &'a Domain,
    pub classes: Vec<String>,
    pub train: usize,
    pub held_out: usize,
}

/// The report of an across-task run: the parts every run fills the same way, and the data
/// counts (the run adds its target counts, confusion matrix and extra results).
pub(crate) fn task_report(
    config: &ExperimentConfig,
    net: &Network,
    prepared: &Prepared,
    outcome: LoopOutcome,
    started: Instant,
    data: TaskData<'_>,
) -> RunReport {
    let mut report = RunReport::base(
        config,
        net,
        prepared.device_label(),
        prepared.warnings.clone(),
        outcome,
        started.elapsed().as_secs_f64(),
    );
    report.data = DataReport {
        source: data.origin.to_string(),
        classes: data.classes,
        source_train: data.train,
        source_val: data.held_out,
        skipped_files: data.domain.skipped.len(),
        sample_shape: data.domain.shape.describe(),
        ..Default::default()
    };
    report
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

/// An across-task run's part of the shared loop, as two closures over its state: `step`
/// trains on a batch of `train` (image indices) and returns the loss to report,
/// `end_epoch` evaluates (and saves).
struct TaskStep<'a, S, F, G> {
    train: &'a [usize],
    state: &'a mut S,
    step: F,
    end_epoch: G,
}

impl<S, F, G> TrainStep for TaskStep<'_, S, F, G>
where
    F: FnMut(&mut S, &[usize], usize) -> Result<f64, RunError>,
    G: FnMut(&mut S, usize) -> Result<EpochFigures, RunError>,
{
    fn step(&mut self, batch: &[usize], at: StepAt) -> Result<f64, RunError> {
        let idx: Vec<usize> = batch.iter().map(|&p| self.train[p]).collect();
        (self.step)(self.state, &idx, at.epoch)
    }

    fn end_epoch(&mut self, epoch: usize) -> Result<EpochFigures, RunError> {
        (self.end_epoch)(self.state, epoch)
    }
}

/// The closures of an across-task run (see [`train_task`]).
pub(crate) struct TaskRun<'a, S, F, G> {
    pub train: &'a [usize],
    /// The network the run trains.
    pub network: NetworkSummary,
    pub state: &'a mut S,
    pub step: F,
    pub end_epoch: G,
    /// What each figure the run records is.
    pub metrics: Vec<crate::train::results::Metric>,
}

/// Train an across-task run through the shared loop.
pub(crate) fn train_task<S, F, G>(
    config: &ExperimentConfig,
    prepared: &Prepared,
    run: TaskRun<'_, S, F, G>,
    sink: &mut dyn EventSink,
    control: &mut dyn Control,
) -> Result<LoopOutcome, RunError>
where
    F: FnMut(&mut S, &[usize], usize) -> Result<f64, RunError>,
    G: FnMut(&mut S, usize) -> Result<EpochFigures, RunError>,
{
    let plan = LoopPlan {
        epochs: config.epochs,
        batch_size: config.batch_size,
        seed: config.seed,
        pool: run.train.len(),
        network: run.network,
        warnings: prepared.warnings.clone(),
        metrics: run.metrics,
    };
    let mut step = TaskStep {
        train: run.train,
        state: run.state,
        step: run.step,
        end_epoch: run.end_epoch,
    };
    crate::train::epoch_loop::train_epochs(&plan, &mut step, sink, control)
}
