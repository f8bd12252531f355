//! A prepared run: validated settings, split data on the device, the network and the
//! method. `Experiment::new` checks everything that can be checked before training, so bad
//! settings fail in milliseconds with a clear message; `run` trains, evaluates every epoch
//! and reports through an [`EventSink`], checking its [`Control`] every batch.

use super::config::ExperimentConfig;
use super::events::{
    DataReport, EpochRecord, Event, EventSink, FinalMetrics, Prediction, RunReport,
};
use crate::data::{Batcher, DataError, DomainPair, Split, split_indices};
use crate::device::{device_name, open_device};
use crate::method::{LabelledData, Method, MethodKind, MethodSettings, TrainBatch, build_method};
use crate::model::checkpoint::ModelError;
use crate::model::ops::FusedAdamW;
use crate::model::{
    BackboneKind, InitReport, ModelMeta, Network, NetworkSpec, Normalisation, load_init, read_meta,
    save_checkpoint,
};
use candle_core::{D, Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW};
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
    #[error("{0}")]
    Invalid(String),
    #[error("could not set up the run: {0}")]
    Setup(String),
    #[error(
        "training diverged in epoch {epoch}: the loss became {value} (try a smaller learning rate)"
    )]
    NonFinite { epoch: usize, value: f64 },
    #[error("training failed in epoch {epoch}: {message}")]
    Training { epoch: usize, message: String },
}

impl RunError {
    /// The epoch the error happened in, if training had started.
    pub fn epoch(&self) -> Option<usize> {
        match self {
            RunError::NonFinite { epoch, .. } | RunError::Training { epoch, .. } => Some(*epoch),
            _ => None,
        }
    }
}

fn setup<E: std::fmt::Display>(e: E) -> RunError {
    RunError::Setup(e.to_string())
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
}

