//! Runs: every training run of the session, the worker of the one in progress, and the
//! live feature map recomputed after each epoch. Worker events are drained here under a
//! time budget so a flood of them cannot freeze a frame.
//!
//! Every run saves its model to a temporary checkpoint after each epoch (the engine's
//! `save` setting); the app reads it back for the live map and copies it on export.

use super::feature_map::{FeatureMap, Layer, MapRequest, ModelSource, compute_map};
use super::jobs::Job;
use crate::data::{DomainPair, SampleShape};
use crate::model::BackboneKind;
use crate::run::Worker;
use crate::train::events::{BatchProgress, NetworkSummary};
use crate::train::results::{Metric, Phase, describe};
use crate::train::{Command, EpochRecord, Event, ExperimentConfig, RunReport};
use egui_plot::PlotPoint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest time spent draining worker events in one frame.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(3);
/// Batch losses kept per run before older ones are thinned out.
const MAX_BATCH_POINTS: usize = 4000;

/// Where a run is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    Starting,
    Training,
    Paused,
    Finished,
    Stopped,
    Failed(String),
}

impl RunStatus {
    /// Short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            RunStatus::Starting => "starting",
            RunStatus::Training => "training",
            RunStatus::Paused => "paused",
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed(_) => "failed",
        }
    }

    /// True until the worker has ended.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            RunStatus::Starting | RunStatus::Training | RunStatus::Paused
        )
    }
}

/// The kinds of run the views draw differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// One source, one target.
    Transfer,
    Multitask,
    ZeroShot,
    SteppingStones,
}

impl RunKind {
    /// The kind of run `config` starts.
    pub fn of(config: &ExperimentConfig) -> Self {
        match config.method {
            crate::method::MethodKind::Multitask => RunKind::Multitask,
            crate::method::MethodKind::ZeroShot => RunKind::ZeroShot,
            _ if config.stepping_stones || !config.via.is_empty() => RunKind::SteppingStones,
            _ => RunKind::Transfer,
        }
    }
}

/// Where a run's weights started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartPoint {
    /// Random weights.
    #[default]
    Fresh,
    /// The backbone's shipped ImageNet weights.
    Imagenet,
    /// The model of an earlier run (by id): the run continued that run's training.
    Run(usize),
    /// A model file (its name).
    File(String),
}

impl StartPoint {
    /// For tables: "fresh", "ImageNet", "from run #2", "from model.safetensors".
    pub fn words(&self) -> String {
        match self {
            StartPoint::Fresh => "fresh".into(),
            StartPoint::Imagenet => "ImageNet".into(),
            StartPoint::Run(id) => format!("from run #{id}"),
            StartPoint::File(name) => format!("from {name}"),
        }
    }
}

/// What a run is, fixed when it starts (the backbone confirmed by its report): what the
/// Compare view shows of it and compares runs by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunFacts {
    /// Short name of its data pair: the demo's name, or "photos to sketches" (the folders' names).
    pub data: String,
    /// Its input as loaded: "28×28 gray", "2-D points"; empty for runs that load their own data.
    pub input: String,
    /// Backbone name ("small-cnn"); empty until known.
    pub backbone: String,
    pub start: StartPoint,
}

impl RunFacts {
    /// The facts of a run of `config` on `pair` (None: it loads its own data), given the
    /// runs before it (whose models it may start from).
    pub fn of(config: &ExperimentConfig, pair: Option<&DomainPair>, earlier: &[RunRecord]) -> Self {
        let shape = pair.map(|p| p.source.shape);
        let meta = config
            .init
            .as_deref()
            .and_then(|p| crate::model::checkpoint::read_meta(p).ok());
        let backbone = meta
            .as_ref()
            .map(|m| m.backbone)
            .or(config.backbone)
            .or(shape.map(BackboneKind::default_for));
        let start = match &config.init {
            Some(init) => match earlier.iter().find(|r| &r.checkpoint == init) {
                Some(r) => StartPoint::Run(r.id),
                None => StartPoint::File(
                    init.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| init.display().to_string()),
                ),
            },
            None if backbone.is_some_and(BackboneKind::is_pretrained) => StartPoint::Imagenet,
            None => StartPoint::Fresh,
        };
        RunFacts {
            data: data_name(&config.data),
            input: shape.map(input_words).unwrap_or_default(),
            backbone: backbone.map(|b| b.name().to_string()).unwrap_or_default(),
            start,
        }
    }
}

