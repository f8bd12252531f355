//! A prepared run: validated settings, split data on the device, the network and the
//! method. `Experiment::new` checks everything that can be checked before training, so bad
//! settings fail in milliseconds with a clear message; `run` trains, evaluates every epoch
//! and reports through an [`EventSink`], checking its [`Control`] every batch.

use super::config::ExperimentConfig;
use super::epoch_loop::{EpochFigures, LoopOutcome, LoopPlan, StepAt, TrainStep, train_epochs};
use super::events::{DataReport, EventSink, NetworkSummary, Prediction, RunReport};
use super::learner::{NetworkGoal, Optimiser, build_network, in_epoch, prepare, setup};
use super::results::{Metric, RunExtra};
use super::settings::{Audience, Invalid, Setting};
use crate::analysis::Features;
use crate::analysis::label_free::LabelFree;
use crate::data::{Batcher, DataError, DomainPair, Split, split_indices};
use crate::method::teacher::{teacher_classes, teacher_outputs};
use crate::method::{
    LabelledData, LabelledPass, Method, MethodKind, MethodSettings, PSEUDO_ACCURACY, TargetPass,
    TrainBatch, build_method, label_propagation::MAX_LABELLED, top_class,
};
use crate::model::checkpoint::ModelError;
use crate::model::{Forward, InitReport, Network, save_checkpoint};
use candle_core::{D, Device, Tensor};
use std::sync::Arc;
use std::time::Instant;

/// Most memory the frozen-stage cache may take (above it, frozen stages run every batch).
const STAGE_CACHE_BYTES: usize = 1 << 30;

/// Whether to go on after a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Checked once per batch: may pause (block) or stop the run.
pub trait Control {
    /// Continue or stop; a paused control blocks here until resumed.
    fn check(&mut self, sink: &mut dyn EventSink) -> Flow;
}

/// A control that never stops (headless runs).
pub struct NoControl;

impl Control for NoControl {
    fn check(&mut self, _sink: &mut dyn EventSink) -> Flow {
        Flow::Continue
    }
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error("{0}")]
    Invalid(Invalid),
    #[error("could not set up the run: {0}")]
    Setup(String),
    #[error(
        "training diverged in epoch {epoch}: the loss became {value}{term} (try a smaller learning rate)"
    )]
    NonFinite {
        epoch: usize,
        value: f64,
        /// "; the … term was …" when a method's term is to blame, else empty.
        term: String,
    },
    #[error(
        "training diverged in epoch {epoch}: the loss grew to {value:.3e} from {first:.3e} at the start{term} \
         (stopped above {:e} or a million times the first loss; try a smaller learning rate or adaptation weight)",
        crate::train::learner::LOSS_LIMIT
    )]
    Exploded {
        epoch: usize,
        value: f64,
        first: f64,
        /// "; the … term was …" naming the method's largest term, else empty.
        term: String,
    },
    #[error("training failed in epoch {epoch}: {message}")]
    Training { epoch: usize, message: String },
}

impl RunError {
    /// The message in `audience`'s words: settings by their flags on the command line, by
    /// their labels in the app.
    pub fn words(&self, audience: Audience) -> String {
        match self {
            RunError::Invalid(problem) => problem.words(audience),
            other => other.to_string(),
        }
    }

    /// The epoch the error happened in, if training had started.
    pub fn epoch(&self) -> Option<usize> {
        match self {
            RunError::NonFinite { epoch, .. }
            | RunError::Exploded { epoch, .. }
            | RunError::Training { epoch, .. } => Some(*epoch),
            _ => None,
        }
    }
}

/// A validated, ready-to-train run.
pub struct Experiment {
    pub config: ExperimentConfig,
    pub pair: Arc<DomainPair>,
    pub split: Split,
    pub net: Network,
    pub init_report: Option<InitReport>,
    pub warnings: Vec<String>,
    method: Box<dyn Method>,
    source_x: Tensor,
    target_x: Tensor,
    /// During a run with frozen stages: their outputs for every (source, target) sample.
    stage_cache: Option<(Tensor, Tensor)>,
    /// Labelled training pool: (from target, index in its domain).
    pool: Vec<(bool, usize)>,
    device_label: String,
    /// With `--select-by`: each epoch's score so far, and the best epoch's weights.
    selection_scores: Vec<Option<f64>>,
    best_weights: Option<(f64, Vec<(String, Tensor)>)>,
}