/// Check the settings that do not depend on the data.
pub fn validate_config(config: &ExperimentConfig) -> Result<(), RunError> {
    let bad = |m: String| Err(RunError::Invalid(m));
    if config.epochs == 0 {
        return bad("--epochs must be at least 1".into());
    }
    if config.batch_size == 0 {
        return bad("--batch-size must be at least 1".into());
    }
    if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
        return bad(format!(
            "--lr must be a positive number, got {}",
            config.learning_rate
        ));
    }
    if !(0.0..0.95).contains(&config.val_fraction) {
        return bad(format!(
            "--val-fraction must be in [0, 0.95), got {}",
            config.val_fraction
        ));
    }
    if let Some(l) = config.lambda
        && !(l.is_finite() && l > 0.0)
    {
        return bad(format!("--lambda must be a positive number, got {l}"));
    }
    if config.method == MethodKind::TargetOnly && config.target_labels == 0 {
        return bad(
            "target-only trains on labelled target images: pass --target-labels K (K ≥ 1)".into(),
        );
    }
    Ok(())
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
    shape: crate::data::SampleShape,
) -> Result<BackboneKind, RunError> {
    let backbone = match (meta, asked) {
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
    if let Some(m) = meta
        && m.input != shape
    {
        return Err(RunError::Invalid(format!(
            "the --init model expects {} input but the data was loaded as {}",
            m.input.describe(),
            shape.describe()
        )));
    }
    Ok(backbone)
}

impl Experiment {
    /// Validate `config` against `pair` and prepare the network, method and data.
    pub fn new(config: ExperimentConfig, pair: Arc<DomainPair>) -> Result<Self, RunError> {
        validate_config(&config)?;
        if config.method.is_task_method() {
            return Err(RunError::Invalid(format!(
                "{} learns across tasks, not from a source to a target domain: run it with train::run_job",
                config.method.name()
            )));
        }
        let mut warnings = pair.warnings.clone();
        if config.target_labels > 0 && !pair.target_labelled() {
            return Err(RunError::Invalid(
                "--target-labels needs a labelled target folder (one subfolder per class)".into(),
            ));
        }
        let shape = pair.source.shape;
        let meta = init_meta(&config)?;
        let backbone = resolve_backbone(meta.as_ref(), config.backbone, shape)?;
        let (split, split_warnings) = split_indices(
            &pair,
            config.val_fraction,
            config.target_labels,
            config.seed,
        );
        warnings.extend(split_warnings);
        let pool: Vec<(bool, usize)> = match config.method.labelled_data() {
            LabelledData::Source => split.source_train.iter().map(|&i| (false, i)).collect(),
            LabelledData::Target => split.target_train.iter().map(|&i| (true, i)).collect(),
            LabelledData::SourceAndTarget => split
                .source_train
                .iter()
                .map(|&i| (false, i))
                .chain(split.target_train.iter().map(|&i| (true, i)))
                .collect(),
        };
        if pool.is_empty() {
            return Err(RunError::Invalid(format!(
                "{} has no labelled images to train on",
                config.method.name()
            )));
        }
        if config.method.uses_unlabeled_target() && pair.target.len() < config.batch_size.max(2) {
            return Err(RunError::Invalid(format!(
                "{} adapts to batches of {} target images, but the target has only {}: add target images or lower --batch-size",
                config.method.name(),
                config.batch_size.max(2),
                pair.target.len()
            )));
        }
        let normalisation = match &meta {
            Some(m) => m.normalisation.clone(),
            // target-only never sees the source: take the statistics of what it trains on.
            None if config.method.labelled_data() == LabelledData::Target => {
                Normalisation::from_data(&pair.target.subset(&split.target_train).x, shape)
            }
            None => {
                let train_source = pair.source.subset(&split.source_train);
                let data = if train_source.is_empty() {
                    &pair.source
                } else {
                    &train_source
                };
                Normalisation::from_data(&data.x, shape)
            }
        };
        let (device, note) = open_device(config.device);
        if let Some(note) = note {
            warnings.push(note);
        }
        let spec = NetworkSpec {
            backbone,
            input: shape,
            num_classes: pair.classes.len(),
            // --bottleneck 0 turns the adaptation layer off; an --init model keeps its own.
            bottleneck: match config.bottleneck {
                Some(0) => None,
                Some(w) => Some(w),
                None => config
                    .method
                    .bottleneck()
                    .or(meta.as_ref().and_then(|m| m.bottleneck)),
            },
        };
        let mut net = Network::new(spec, normalisation, &device, config.seed).map_err(setup)?;
        let n_stages = net.stages().len();
        if config.freeze > n_stages {
            return Err(RunError::Invalid(format!(
                "--freeze {} is more than the {} stages of {} ({}); {} freezes every stage (a linear probe)",
                config.freeze,
                n_stages,
                backbone.name(),
                net.stages()
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                n_stages
            )));
        }
        net.set_freeze(config.freeze);
        let init_report = match (&config.init, &meta) {
            (Some(path), Some(m)) => {
                let report = load_init(&net, path, m.class_names == pair.classes)?;
                if report.new_head {
                    warnings.push(format!(
                        "the --init model was trained on other classes ({}): its backbone is reused with a new head",
                        m.class_names.join(", ")
                    ));
                }
                Some(report)
            }
            _ => None,
        };
        let settings = MethodSettings {
            lambda: config
                .lambda
                .or(config.method.default_lambda())
                .unwrap_or(1.0),
            total_steps: config.epochs * pool.len().div_ceil(config.batch_size),
            seed: config.seed,
            source_files: pair.source.files.clone(),
        };
        let method = build_method(config.method, &settings, &net).map_err(setup)?;
        let to_tensor = |d: &crate::data::Domain| {
            Tensor::from_slice(&d.x, d.shape.batch_dims(d.len()).as_slice(), &device).map_err(setup)
        };
        let source_x = to_tensor(&pair.source)?;
        let target_x = to_tensor(&pair.target)?;
        Ok(Self {
            device_label: device_name(&device).to_string(),
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
            target_x: match target_batch {
                Some(b) => Some(self.gather(true, &b)?),
                None => None,
            },
        })
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
        let vars: Vec<candle_core::Var> = self
            .net
            .trainable_vars()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let (trainable_params, total_params) = self.net.param_counts(self.config.freeze);
        let mut opt = FusedAdamW::new(
            vars,
            ParamsAdamW {
                lr: self.config.learning_rate,
                ..Default::default()
            },
        )
        .map_err(setup)?;
        let batches = self.batches_per_epoch();
        sink.emit(Event::Started {
            epochs: self.config.epochs,
            batches_per_epoch: batches,
            trainable_params,
            total_params,
            device: self.device_label.clone(),
            warnings: self.warnings.clone(),
        });
        self.cache_frozen_stages().map_err(setup)?;
        let seed = self.config.seed;
        let mut batcher = Batcher::new(
            (0..self.pool.len()).collect(),
            self.config.batch_size,
            seed,
            "batches",
        );
        let uses_target = self.config.method.uses_unlabeled_target();
        let mut target_batcher = Batcher::new(
            target_stream_order(&self.pair, &self.split),
            self.config.batch_size,
            seed,
            "target-batches",
        );
        let total_steps = (self.config.epochs * batches).max(1);
        let mut history: Vec<EpochRecord> = Vec::new();
        let mut stopped_early = false;
        let mut step = 0usize;
        let mut last_emit = Instant::now();
        'epochs: for epoch in 1..=self.config.epochs {
            let fail = |e: candle_core::Error| RunError::Training {
                epoch,
                message: e.to_string(),
            };
            let epoch_start = Instant::now();
            batcher.reshuffle();
            let (mut loss_sum, mut loss_n, mut images) = (0f64, 0usize, 0usize);
            let mut b = 0;
            while let Some(idx) = batcher.next_batch() {
                if control.check(sink) == Flow::Stop {
                    stopped_early = true;
                    break 'epochs;
                }
                let tb = if uses_target {
                    Some(target_batcher.next_cycling())
                } else {
                    None
                };
                let batch = self.make_batch(&idx, tb).map_err(fail)?;
                let progress = step as f64 / total_steps as f64;
                let loss = self
                    .method
                    .step_loss(&self.net, &batch, progress)
                    .map_err(fail)?;
                let value = loss.to_scalar::<f32>().map_err(fail)? as f64;
                if !value.is_finite() {
                    return Err(RunError::NonFinite { epoch, value });
                }
                opt.set_learning_rate(self.config.learning_rate * self.method.lr_scale(progress));
                opt.backward_step(&loss).map_err(fail)?;
                loss_sum += value;
                loss_n += 1;
                images += idx.len();
                b += 1;
                step += 1;
                if last_emit.elapsed().as_millis() >= 100 || b == batches {
                    last_emit = Instant::now();
                    let secs = epoch_start.elapsed().as_secs_f64().max(1e-9);
                    let per_batch = secs / b as f64;
                    sink.emit(Event::BatchFinished {
                        epoch,
                        batch: b,
                        batches,
                        loss: value,
                        images_per_sec: images as f64 / secs,
                        eta_secs: per_batch * (total_steps - step) as f64,
                    });
                }
            }
            let train_secs = epoch_start.elapsed().as_secs_f64();
            let source_accuracy = self.accuracy(false, &self.split.source_val).map_err(fail)?;
            let target_accuracy = self.accuracy(true, &self.split.target_eval).map_err(fail)?;
            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / loss_n.max(1) as f64,
                source_accuracy,
                target_accuracy,
                seconds: epoch_start.elapsed().as_secs_f64(),
                images_per_sec: images as f64 / train_secs.max(1e-9),
                metrics: self.method.epoch_metrics().into_iter().collect(),
            };
            // The file on disk always holds the last completed epoch, before anyone hears
            // the epoch has ended.
            self.save()?;
            sink.emit(Event::EpochFinished(record.clone()));
            history.push(record);
        }
        let all_target: Vec<usize> = (0..self.pair.target.len()).collect();
        let preds = self
            .predict(true, &all_target)
            .map_err(|e| RunError::Training {
                epoch: history.len(),
                message: e.to_string(),
            })?;
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
        let report = RunReport {
            method: self.config.method.name().into(),
            backbone: self.net.spec.backbone.name().into(),
            freeze: self.config.freeze,
            stages: self.net.stages().iter().map(|s| s.name.clone()).collect(),
            seed,
            device: self.device_label.clone(),
            trainable_params,
            total_params,
            data: self.data_report(),
            final_metrics: FinalMetrics::of(&history),
            history,
            confusion,
            stopped_early,
            elapsed_secs: started.elapsed().as_secs_f64(),
            init: self.init_report.clone(),
            warnings: self.warnings.clone(),
            extra: self.method.report_extra(),
            config: self.config.clone(),
            predictions,
        };
        Ok(report)
    }
}

/// The unlabeled target stream's base order: by file name, not by class folder, so that
/// the labels of an unlabeled target cannot influence training in any way.
fn target_stream_order(pair: &DomainPair, split: &Split) -> Vec<usize> {
    let mut idx = split.target_unlabeled.clone();
    let base = |i: usize| {
        let f = &pair.target.files[i];
        f.rsplit(['/', '\\']).next().unwrap_or(f).to_string()
    };
    idx.sort_by_cached_key(|&i| (base(i), i));
    idx
}