/// A data source's short name: a demo's name, a folder's last component.
pub fn data_name(data: &crate::train::DataSource) -> String {
    use crate::train::DataSource;
    let last = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    match data {
        DataSource::Demo { name } => name.clone(),
        DataSource::Folders { source, target } => format!("{} to {}", last(source), last(target)),
        DataSource::Folder { folder } => last(folder),
    }
}

/// An input shape in words: "28×28 gray", "32×32 colour", "2-D points".
pub fn input_words(shape: SampleShape) -> String {
    match shape {
        SampleShape::Image {
            channels,
            height,
            width,
        } => {
            let colour = match channels {
                1 => "gray".to_string(),
                3 => "colour".to_string(),
                c => format!("{c} channels"),
            };
            format!("{height}×{width} {colour}")
        }
        SampleShape::Vector { dim } => format!("{dim}-D points"),
    }
}

/// One run of the session (or of an earlier one).
pub struct RunRecord {
    /// 1-based, in start order.
    pub id: usize,
    pub config: ExperimentConfig,
    /// The domains it trained on; None for the across-task methods, which load their own.
    pub pair: Option<Arc<DomainPair>>,
    pub pair_id: u64,
    /// Epochs the run will report in all (a stepping-stone run: every hop and the direct run).
    pub total_epochs: usize,
    pub status: RunStatus,
    pub history: Vec<EpochRecord>,
    /// (epoch + fraction, loss) per progress report.
    pub batch_losses: Vec<PlotPoint>,
    pub progress: Option<BatchProgress>,
    /// While the run prepares: what it is doing (e.g. a teacher's pass), done of total.
    pub preparing: Option<(String, usize, usize)>,
    /// Device and parameter counts (from `Started`).
    pub network: NetworkSummary,
    pub warnings: Vec<String>,
    /// What each figure in `history` is (from `Started`).
    pub metrics: Vec<Metric>,
    pub report: Option<Box<RunReport>>,
    /// The model after the last completed epoch.
    pub checkpoint: PathBuf,
    /// Feature maps after each epoch (epoch, map).
    pub maps: Vec<(usize, FeatureMap)>,
    pub started: Instant,
    pub elapsed_secs: f64,
    /// Its data, input, backbone and starting point.
    pub facts: RunFacts,
    /// True for a run read back from the runs folder: it has no model or images any more.
    pub earlier_session: bool,
    /// Where the run was saved to be read back next session, once it ended.
    pub saved_file: Option<PathBuf>,
}

impl RunRecord {
    /// A run that is starting: no epochs, no report yet, its facts to be filled in.
    pub fn new(
        id: usize,
        config: ExperimentConfig,
        pair: Option<Arc<DomainPair>>,
        pair_id: u64,
        checkpoint: PathBuf,
    ) -> Self {
        RunRecord {
            id,
            total_epochs: config.epochs,
            config,
            pair,
            pair_id,
            status: RunStatus::Starting,
            history: Vec::new(),
            batch_losses: Vec::new(),
            progress: None,
            preparing: None,
            network: NetworkSummary::default(),
            warnings: Vec::new(),
            metrics: Vec::new(),
            report: None,
            checkpoint,
            maps: Vec::new(),
            started: Instant::now(),
            elapsed_secs: 0.0,
            facts: RunFacts::default(),
            earlier_session: false,
            saved_file: None,
        }
    }

    /// Epochs done and planned, and how the run ended early: "2/2", "1/5, stopped",
    /// "0/5, failed".
    pub fn epochs_words(&self) -> String {
        let done = format!("{}/{}", self.history.len(), self.total_epochs);
        match &self.status {
            RunStatus::Stopped => format!("{done}, stopped"),
            RunStatus::Failed(_) => format!("{done}, failed"),
            _ => done,
        }
    }

    /// True when `other` trained on the same data at the same input size.
    pub fn same_data(&self, other: &RunRecord) -> bool {
        self.config.data == other.config.data && self.facts.input == other.facts.input
    }

    /// Target accuracy after the last epoch (of a stepping-stone run: its last hop, not
    /// the direct run it is compared with).
    pub fn target_accuracy(&self) -> Option<f64> {
        self.kept_epoch().and_then(|r| r.target_accuracy)
    }

    /// Source accuracy after the last epoch (of a stepping-stone run: its last hop).
    pub fn source_accuracy(&self) -> Option<f64> {
        self.kept_epoch().and_then(|r| r.source_accuracy)
    }

    /// The epoch whose weights the run kept: the one `--select-by` chose, else its last.
    fn kept_epoch(&self) -> Option<&EpochRecord> {
        let chosen = self
            .report
            .as_ref()
            .and_then(|r| r.selection.as_ref())
            .and_then(|s| self.history.get(s.chosen_epoch - 1));
        chosen.or_else(|| self.last_own_epoch())
    }