/// Check the settings that do not depend on the data.
pub fn validate_config(config: &ExperimentConfig) -> Result<(), RunError> {
    let bad =
        |setting: Setting, rest: String| Err(RunError::Invalid(Invalid::setting(setting, rest)));
    if config.epochs == 0 {
        return bad(Setting::Epochs, " must be at least 1".into());
    }
    if config.batch_size == 0 {
        return bad(Setting::BatchSize, " must be at least 1".into());
    }
    if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
        return bad(
            Setting::LearningRate,
            format!(" must be a positive number, got {}", config.learning_rate),
        );
    }
    if !(0.0..0.95).contains(&config.val_fraction) {
        return bad(
            Setting::ValFraction,
            format!(" must be in [0, 0.95), got {}", config.val_fraction),
        );
    }
    if let Some(width) = config.bottleneck
        && width > crate::model::checkpoint::MAX_BOTTLENECK
    {
        return bad(
            Setting::Bottleneck,
            format!(
                " must be at most {} (0 = none), got {width}",
                crate::model::checkpoint::MAX_BOTTLENECK
            ),
        );
    }
    let info = config.method.info();
    if let (Some(l), Some(h)) = (config.lambda, info.hyperparameter("lambda"))
        && let Err(e) = h.check(l)
    {
        return bad(Setting::Lambda, format!(" {e}"));
    }
    for (key, &value) in &config.params {
        let Some(h) = info.hyperparameter(key) else {
            let known: Vec<&str> = info.hyperparameters.iter().map(|h| h.key).collect();
            return bad(
                Setting::Param,
                format!(
                    " {key}: {} has no such hyperparameter ({})",
                    info.name,
                    if known.is_empty() {
                        "it has none".to_string()
                    } else {
                        format!("it has {}", known.join(", "))
                    }
                ),
            );
        };
        if let Err(e) = h.check(value) {
            return bad(Setting::Param, format!(" {key} {e}"));
        }
    }
    if config.method.labelled_data() == LabelledData::None && config.freeze > 0 {
        return bad(
            Setting::Freeze,
            format!(
                " must be 0 for {}: it learns the whole backbone from the images themselves",
                config.method.name()
            ),
        );
    }
    // A teacher given to a method that takes none is left unused, as λ is for a method
    // without one (the command line refuses it, so nobody thinks it was used).
    if config.method.needs_teacher() && config.teacher.is_none() {
        return bad(
            Setting::Teacher,
            format!(
                " is needed: {} learns from a teacher (a saved model, or imagenet for the built-in EfficientNet-Lite0)",
                config.method.name()
            ),
        );
    }
    if config.select_by.is_some() && config.method.labelled_data() == LabelledData::None {
        return bad(
            Setting::SelectBy,
            format!(
                " scores a classifier, and {} trains none",
                config.method.name()
            ),
        );
    }
    if config.method == MethodKind::TargetOnly && config.target_labels == 0 {
        return Err(RunError::Invalid(
            Invalid::text("target-only trains on labelled target images: set ")
                .name(Setting::TargetLabels)
                .then(" to 1 or more"),
        ));
    }
    Ok(())
}

impl Experiment {
    /// Validate `config` against `pair` and prepare the network, method and data.
    pub fn new(config: ExperimentConfig, pair: Arc<DomainPair>) -> Result<Self, RunError> {
        Self::new_reporting(config, pair, &mut |_, _| {})
    }

