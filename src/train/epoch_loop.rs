//! The one training loop every kind of run goes through (a transfer experiment, each
//! stepping-stone hop, multitask, zero-shot): `Started`, seeded shuffled batches with
//! pause/stop checked before each, throttled `BatchFinished` events with an ETA, and at each
//! epoch's end the run's own evaluation (and save) before `EpochFinished`. What a kind of
//! run does per batch and per epoch is its [`TrainStep`].

use super::events::{BatchProgress, EpochRecord, Event, EventSink, NetworkSummary, RunStart};
use super::experiment::{Control, Flow, RunError};
use super::results::{Metric, TaskAccuracy};
use crate::data::Batcher;
use std::collections::BTreeMap;
use std::time::Instant;

/// Where a step stands in the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepAt {
    /// 1-based epoch.
    pub epoch: usize,
    /// From 0 at the first step to 1 at the end of the run (for schedules).
    pub progress: f64,
}

/// An epoch's figures, as the run's curves show them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochFigures {
    pub source_accuracy: Option<f64>,
    pub target_accuracy: Option<f64>,
    pub metrics: BTreeMap<String, f64>,
    /// A multitask epoch's accuracy per task.
    pub tasks: Vec<TaskAccuracy>,
}

/// What one kind of run does inside the shared loop.
pub trait TrainStep {
    /// Work after `Started` and before the first batch (e.g. caching frozen stages).
    fn before_training(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// Work before each epoch's first batch (e.g. a method labelling the target).
    fn begin_epoch(&mut self, _epoch: usize) -> Result<(), RunError> {
        Ok(())
    }

    /// Train on one batch (indices into the run's training pool); returns the loss to report.
    fn step(&mut self, batch: &[usize], at: StepAt) -> Result<f64, RunError>;

    /// Evaluate (and save) at the end of `epoch`; the file on disk must hold this epoch
    /// before anyone hears that it ended.
    fn end_epoch(&mut self, epoch: usize) -> Result<EpochFigures, RunError>;
}

/// What the loop needs to know about a run.
#[derive(Clone, Debug)]
pub struct LoopPlan {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Size of the training pool (batches hold indices `0..pool`).
    pub pool: usize,
    pub network: NetworkSummary,
    pub warnings: Vec<String>,
    /// What each figure the epochs carry is (sent with `Started`, kept in the report).
    pub metrics: Vec<Metric>,
}

/// How the loop ended.
#[derive(Clone, Debug, Default)]
pub struct LoopOutcome {
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
    /// The plan's metric descriptors.
    pub metrics: Vec<Metric>,
}

/// Seconds between two `BatchFinished` events (the last batch of an epoch always reports).
const BATCH_EVENT_SECS: f64 = 0.1;

/// Run `plan.epochs` epochs of `run`, reporting through `sink` and obeying `control`.
pub fn train_epochs(
    plan: &LoopPlan,
    run: &mut dyn TrainStep,
    sink: &mut dyn EventSink,
    control: &mut dyn Control,
) -> Result<LoopOutcome, RunError> {
    let mut batcher = Batcher::new(
        (0..plan.pool).collect(),
        plan.batch_size,
        plan.seed,
        "batches",
    );
    let batches = batcher.batches_per_epoch();
    sink.emit(Event::Started(RunStart {
        epochs: plan.epochs,
        batches_per_epoch: batches,
        network: plan.network.clone(),
        warnings: plan.warnings.clone(),
        metrics: plan.metrics.clone(),
    }));
    run.before_training()?;
    let total_steps = (plan.epochs * batches).max(1);
    let mut outcome = LoopOutcome {
        metrics: plan.metrics.clone(),
        ..Default::default()
    };
    let mut steps = 0usize;
    let mut last_emit = Instant::now();
    for epoch in 1..=plan.epochs {
        let epoch_start = Instant::now();
        batcher.reshuffle();
        let (mut loss_sum, mut b, mut images) = (0.0, 0usize, 0usize);
        // Time spent paused is not training time (it would halve a paused epoch's images/s).
        let mut paused_secs = 0.0;
        let training_secs = |paused: f64| (epoch_start.elapsed().as_secs_f64() - paused).max(1e-9);
        run.begin_epoch(epoch)?;
        while let Some(idx) = batcher.next_batch() {
            let check_start = Instant::now();
            let flow = control.check(sink);
            paused_secs += check_start.elapsed().as_secs_f64();
            if flow == Flow::Stop {
                outcome.stopped_early = true;
                return Ok(outcome);
            }
            let at = StepAt {
                epoch,
                progress: steps as f64 / total_steps as f64,
            };
            let loss = run.step(&idx, at)?;
            loss_sum += loss;
            b += 1;
            steps += 1;
            images += idx.len();
            if last_emit.elapsed().as_secs_f64() >= BATCH_EVENT_SECS || b == batches {
                last_emit = Instant::now();
                let secs = training_secs(paused_secs);
                sink.emit(Event::BatchFinished(BatchProgress {
                    epoch,
                    batch: b,
                    batches,
                    loss,
                    images_per_sec: images as f64 / secs,
                    eta_secs: secs / b as f64 * (total_steps - steps) as f64,
                }));
            }
        }
        let images_per_sec = images as f64 / training_secs(paused_secs);
        let figures = run.end_epoch(epoch)?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / b.max(1) as f64,
            source_accuracy: figures.source_accuracy,
            target_accuracy: figures.target_accuracy,
            seconds: training_secs(paused_secs),
            images_per_sec,
            metrics: figures.metrics,
            phase: None,
            tasks: figures.tasks,
        };
        sink.emit(Event::EpochFinished(record.clone()));
        outcome.history.push(record);
    }
    Ok(outcome)
}