    /// The last epoch of the run itself: a stepping-stone run's direct epochs (phase
    /// `direct`) are only there for comparison.
    fn last_own_epoch(&self) -> Option<&EpochRecord> {
        self.history.iter().rev().find(|r| !is_direct(r))
    }

    /// What the figure `key` is.
    pub fn metric(&self, key: &str) -> Metric {
        describe(&self.metrics, key)
    }

    /// True when a checkpoint with at least one epoch exists.
    pub fn has_checkpoint(&self) -> bool {
        !self.history.is_empty() && self.checkpoint.exists()
    }

    /// True when its model reads the loaded kind of data (not a multitask or zero-shot
    /// model, whose outputs are tasks or attributes): its features can be mapped.
    pub fn has_pair_model(&self) -> bool {
        self.pair.is_some() && !self.config.method.is_task_method() && self.has_checkpoint()
    }

    /// What kind of run it is: `extra.kind` of the report, or what the config says.
    pub fn kind(&self) -> RunKind {
        RunKind::of(&self.config)
    }

    /// A one-line name, e.g. "#3 dann, freeze 1".
    pub fn label(&self) -> String {
        let via = if self.kind() == RunKind::SteppingStones {
            " via stones"
        } else {
            ""
        };
        format!(
            "#{} {}{via}, freeze {}",
            self.id,
            self.config.method.name(),
            self.config.freeze
        )
    }
}

/// True for an epoch of the direct run a stepping-stone run is compared with.
pub fn is_direct(r: &EpochRecord) -> bool {
    r.phase == Some(Phase::Direct)
}

/// A temporary folder removed when the app ends.
pub struct TempDir(pub PathBuf);

impl TempDir {
    fn new() -> Self {
        // One folder per app in the process (tests run several side by side): a counter,
        // since the folder is removed when its app ends and must never be another's.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("transferlab-{}-{n}", std::process::id()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct MapJob {
    run_id: usize,
    epoch: usize,
    job: Job<Result<FeatureMap, String>>,
}

/// All runs and the live worker.
pub struct Runs {
    pub records: Vec<RunRecord>,
    worker: Option<(usize, Worker)>,
    next_id: usize,
    temp: TempDir,
    /// (run, epoch) whose checkpoint is not yet known to be on disk.
    pending_map: Option<(usize, usize)>,
    /// (run, epoch) whose checkpoint is on disk and wants a map.
    want_map: Option<(usize, usize)>,
    map_job: Option<MapJob>,
    /// Subsample size of the live map.
    pub map_points: usize,
    pub map_error: Option<String>,
    /// Runs that ended and were not yet taken (to be saved for the next session).
    ended: Vec<usize>,
    /// What went wrong reading or saving runs for the next session, one line each.
    pub saved_problems: Vec<String>,
}

impl Default for Runs {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            worker: None,
            next_id: 1,
            temp: TempDir::new(),
            pending_map: None,
            want_map: None,
            map_job: None,
            map_points: 300,
            map_error: None,
            ended: Vec::new(),
            saved_problems: Vec::new(),
        }
    }
}

impl Runs {
    /// Add runs of earlier sessions (read back by `saved_runs`), in id order; new runs
    /// are numbered after them.
    pub fn add_earlier(&mut self, earlier: Vec<RunRecord>) {
        let mut ids: std::collections::HashSet<usize> = self.records.iter().map(|r| r.id).collect();
        for mut r in earlier {
            // Two sessions at once can each save a run #n: the later one is renumbered.
            if !ids.insert(r.id) {
                r.id = ids.iter().max().copied().unwrap_or(0) + 1;
                ids.insert(r.id);
            }
            self.records.push(r);
        }
        self.records.sort_by_key(|r| r.id);
        self.next_id = self.next_id.max(ids.iter().max().map_or(1, |m| m + 1));
    }