    /// [`Experiment::new`], saying how far the slow part of the preparation is (a
    /// teacher's pass over every image) through `progress(what, done of total)`.
    pub fn new_reporting(
        config: ExperimentConfig,
        pair: Arc<DomainPair>,
        progress: &mut dyn FnMut(&str, crate::data::LoadProgress),
    ) -> Result<Self, RunError> {
        validate_config(&config)?;
        if config.method.is_task_method() {
            return Err(RunError::Invalid(Invalid::text(format!(
                "{} learns across tasks, not from a source to a target domain: run it with run::run_job",
                config.method.name()
            ))));
        }
        let mut warnings = pair.warnings.clone();
        if config.target_labels > 0 && !pair.target_labelled() {
            return Err(RunError::Invalid(Invalid::setting(
                Setting::TargetLabels,
                " needs a labelled target folder (one subfolder per class)",
            )));
        }
        if pair.classes == [crate::data::pair::NO_LABEL]
            && config.method.labelled_data() != LabelledData::None
        {
            return Err(RunError::Invalid(Invalid::setting(
                Setting::Source,
                format!(
                    " has no class folders, so {} has no labels to learn from: only rotation-pretrain reads no label",
                    config.method.name()
                ),
            )));
        }
        let shape = pair.source.shape;
        let (split, split_warnings) = split_indices(
            &pair,
            config.val_fraction,
            config.target_labels,
            config.seed,
        );
        warnings.extend(split_warnings);
        let pool: Vec<(bool, usize)> = match config.method.labelled_data() {
            LabelledData::Source | LabelledData::None => {
                split.source_train.iter().map(|&i| (false, i)).collect()
            }
            LabelledData::Target => split.target_train.iter().map(|&i| (true, i)).collect(),
            LabelledData::SourceAndTarget => split
                .source_train
                .iter()
                .map(|&i| (false, i))
                .chain(split.target_train.iter().map(|&i| (true, i)))
                .collect(),
        };
        if pool.is_empty() {
            return Err(RunError::Invalid(Invalid::text(format!(
                "{} has no labelled images to train on",
                config.method.name()
            ))));
        }
        if config.method.uses_unlabeled_target() && pair.target.len() < config.batch_size.max(2) {
            return Err(RunError::Invalid(
                Invalid::text(format!(
                    "{} adapts to batches of {} target images, but the target has only {}: add target images or lower ",
                    config.method.name(),
                    config.batch_size.max(2),
                    pair.target.len()
                ))
                .name(Setting::BatchSize),
            ));
        }
        // The normalisation comes from what the run trains on (all of the source when
        // nothing of it is held for training); target-only never sees the source.
        let (norm_domain, norm_train) = match config.method.labelled_data() {
            LabelledData::Target => (&pair.target, split.target_train.as_slice()),
            _ => (&pair.source, split.source_train.as_slice()),
        };
        let prepared = prepare(&config, norm_domain, norm_train, warnings)?;
        let keep_head = prepared
            .meta
            .as_ref()
            .is_some_and(|m| m.class_names == pair.classes);
        let (net, init_report) = build_network(
            &config,
            &prepared,
            shape,
            NetworkGoal {
                outputs: pair.classes.len(),
                default_bottleneck: config.method.bottleneck(),
                keep_head,
            },
        )?;
        let mut warnings = prepared.warnings.clone();
        if let (Some(report), Some(path)) = (&init_report, &config.init) {
            warnings.extend(report.partial_warning(path));
        }
        if let (Some(report), Some(m)) = (&init_report, &prepared.meta)
            && report.new_head
        {
            warnings.push(format!(
                "the model this run starts from was trained on other classes ({}): its backbone is reused with a new head",
                m.class_names.join(", ")
            ));
        }
        let device = prepared.device.clone();
        let mut params: std::collections::BTreeMap<String, f64> = config
            .method
            .info()
            .hyperparameters
            .iter()
            .map(|h| (h.key.to_string(), h.default))
            .collect();
        params.extend(config.params.clone());
        let lambda = config
            .lambda
            .or(config.method.default_lambda())
            .unwrap_or(1.0);
        if params.contains_key("lambda") {
            params.insert("lambda".into(), lambda);
        }
        let teacher = match &config.teacher {
            Some(model) if config.method.needs_teacher() => {
                let invalid = |e: String| RunError::Invalid(Invalid::text(e));
                // Checked before the teacher's pass over every image (it takes a while).
                if config.method == MethodKind::Distill
                    && teacher_classes(model).map_err(invalid)? != pair.classes
                {
                    return Err(invalid(format!(
                        "distill matches the teacher's class probabilities, but the teacher knows other classes than this data ({}): use relation-distill, which hands over relations and works across label sets",
                        pair.classes.join(", ")
                    )));
                }
                let outputs = teacher_outputs(model, &pair.source, &pair.target, &device, progress)
                    .map_err(invalid)?;
                Some(Arc::new(outputs))
            }
            _ => None,
        };
        let settings = MethodSettings {
            lambda,
            params,
            total_steps: config.epochs * pool.len().div_ceil(config.batch_size),
            seed: config.seed,
            source_files: pair.source.files.clone(),
            teacher,
        };
        let method = build_method(config.method, &settings, &net).map_err(setup)?;
        let to_tensor = |d: &crate::data::Domain| {
            Tensor::from_slice(&d.x, d.shape.batch_dims(d.len()).as_slice(), &device).map_err(setup)
        };
        let source_x = to_tensor(&pair.source)?;
        let target_x = to_tensor(&pair.target)?;
        Ok(Self {
            device_label: prepared.device_label(),
            config,
            pair,
            split,
            net,
            init_report,
            warnings,
            method,
            source_x,
            target_x,
            stage_cache: None,
            pool,
            selection_scores: Vec::new(),
            best_weights: None,
        })
    }

