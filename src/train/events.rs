//! What the worker says (events, past tense) and what it is told (commands, imperative),
//! plus the run's report — the same structure the CLI writes as JSON.

use super::config::ExperimentConfig;
use super::results::{Metric, Phase, RunExtra, TaskAccuracy};
use crate::model::InitReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Commands to a running worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Stop,
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    /// Accuracy on the held-out source images (0..1), if any.
    pub source_accuracy: Option<f64>,
    /// Accuracy on the target's evaluation images (0..1); None for an unlabeled target.
    pub target_accuracy: Option<f64>,
    pub seconds: f64,
    pub images_per_sec: f64,
    /// Method- and task-specific figures (e.g. `mmd2`, `domain_acc`), described by the
    /// run's `metrics` descriptors.
    pub metrics: BTreeMap<String, f64>,
    /// The part of the run it belongs to (a stepping-stone hop, or the direct run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// A multitask epoch's accuracy per task, jointly and alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskAccuracy>,
}

/// The figures after the last epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinalMetrics {
    pub source_accuracy: Option<f64>,
    pub target_accuracy: Option<f64>,
    pub train_loss: Option<f64>,
    pub epochs_completed: usize,
    /// Estimates of the target accuracy and quality that use no target label
    /// (transfer runs; None for the others).
    pub label_free: Option<crate::analysis::label_free::LabelFree>,
}

impl FinalMetrics {
    /// The target accuracy, measured when the target has labels, else estimated without
    /// them (ATC); the flag says which.
    pub fn target_accuracy_or_estimate(&self) -> Option<(f64, bool)> {
        match self.target_accuracy {
            Some(acc) => Some((acc, false)),
            None => self
                .label_free
                .as_ref()
                .and_then(|l| l.accuracy)
                .map(|a| (a.atc, true)),
        }
    }

    /// The figures of a run that ended with `history`.
    pub fn of(history: &[EpochRecord]) -> Self {
        let last = history.last();
        Self {
            source_accuracy: last.and_then(|r| r.source_accuracy),
            target_accuracy: last.and_then(|r| r.target_accuracy),
            train_loss: last.map(|r| r.train_loss),
            epochs_completed: history.len(),
            label_free: None,
        }
    }
}

/// Counts of the data a run used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataReport {
    pub source: String,
    pub classes: Vec<String>,
    pub source_train: usize,
    pub source_val: usize,
    pub target_train: usize,
    pub target_eval: usize,
    pub target_total: usize,
    pub target_labelled: bool,
    pub skipped_files: usize,
    pub sample_shape: String,
}

/// A target image's prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Index in the target domain.
    pub index: usize,
    pub file: String,
    pub predicted: u32,
    pub confidence: f32,
    /// True label, when the target is labelled.
    pub label: Option<u32>,
}

/// The network a run trains: where it runs and how many of its weights train.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSummary {
    pub device: String,
    pub trainable_params: usize,
    pub total_params: usize,
}

impl NetworkSummary {
    /// `net` on `device` with its first `freeze` stages frozen.
    pub fn of(net: &crate::model::Network, freeze: usize, device: String) -> Self {
        let (trainable_params, total_params) = net.param_counts(freeze);
        Self {
            device,
            trainable_params,
            total_params,
        }
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunReport {
    pub method: String,
    pub backbone: String,
    pub freeze: usize,
    pub stages: Vec<String>,
    pub seed: u64,
    #[serde(flatten)]
    pub network: NetworkSummary,
    pub data: DataReport,
    pub history: Vec<EpochRecord>,
    /// What each figure in `history` is (name, unit, direction, chance level).
    pub metrics: Vec<Metric>,
    #[serde(rename = "final")]
    pub final_metrics: FinalMetrics,
    /// Target confusion matrix, rows = true class, columns = predicted (labelled targets).
    pub confusion: Option<Vec<Vec<u32>>>,
    pub stopped_early: bool,
    pub elapsed_secs: f64,
    pub init: Option<InitReport>,
    pub warnings: Vec<String>,
    /// The results of a kind of run (multitask, zero-shot, stepping stones) or of a
    /// method (e.g. per-file instance weights).
    pub extra: Option<RunExtra>,
    /// With `--select-by`: the epoch kept, by which criterion, and the oracle's choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<super::selection::Selection>,
    pub config: ExperimentConfig,
    /// Per target image predictions (written with `--predict`, not into the JSON).
    #[serde(skip)]
    pub predictions: Vec<Prediction>,
}

impl RunReport {
    /// The parts every kind of run fills the same way; the run adds its data counts,
    /// confusion matrix, predictions and extra results.
    pub fn base(
        config: &ExperimentConfig,
        net: &crate::model::Network,
        device: String,
        warnings: Vec<String>,
        outcome: super::epoch_loop::LoopOutcome,
        elapsed_secs: f64,
    ) -> Self {
        Self {
            method: config.method.name().into(),
            backbone: net.spec.backbone.name().into(),
            freeze: config.freeze,
            stages: net.stages().iter().map(|s| s.name.clone()).collect(),
            seed: config.seed,
            network: NetworkSummary::of(net, config.freeze, device),
            final_metrics: FinalMetrics::of(&outcome.history),
            history: outcome.history,
            metrics: outcome.metrics,
            stopped_early: outcome.stopped_early,
            elapsed_secs,
            warnings,
            config: config.clone(),
            ..Default::default()
        }
    }
}

/// What a run says as training starts.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStart {
    pub epochs: usize,
    pub batches_per_epoch: usize,
    pub network: NetworkSummary,
    pub warnings: Vec<String>,
    /// What each figure the epochs will carry is.
    pub metrics: Vec<Metric>,
}

/// Where training stands after a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchProgress {
    /// 1-based epoch and batch within it.
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    pub loss: f64,
    pub images_per_sec: f64,
    pub eta_secs: f64,
}

/// What the worker reports.
#[derive(Clone, Debug)]
pub enum Event {
    /// Data loading progress.
    Loading {
        what: String,
        done: usize,
        total: usize,
    },
    /// Training is about to start.
    Started(RunStart),
    /// A batch finished (throttled: a few per second at most).
    BatchFinished(BatchProgress),
    EpochFinished(EpochRecord),
    Paused,
    Resumed,
    /// The run ended: all epochs done, or stopped early (`report.stopped_early`).
    Finished(Box<RunReport>),
    /// The run failed; `epoch` is where (1-based), if training had started.
    Failed {
        epoch: Option<usize>,
        message: String,
    },
}

/// Where a run's events go.
pub trait EventSink {
    /// Deliver one event.
    fn emit(&mut self, event: Event);
}

impl<F: FnMut(Event)> EventSink for F {
    fn emit(&mut self, event: Event) {
        self(event)
    }
}