    /// The runs that ended since the last call, by id.
    pub fn take_ended(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.ended)
    }

    /// Events the live worker has sent and the app has not read yet (at most the
    /// worker's bounded capacity).
    pub fn queued_events(&self) -> usize {
        self.worker.as_ref().map_or(0, |(_, w)| w.events().len())
    }

    /// The run being trained, if any.
    pub fn live(&self) -> Option<&RunRecord> {
        let (id, _) = self.worker.as_ref()?;
        self.get(*id).filter(|r| r.status.is_live())
    }

    /// True while a run is training (or paused).
    pub fn is_running(&self) -> bool {
        self.live().is_some()
    }

    /// A run by id.
    pub fn get(&self, id: usize) -> Option<&RunRecord> {
        self.records.iter().find(|r| r.id == id)
    }

    /// A run by id, to change.
    pub fn get_mut(&mut self, id: usize) -> Option<&mut RunRecord> {
        self.records.iter_mut().find(|r| r.id == id)
    }

    /// The most recent run.
    pub fn latest(&self) -> Option<&RunRecord> {
        self.records.last()
    }

    /// Start a run; returns its id. `config.save` is pointed at the run's temporary checkpoint.
    pub fn start(
        &mut self,
        mut config: ExperimentConfig,
        pair: Option<Arc<DomainPair>>,
        pair_id: u64,
        input_size: Option<usize>,
        ctx: &egui::Context,
    ) -> Result<usize, String> {
        if self.is_running() {
            return Err("a run is already training: stop it first".into());
        }
        std::fs::create_dir_all(&self.temp.0).map_err(|e| {
            format!(
                "cannot create the temporary folder for checkpoints ({e}): {}",
                self.temp.0.display()
            )
        })?;
        let id = self.next_id;
        let checkpoint = self.temp.0.join(format!("run-{id}.safetensors"));
        config.save = Some(checkpoint.clone());
        // Leave a core to the UI.
        let threads = std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1).max(1))
            .ok();
        let wake_ctx = ctx.clone();
        let worker = Worker::spawn(
            config.clone(),
            pair.clone(),
            input_size,
            threads,
            Arc::new(move || wake_ctx.request_repaint()),
        )
        .map_err(|e| format!("could not start the training thread: {e}"))?;
        self.next_id += 1;
        let map_wanted = pair.is_some();
        let facts = RunFacts::of(&config, pair.as_deref(), &self.records);
        let mut record = RunRecord::new(id, config, pair, pair_id, checkpoint);
        record.facts = facts;
        self.records.push(record);
        self.worker = Some((id, worker));
        self.pending_map = None;
        // Multitask and zero-shot models have no map of the loaded domains.
        self.want_map = map_wanted.then_some((id, 0));
        Ok(id)
    }

    /// Send a command to the live run.
    pub fn command(&self, c: Command) {
        if let Some((_, w)) = &self.worker {
            w.send(c);
        }
    }

    /// Remove a run that is not training.
    pub fn remove(&mut self, id: usize) {
        if self.live().is_some_and(|r| r.id == id) {
            return;
        }
        if let Some(r) = self.get(id) {
            let _ = std::fs::remove_file(&r.checkpoint);
            let _ = std::fs::remove_file(crate::model::checkpoint::sidecar_path(&r.checkpoint));
            // Removed for good: it does not come back next session.
            if let Some(saved) = &r.saved_file {
                let _ = std::fs::remove_file(saved);
            }
        }
        self.records.retain(|r| r.id != id);
    }

    /// Drain the worker's events (time-boxed) and advance the live map.
    pub fn poll(&mut self, ctx: &egui::Context, map_layer: Layer) {
        let started = Instant::now();
        if let Some((id, worker)) = &self.worker {
            let id = *id;
            let rx = worker.events().clone();
            let mut ended = false;
            while started.elapsed() < DRAIN_BUDGET {
                let Ok(ev) = rx.try_recv() else { break };
                ended |= matches!(ev, Event::Finished(_) | Event::Failed { .. });
                self.apply(id, ev);
            }
            if !rx.is_empty() {
                ctx.request_repaint();
            }
            let finished = self.worker.as_ref().is_some_and(|(_, w)| w.is_finished());
            if ended || (finished && rx.is_empty()) {
                if let Some(r) = self.get_mut(id)
                    && r.status.is_live()
                {
                    r.status = RunStatus::Failed(
                        "the training thread ended without a report (internal error)".into(),
                    );
                }
                self.worker = None;
                self.ended.push(id);
            }
        }
        if self.live().is_some() {
            // Elapsed time and ETA move even between events, but slowly: 1 Hz is enough.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        self.poll_map(ctx, map_layer);
    }

    fn apply(&mut self, id: usize, ev: Event) {
        // Any event after EpochFinished means the epoch's checkpoint is on disk.
        let saved_epoch = self.pending_map.filter(|(r, _)| *r == id);
        let Some(run) = self.get_mut(id) else { return };
        let mut map_ready = saved_epoch.is_some();
        match ev {
            Event::Loading { what, done, total } => {
                map_ready = false;
                run.preparing = Some((what, done, total));
            }
            Event::Started(start) => {
                run.metrics = start.metrics;
                run.status = RunStatus::Training;
                run.total_epochs = start.epochs.max(1);
                run.network = start.network;
                run.warnings = start.warnings;
            }
            Event::BatchFinished(p) => {
                let x = p.epoch.saturating_sub(1) as f64 + p.batch as f64 / p.batches.max(1) as f64;
                run.batch_losses.push(PlotPoint::new(x, p.loss));
                if run.batch_losses.len() > MAX_BATCH_POINTS {
                    // Keep every other point: long curves stay cheap to draw.
                    let thinned: Vec<PlotPoint> =
                        run.batch_losses.iter().step_by(2).copied().collect();
                    run.batch_losses = thinned;
                }
                run.progress = Some(p);
                run.elapsed_secs = run.started.elapsed().as_secs_f64();
            }
            Event::EpochFinished(rec) => {
                let epoch = rec.epoch;
                // A stepping-stone run saves its model only in the last hop, and the
                // direct run (for comparison) not at all: no map for those epochs.
                let mapped =
                    run.pair.is_some() && !run.config.method.is_task_method() && !is_direct(&rec);
                run.history.push(rec);
                run.elapsed_secs = run.started.elapsed().as_secs_f64();
                if mapped {
                    self.pending_map = Some((id, epoch));
                }
                map_ready = false;
            }
            Event::Paused => run.status = RunStatus::Paused,
            Event::Resumed => run.status = RunStatus::Training,
            Event::Finished(report) => {
                run.status = if report.stopped_early {
                    RunStatus::Stopped
                } else {
                    RunStatus::Finished
                };
                run.elapsed_secs = report.elapsed_secs;
                if !report.backbone.is_empty() {
                    run.facts.backbone = report.backbone.clone();
                }
                run.report = Some(report);
            }
            Event::Failed { epoch, message } => {
                let at = epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default();
                run.status = RunStatus::Failed(format!("{message}{at}"));
                run.elapsed_secs = run.started.elapsed().as_secs_f64();
            }
        }
        if map_ready && let Some((_, epoch)) = saved_epoch {
            self.pending_map = None;
            self.want_map = Some((id, epoch));
        }
    }

    /// True while a live-map job runs.
    pub fn map_busy(&self) -> bool {
        self.map_job.is_some()
    }

    fn poll_map(&mut self, ctx: &egui::Context, layer: Layer) {
        let done = match &self.map_job {
            Some(m) => match m.job.poll() {
                super::jobs::Polled::Pending => None,
                super::jobs::Polled::Done(r) => Some((m.run_id, m.epoch, r)),
                super::jobs::Polled::Lost => Some((
                    m.run_id,
                    m.epoch,
                    Err("the map computation failed (internal error)".into()),
                )),
            },
            None => None,
        };
        if let Some((run_id, epoch, result)) = done {
            self.map_job = None;
            match result {
                Ok(mut map) => {
                    self.map_error = None;
                    if let Some(run) = self.get_mut(run_id) {
                        if let Some((_, prev)) = run.maps.last() {
                            map.align_to(prev);
                        }
                        run.maps.push((epoch, map));
                    }
                }
                Err(e) => self.map_error = Some(e),
            }
        }
        if self.map_job.is_some() {
            return;
        }
        let Some((run_id, epoch)) = self.want_map.take() else {
            return;
        };
        let Some(run) = self.get(run_id) else { return };
        let Some(pair) = run.pair.clone() else { return };
        // Earlier hops of a stepping-stone run save to their own temporary files.
        if epoch > 0 && !run.checkpoint.is_file() {
            return;
        }
        let req = MapRequest {
            pair,
            // The pixels do not change with training: the live map shows a stage.
            layer: match layer {
                Layer::Pixels => Layer::Stage(usize::MAX),
                l => l,
            },
            // Epoch 0: the network as training starts (its starting model, or a fresh
            // one with the run's seed), so the first map shows where the domains begin.
            model: match (epoch, &run.config.init) {
                (0, Some(init)) => ModelSource::Checkpoint(init.clone()),
                (0, None) => ModelSource::Untrained {
                    backbone: run.config.backbone,
                },
                _ => ModelSource::Checkpoint(run.checkpoint.clone()),
            },
            per_domain: self.map_points,
            seed: run.config.seed,
        };
        match Job::spawn("live-map", ctx, move |_| compute_map(&req)) {
            Ok(job) => self.map_job = Some(MapJob { run_id, epoch, job }),
            Err(e) => self.map_error = Some(e),
        }
    }

    /// The temporary folder of checkpoints.
    pub fn temp_dir(&self) -> &Path {
        &self.temp.0
    }
}