    /// Number of batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.pool.len().div_ceil(self.config.batch_size)
    }

    fn device(&self) -> &Device {
        &self.net.device
    }

    fn index_tensor(&self, idx: &[usize]) -> candle_core::Result<Tensor> {
        let v: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
        Tensor::from_vec(v, idx.len(), self.device())
    }

    /// Network inputs for samples of one domain: the cached frozen-stage outputs during a
    /// run that has them (the network then starts after the frozen stages), else raw rows.
    fn gather(&self, target: bool, idx: &[usize]) -> candle_core::Result<Tensor> {
        let x = match (&self.stage_cache, target) {
            (Some((_, cached)), true) => cached,
            (Some((cached, _)), false) => cached,
            (None, true) => &self.target_x,
            (None, false) => &self.source_x,
        };
        x.index_select(&self.index_tensor(idx)?, 0)
    }

    /// With the first stages frozen, compute their outputs for every sample once, so each
    /// epoch (and each evaluation) runs only the trainable stages: a linear probe then
    /// costs only the head. Valid because frozen stages are deterministic (batch-norm in
    /// eval mode, no dropout) and inputs do not change between epochs (no augmentation).
    /// Skipped when the outputs would take more than [`STAGE_CACHE_BYTES`].
    fn cache_frozen_stages(&mut self) -> candle_core::Result<()> {
        self.stage_cache = None;
        self.net.set_input_stage(0);
        let k = self.net.freeze();
        let (ns, nt) = (self.source_x.dim(0)?, self.target_x.dim(0)?);
        if k == 0 || ns == 0 || nt == 0 {
            return Ok(());
        }
        let net = &self.net;
        let outputs = |x: &Tensor, start: usize, len: usize| {
            net.run_stages(&net.normalise(&x.narrow(0, start, len)?)?, 0, k, false)
        };
        let per_sample = outputs(&self.source_x, 0, 1)?.elem_count();
        if (ns + nt) * per_sample * std::mem::size_of::<f32>() > STAGE_CACHE_BYTES {
            return Ok(());
        }
        // Chunks of at most ~1 M input values: large photos in small chunks keep each
        // activation tensor in the allocator's heap (no page faults per batch) and in cache.
        let chunk = ((1usize << 20) / (self.source_x.elem_count() / ns).max(1)).clamp(1, 256);
        let all = |x: &Tensor, n: usize| -> candle_core::Result<Tensor> {
            let parts = (0..n)
                .step_by(chunk)
                .map(|s| outputs(x, s, chunk.min(n - s)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Tensor::cat(&parts, 0)
        };
        self.stage_cache = Some((all(&self.source_x, ns)?, all(&self.target_x, nt)?));
        self.net.set_input_stage(k);
        Ok(())
    }

    fn label_of(&self, target: bool, i: usize) -> u32 {
        let d = if target {
            &self.pair.target
        } else {
            &self.pair.source
        };
        d.labels.as_ref().map(|l| l[i]).unwrap_or(0)
    }

    fn make_batch(
        &self,
        pool_idx: &[usize],
        target_batch: Option<Vec<usize>>,
    ) -> candle_core::Result<TrainBatch> {
        let members: Vec<(bool, usize)> = pool_idx.iter().map(|&p| self.pool[p]).collect();
        let src: Vec<usize> = members.iter().filter(|m| !m.0).map(|m| m.1).collect();
        let tgt: Vec<usize> = members.iter().filter(|m| m.0).map(|m| m.1).collect();
        let x = match (src.is_empty(), tgt.is_empty()) {
            (false, true) => self.gather(false, &src)?,
            (true, false) => self.gather(true, &tgt)?,
            _ => Tensor::cat(&[self.gather(false, &src)?, self.gather(true, &tgt)?], 0)?,
        };
        let ordered: Vec<(bool, usize)> = src
            .iter()
            .map(|&i| (false, i))
            .chain(tgt.iter().map(|&i| (true, i)))
            .collect();
        let y: Vec<u32> = ordered.iter().map(|&(t, i)| self.label_of(t, i)).collect();
        let n = y.len();
        Ok(TrainBatch {
            x,
            y: Tensor::from_vec(y, n, self.device())?,
            from_target: ordered.iter().map(|m| m.0).collect(),
            sample_ids: ordered.iter().map(|m| m.1).collect(),
            target_x: match &target_batch {
                Some(b) => Some(self.gather(true, b)?),
                None => None,
            },
            target_ids: target_batch.unwrap_or_default(),
        })
    }

    /// Samples of one domain through the network in eval mode, in chunks.
    fn forward_rows(&self, target: bool, ids: &[usize]) -> candle_core::Result<Forward> {
        let mut parts: Vec<Forward> = Vec::new();
        for chunk in ids.chunks(256) {
            parts.push(self.net.forward_t(&self.gather(target, chunk)?, false)?);
        }
        concat_rows(&parts)
    }

    /// The unlabeled target stream through the network in eval mode, for a method that
    /// labels it itself.
    fn target_pass(&self) -> candle_core::Result<TargetPass> {
        // In file-name order: a method's sums over the target (centroids, a graph) then
        // cannot depend, even by rounding, on the class folders the files sit in.
        let ids = target_stream_order(&self.pair, &self.split);
        let out = self.forward_rows(true, &ids)?;
        let labelled = if self.method.needs_labelled_pass() {
            Some(self.labelled_pass()?)
        } else {
            None
        };
        Ok(TargetPass { ids, out, labelled })
    }

    /// Up to [`MAX_LABELLED`] images of the labelled pool (evenly spaced over it, source
    /// first) through the network in eval mode, with their labels.
    fn labelled_pass(&self) -> candle_core::Result<LabelledPass> {
        let step = self.pool.len().div_ceil(MAX_LABELLED).max(1);
        let members: Vec<(bool, usize)> = self.pool.iter().copied().step_by(step).collect();
        let mut labels = Vec::with_capacity(members.len());
        let mut all_ids = Vec::with_capacity(members.len());
        let mut parts = Vec::new();
        for target in [false, true] {
            let ids: Vec<usize> = members
                .iter()
                .filter(|m| m.0 == target)
                .map(|m| m.1)
                .collect();
            if !ids.is_empty() {
                labels.extend(ids.iter().map(|&i| self.label_of(target, i)));
                parts.push(self.forward_rows(target, &ids)?);
                all_ids.extend(ids.iter().map(|&i| (target, i)));
            }
        }
        Ok(LabelledPass {
            labels,
            ids: all_ids,
            out: concat_rows(&parts)?,
        })
    }

    /// The label-free estimates of the trained network on the target (see
    /// [`crate::analysis::label_free`]), from the target's eval-mode pass `target` (every
    /// target image, probabilities `probs`) and the held-out source.
    fn label_free(&self, target: &Forward, probs: &[Vec<f32>]) -> anyhow::Result<LabelFree> {
        use crate::analysis::label_free::{HeldOutSource, estimate};
        let features = |t: &Tensor| -> anyhow::Result<Features> {
            let (n, d) = t.dims2()?;
            Ok(Features::new(t.flatten_all()?.to_vec1::<f32>()?, n, d)?)
        };
        // In file-name order, so that nothing (not even rounding) depends on the class
        // folders the target's files sit in.
        let order = by_file_name(&self.pair, (0..probs.len()).collect());
        let probs: Vec<Vec<f32>> = order.iter().map(|&i| probs[i].clone()).collect();
        let order = Tensor::from_vec(
            order.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            order.len(),
            target.features.device(),
        )?;
        let target_features = features(&target.features.index_select(&order, 0)?)?;
        let val = &self.split.source_val;
        let source = match &self.pair.source.labels {
            Some(labels) if val.len() >= 2 => {
                let out = self.forward_rows(false, val)?;
                let probs = candle_nn::ops::softmax(&out.logits, D::Minus1)?.to_vec2::<f32>()?;
                let correct: Vec<bool> = val
                    .iter()
                    .zip(&probs)
                    .map(|(&i, p)| labels[i] == top_class(p).0)
                    .collect();
                Some((features(&out.features)?, probs, correct))
            }
            _ => None,
        };
        let held_out = source
            .as_ref()
            .map(|(features, probs, correct)| HeldOutSource {
                features,
                probs,
                correct,
            });
        Ok(estimate(
            &probs,
            &target_features,
            held_out,
            self.config.seed,
        )?)
    }

    /// The share of the method's pseudo-labels that are right, when the target has labels
    /// (for display: the method never sees them).
    fn pseudo_accuracy(&self) -> Option<f64> {
        let labels = self.pair.target.labels.as_ref()?;
        let pseudo = self.method.pseudo_labels()?;
        let right = pseudo.iter().filter(|&&(i, l)| labels[i] == l).count();
        Some(right as f64 / pseudo.len().max(1) as f64)
    }

    /// Predicted class and confidence for samples of one domain, in eval mode.
    pub fn predict(&self, target: bool, idx: &[usize]) -> candle_core::Result<Vec<(u32, f32)>> {
        let mut out = Vec::with_capacity(idx.len());
        for chunk in idx.chunks(256) {
            let x = self.gather(target, chunk)?;
            let logits = self.net.forward_t(&x, false)?.logits;
            let probs = candle_nn::ops::softmax(&logits, D::Minus1)?;
            let pred: Vec<u32> = probs.argmax(D::Minus1)?.to_vec1()?;
            let conf: Vec<f32> = probs.max(D::Minus1)?.to_vec1()?;
            out.extend(pred.into_iter().zip(conf));
        }
        Ok(out)
    }

    fn accuracy(&self, target: bool, idx: &[usize]) -> candle_core::Result<Option<f64>> {
        if idx.is_empty() {
            return Ok(None);
        }
        let d = if target {
            &self.pair.target
        } else {
            &self.pair.source
        };
        let Some(labels) = &d.labels else {
            return Ok(None);
        };
        let preds = self.predict(target, idx)?;
        let correct = preds
            .iter()
            .zip(idx)
            .filter(|((p, _), i)| *p == labels[**i])
            .count();
        Ok(Some(correct as f64 / idx.len() as f64))
    }

    fn data_report(&self) -> DataReport {
        DataReport {
            source: self.config.data.describe(),
            classes: self.pair.classes.clone(),
            source_train: self.split.source_train.len(),
            source_val: self.split.source_val.len(),
            target_train: self.split.target_train.len(),
            target_eval: self.split.target_eval.len(),
            target_total: self.pair.target.len(),
            target_labelled: self.pair.target_labelled(),
            skipped_files: self.pair.source.skipped.len() + self.pair.target.skipped.len(),
            sample_shape: self.pair.source.shape.describe(),
        }
    }

    fn save(&self) -> Result<(), RunError> {
        if let Some(path) = &self.config.save {
            save_checkpoint(
                &self.net,
                &self.pair.classes,
                Some(format!(
                    "{} on {}",
                    self.config.method.name(),
                    self.config.data.describe()
                )),
                path,
            )?;
        }
        Ok(())
    }

    /// Train for the configured epochs (or until stopped), reporting as it goes.
    pub fn run(
        &mut self,
        sink: &mut dyn EventSink,
        control: &mut dyn Control,
    ) -> Result<RunReport, RunError> {
        // The allocator tuning helps the CPU kernels; a GPU run's host side needs none.
        if self.device().is_cpu() {
            crate::model::ops::tune_allocator();
        }
        let report = self.train(sink, control);
        // The frozen-stage cache belongs to this run: later passes take raw inputs again.
        self.stage_cache = None;
        self.net.set_input_stage(0);
        report
    }

    fn train(
        &mut self,
        sink: &mut dyn EventSink,
        control: &mut dyn Control,
    ) -> Result<RunReport, RunError> {
        let started = Instant::now();
        self.selection_scores.clear();
        self.best_weights = None;
        let plan = LoopPlan {
            epochs: self.config.epochs,
            batch_size: self.config.batch_size,
            seed: self.config.seed,
            pool: self.pool.len(),
            network: NetworkSummary::of(&self.net, self.config.freeze, self.device_label.clone()),
            warnings: self.warnings.clone(),
            metrics: Metric::standard()
                .into_iter()
                .chain(self.config.method.info().metrics.iter().cloned())
                .collect(),
        };
        let mut step = TransferStep {
            opt: Optimiser::new(&self.net, self.config.learning_rate)?,
            target_batcher: Batcher::new(
                target_stream_order(&self.pair, &self.split),
                self.config.batch_size,
                self.config.seed,
                "target-batches",
            ),
            uses_target: self.config.method.uses_unlabeled_target(),
            exp: self,
        };
        let outcome = train_epochs(&plan, &mut step, sink, control)?;
        let selection = self.restore_selected(&outcome).map_err(setup)?;
        if self.method.labels_target() && !self.split.target_unlabeled.is_empty() {
            let fail = in_epoch(outcome.history.len());
            let pass = self.target_pass().map_err(&fail)?;
            self.method.end_run(&pass).map_err(&fail)?;
        }
        if self.config.method.labelled_data() == LabelledData::None {
            // No class was learnt: no predictions, no confusion, no estimate of accuracy.
            return Ok(self.report(outcome, started));
        }
        let all_target: Vec<usize> = (0..self.pair.target.len()).collect();
        let fail = in_epoch(outcome.history.len());
        let target_out = self.forward_rows(true, &all_target).map_err(&fail)?;
        let probs = candle_nn::ops::softmax(&target_out.logits, D::Minus1)
            .and_then(|p| p.to_vec2::<f32>())
            .map_err(&fail)?;
        let preds: Vec<(u32, f32)> = probs.iter().map(|p| top_class(p)).collect();
        // An estimate that cannot be made (features all constant) is left out, not fatal.
        let label_free = self.label_free(&target_out, &probs).ok();
        let predictions: Vec<Prediction> = preds
            .iter()
            .enumerate()
            .map(|(i, &(p, c))| Prediction {
                index: i,
                file: self.pair.target.files[i].clone(),
                predicted: p,
                confidence: c,
                label: self.pair.target.labels.as_ref().map(|l| l[i]),
            })
            .collect();
        let confusion = self.pair.target.labels.as_ref().map(|labels| {
            let k = self.pair.classes.len();
            let mut m = vec![vec![0u32; k]; k];
            for &i in &self.split.target_eval {
                m[labels[i] as usize][preds[i].0 as usize] += 1;
            }
            m
        });
        let mut report = self.report(outcome, started);
        if let Some(sel) = &selection
            && let Some(kept) = report.history.get(sel.chosen_epoch - 1)
        {
            report.final_metrics.source_accuracy = kept.source_accuracy;
            report.final_metrics.target_accuracy = kept.target_accuracy;
            report.final_metrics.train_loss = Some(kept.train_loss);
        }
        report.selection = selection;
        report.final_metrics.label_free = label_free;
        report.confusion = confusion;
        report.predictions = predictions;
        Ok(report)
    }

    /// With `--select-by`: score the epoch that just ended and keep a copy of its weights
    /// when it is the best so far.
    fn score_epoch(&mut self, source_accuracy: Option<f64>) -> candle_core::Result<()> {
        let Some(criterion) = self.config.select_by else {
            return Ok(());
        };
        let estimates = if criterion.needs_estimates() {
            let all: Vec<usize> = (0..self.pair.target.len()).collect();
            let out = self.forward_rows(true, &all)?;
            let probs = candle_nn::ops::softmax(&out.logits, D::Minus1)?.to_vec2::<f32>()?;
            self.label_free(&out, &probs).ok()
        } else {
            None
        };
        let score = criterion.score(source_accuracy, estimates.as_ref());
        self.selection_scores.push(score);
        if let Some(s) = score
            && self.best_weights.as_ref().is_none_or(|(best, _)| s > *best)
        {
            let data = self.net.varmap.data().lock().expect("var map lock");
            let copy = data
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            self.best_weights = Some((s, copy));
        }
        Ok(())
    }

    /// With `--select-by`: put the kept epoch's weights back (and save them where the run
    /// saves), and say which epoch was kept and what the oracle would have kept.
    fn restore_selected(
        &mut self,
        outcome: &LoopOutcome,
    ) -> Result<Option<crate::train::selection::Selection>, String> {
        let Some(criterion) = self.config.select_by else {
            return Ok(None);
        };
        let target: Vec<Option<f64>> = outcome.history.iter().map(|r| r.target_accuracy).collect();
        let scores = std::mem::take(&mut self.selection_scores);
        let Some(selection) =
            crate::train::selection::Selection::choose(criterion, scores, &target)
        else {
            return Ok(None);
        };
        if let Some((_, weights)) = self.best_weights.take() {
            let data = self.net.varmap.data().lock().expect("var map lock");
            for (name, value) in weights {
                if let Some(var) = data.get(&name) {
                    var.set(&value).map_err(|e| e.to_string())?;
                }
            }
        }
        self.save().map_err(|e| e.to_string())?;
        Ok(Some(selection))
    }

    /// When the loss exploded or became NaN: which of the method's own terms did it (the
    /// largest in size, a non-finite one first), from its figures of the epoch so far, as
    /// "; the … term was …"; the cross-entropy when the method adds none.
    fn blame_term(&mut self) -> String {
        let metrics = self.config.method.info().metrics;
        let terms: Vec<(String, f64)> = self
            .method
            .epoch_metrics()
            .into_iter()
            .filter(|(k, _)| {
                metrics
                    .iter()
                    .find(|m| m.key == k.as_str())
                    .is_none_or(|m| m.unit != crate::metric::Unit::Fraction)
            })
            .collect();
        let size = |v: f64| {
            if v.is_finite() {
                v.abs()
            } else {
                f64::INFINITY
            }
        };
        let Some((key, value)) = terms
            .into_iter()
            .max_by(|a, b| size(a.1).total_cmp(&size(b.1)))
        else {
            return format!(
                "; {} adds no term of its own: the cross-entropy itself grew",
                self.config.method.name()
            );
        };
        let label = crate::metric::describe(metrics, &key).label;
        let weight = match self.config.method.default_lambda() {
            Some(_) => format!(
                ", weighted by λ = {}",
                self.config
                    .lambda
                    .or(self.config.method.default_lambda())
                    .unwrap_or(1.0)
            ),
            None => String::new(),
        };
        format!(
            "; of {}'s own terms the {label} was the largest ({value:.3e} on average this epoch{weight})",
            self.config.method.name()
        )
    }

    /// The report's parts every run fills the same way.
    fn report(&self, outcome: LoopOutcome, started: Instant) -> RunReport {
        let mut report = RunReport::base(
            &self.config,
            &self.net,
            self.device_label.clone(),
            self.warnings.clone(),
            outcome,
            started.elapsed().as_secs_f64(),
        );
        report.data = self.data_report();
        report.init = self.init_report.clone();
        report.extra = self.method.report_extra().map(RunExtra::Method);
        report
    }
}

/// A transfer experiment's part of the shared loop: a labelled batch from the pool (and an
/// unlabeled target batch for the adaptation methods) through the method's loss.
struct TransferStep<'a> {
    exp: &'a mut Experiment,
    opt: Optimiser,
    target_batcher: Batcher,
    uses_target: bool,
}

impl TrainStep for TransferStep<'_> {
    fn before_training(&mut self) -> Result<(), RunError> {
        self.exp.cache_frozen_stages().map_err(setup)
    }

    fn begin_epoch(&mut self, epoch: usize) -> Result<(), RunError> {
        if !self.exp.method.labels_target() || self.exp.split.target_unlabeled.is_empty() {
            return Ok(());
        }
        let fail = in_epoch(epoch);
        let pass = self.exp.target_pass().map_err(&fail)?;
        self.exp.method.begin_epoch(&pass).map_err(&fail)
    }

    fn step(&mut self, batch: &[usize], at: StepAt) -> Result<f64, RunError> {
        let fail = in_epoch(at.epoch);
        let target_batch = self.uses_target.then(|| self.target_batcher.next_cycling());
        let batch = self.exp.make_batch(batch, target_batch).map_err(&fail)?;
        let exp = &mut *self.exp;
        let loss = exp
            .method
            .step_loss(&exp.net, &batch, at.progress)
            .map_err(&fail)?;
        self.opt
            .set_lr_scale(exp.config.method.lr_scale(at.progress));
        self.opt.step(&loss, at.epoch).map_err(|e| match e {
            RunError::Exploded {
                epoch,
                value,
                first,
                ..
            } => RunError::Exploded {
                epoch,
                value,
                first,
                term: exp.blame_term(),
            },
            RunError::NonFinite { epoch, value, .. } => RunError::NonFinite {
                epoch,
                value,
                term: exp.blame_term(),
            },
            e => e,
        })
    }

    fn end_epoch(&mut self, epoch: usize) -> Result<EpochFigures, RunError> {
        let fail = in_epoch(epoch);
        let exp = &mut *self.exp;
        // A method that reads no label has an untrained class head: no class accuracy.
        let classes = exp.config.method.labelled_data() != LabelledData::None;
        let mut figures = EpochFigures {
            source_accuracy: match classes {
                true => exp.accuracy(false, &exp.split.source_val).map_err(&fail)?,
                false => None,
            },
            target_accuracy: match classes {
                true => exp.accuracy(true, &exp.split.target_eval).map_err(&fail)?,
                false => None,
            },
            metrics: exp.method.epoch_metrics().into_iter().collect(),
            tasks: Vec::new(),
        };
        if let Some(acc) = exp.pseudo_accuracy() {
            figures.metrics.insert(PSEUDO_ACCURACY.to_string(), acc);
        }
        exp.score_epoch(figures.source_accuracy).map_err(&fail)?;
        exp.save()?;
        Ok(figures)
    }
}

/// Network outputs of several row blocks, one under the other.
fn concat_rows(parts: &[Forward]) -> candle_core::Result<Forward> {
    let cat =
        |f: &dyn Fn(&Forward) -> &Tensor| Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0);
    Ok(Forward {
        backbone_features: cat(&|f| &f.backbone_features)?,
        features: cat(&|f| &f.features)?,
        logits: cat(&|f| &f.logits)?,
    })
}

/// The unlabeled target stream's base order: by file name, not by class folder, so that
/// the labels of an unlabeled target cannot influence training in any way.
fn target_stream_order(pair: &DomainPair, split: &Split) -> Vec<usize> {
    by_file_name(pair, split.target_unlabeled.clone())
}

/// Target indices `idx` ordered by file name (not by class folder).
fn by_file_name(pair: &DomainPair, mut idx: Vec<usize>) -> Vec<usize> {
    let base = |i: usize| {
        let f = &pair.target.files[i];
        f.rsplit(['/', '\\']).next().unwrap_or(f).to_string()
    };
    idx.sort_by_cached_key(|&i| (base(i), i));
    idx
}
