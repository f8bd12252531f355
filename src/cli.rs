//! The headless front end: `transferlab run | demos | bench | devices | …`. It drives the
//! same engine as the GUI, printing progress (a bar with ETA) on stderr, a one-line summary
//! on stdout and the full report as JSON.

use crate::data::{DEMOS, LoadProgress};
use crate::device::DeviceChoice;
use crate::method::MethodKind;
use crate::model::BackboneKind;
use crate::model::predict::PredictModel;
use crate::output::{Input, Output};
use crate::train::events::{BatchProgress, NetworkSummary, RunStart};
use crate::train::experiment::{Control, Flow};
use crate::train::learner::init_meta;
use crate::train::results::{Metric, Phase, RunExtra, describe};
use crate::train::{
    DataSource, Event, EventSink, ExperimentConfig, RunReport, ShapeHint, load_pair,
};
use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

mod bench_pretrained;
mod predict;
mod rank;
mod values;
pub use bench_pretrained::{BenchPretrainedArgs, bench_pretrained_command};
pub use predict::{PredictArgs, predict_command};
pub use rank::{RankArgs, rank_command};

/// transferlab: a workbench for transfer learning. With no command it opens the app.
#[derive(Parser, Debug)]
#[command(name = "transferlab", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    /// Built-in demo the app opens on.
    #[arg(long, global = false)]
    pub demo: Option<String>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Train and evaluate one transfer run headlessly.
    Run(Box<RunArgs>),
    /// List the built-in demo domain pairs.
    Demos,
    /// List the transfer methods: family, what they train on, hyperparameters.
    Methods,
    /// List the backbones: stages and the images they take.
    Backbones,
    /// Measure training, inference and loading throughput.
    Bench(BenchArgs),
    /// Measure how similar two domains are (MMD², A-distance, CORAL, a 2-D map) and get advice.
    Similarity(SimilarityArgs),
    /// Compare the transfer methods on several domain shifts (target accuracy, cost).
    BenchMethods(BenchMethodsArgs),
    /// List the compute devices this build can use, and what `--device auto` picks.
    Devices,
    /// Classify image files with the shipped ImageNet model or a saved checkpoint.
    Predict(PredictArgs),
    /// Fashion-MNIST, 10 labelled images per class: the small CNN from scratch against
    /// ImageNet features of EfficientNet-Lite0 (linear probe), several seeds.
    BenchPretrained(BenchPretrainedArgs),
    /// Which source suits a target best: rank candidate source folders (by their distance
    /// to the target) and starting models (by LogME, LEEP and H-score on a few labelled
    /// target images).
    Rank(RankArgs),
}

/// Arguments of `transferlab run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Source folder (one subfolder per class).
    #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
    pub source: Option<PathBuf>,
    /// Target folder (class subfolders = labelled, used for evaluation; flat = unlabeled).
    /// Not used by multitask and zero-shot, which learn from the --source folder alone.
    #[arg(long, conflicts_with = "demo")]
    pub target: Option<PathBuf>,
    /// Multitask: CSV with a file column (relative to --source) and one label column per task.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Multitask: weight of each task's loss, comma-separated in column order (default all 1).
    #[arg(long, value_delimiter = ',', value_parser = values::non_negative,
        allow_hyphen_values = true)]
    pub task_weights: Vec<f64>,
    /// Zero-shot: CSV with a class column and one column per attribute (0/1 or numbers).
    #[arg(long)]
    pub attributes: Option<PathBuf>,
    /// Zero-shot: classes held out of training, comma-separated (the demo has a default).
    #[arg(long, value_delimiter = ',')]
    pub unseen: Vec<String>,
    /// Stepping stones: an intermediate domain folder between source and target
    /// (repeat for several, in order from the source side).
    #[arg(long)]
    pub via: Vec<PathBuf>,
    /// Stepping stones through the demo's built-in intermediate domains (digits-steps).
    #[arg(long)]
    pub stepping_stones: bool,
    /// A built-in domain pair instead of folders (see `transferlab demos`).
    #[arg(long)]
    pub demo: Option<String>,
    #[arg(long, value_enum, default_value_t = MethodKind::SourceOnly)]
    pub method: MethodKind,
    /// Backbone (default: mlp for points, small-cnn for images, or the --init model's).
    #[arg(long, value_enum)]
    pub backbone: Option<BackboneKind>,
    /// Freeze the first K backbone stages (all stages = linear probe).
    #[arg(long, default_value_t = 0, value_parser = values::count, allow_negative_numbers = true)]
    pub freeze: usize,
    #[arg(long, default_value_t = 5, value_parser = values::at_least_one, allow_negative_numbers = true)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64, value_parser = values::at_least_one, allow_negative_numbers = true)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3, value_parser = values::positive,
        allow_hyphen_values = true)]
    pub lr: f64,
    #[arg(long, default_value_t = 1, value_parser = values::seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Hand K labelled target images per class to training (the rest are evaluated).
    #[arg(long, default_value_t = 0, value_parser = values::count, allow_negative_numbers = true)]
    pub target_labels: usize,
    /// Adaptation weight (methods that adapt; default: the method's own).
    #[arg(long, value_parser = values::number,
        allow_hyphen_values = true)]
    pub lambda: Option<f64>,
    /// Width of the adaptation layer before the classifier (default: 256 for ddc, dan,
    /// coral and dann, none otherwise; 0 = none).
    #[arg(long, value_parser = values::count, allow_negative_numbers = true)]
    pub bottleneck: Option<usize>,
    /// A method hyperparameter, KEY=VALUE (repeatable; `transferlab methods` lists each
    /// method's keys, ranges and defaults).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, f64)>,
    /// Fraction of the source held out to measure source accuracy.
    #[arg(long, default_value_t = 0.2, value_parser = values::fraction,
        allow_hyphen_values = true)]
    pub val_fraction: f64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Start from a saved model (task A → task B).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Keep the epoch that a label-free criterion scores best instead of the last (the
    /// report says which epoch the target labels would have kept, when there are any).
    #[arg(long, value_enum, value_name = "CRITERION")]
    pub select_by: Option<crate::train::selection::SelectBy>,
    /// The teacher of relation-distill and distill: a saved model, or `imagenet` for the
    /// built-in EfficientNet-Lite0.
    #[arg(long, value_name = "MODEL|imagenet", value_parser = parse_teacher)]
    pub teacher: Option<PredictModel>,
    /// Save the trained model (weights + JSON sidecar).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Write the full report (history, final metrics) as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a prediction per target file as CSV.
    #[arg(long)]
    pub predict: Option<PathBuf>,
    /// Image side the images are resized to (default: 28, 32 for resnet18, 224 for
    /// efficientnet-lite0, or the --init model's).
    #[arg(long, value_parser = values::count, allow_negative_numbers = true)]
    pub input_size: Option<usize>,
    /// Image channels (1 = gray, 3 = colour; default: detected from the images).
    #[arg(long, value_parser = values::channels, allow_negative_numbers = true)]
    pub channels: Option<u8>,
    /// Compute threads (default: all cores).
    #[arg(long, value_parser = values::at_least_one, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of `transferlab similarity`.
#[derive(Args, Debug, Clone)]
pub struct SimilarityArgs {
    /// Source folder (one subfolder per class).
    #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
    pub source: Option<PathBuf>,
    /// Target folder (labelled or flat).
    #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
    pub target: Option<PathBuf>,
    /// A built-in domain pair instead of folders.
    #[arg(long)]
    pub demo: Option<String>,
    /// Read features from this saved or imported model (default: raw pixels).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Stage whose output is the feature ("pixels" for raw values; default: the last stage
    /// when a model or backbone is given, else pixels).
    #[arg(long)]
    pub layer: Option<String>,
    /// Use a random-initialised backbone for features.
    #[arg(long, value_enum)]
    pub backbone: Option<BackboneKind>,
    /// At most this many images per domain (a seeded subsample).
    #[arg(long, default_value_t = 2000, value_parser = values::at_least_one, allow_negative_numbers = true)]
    pub max_per_domain: usize,
    /// Also compute a t-SNE map (PCA otherwise).
    #[arg(long)]
    pub tsne: bool,
    /// Permutations of the MMD test (at most 10,000: the p-value's resolution is
    /// 1/(permutations + 1), and each one costs as much as the statistic).
    #[arg(long, default_value_t = 200,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000),
          allow_negative_numbers = true)]
    pub permutations: usize,
    #[arg(long, default_value_t = 1, value_parser = values::seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Labelled target images per class you could train with (for the advice).
    #[arg(long, default_value_t = 0, value_parser = values::count, allow_negative_numbers = true)]
    pub target_labels: usize,
    /// Earlier run reports (`run --json`) to check for negative transfer.
    #[arg(long, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// Also cluster the target's features by k-means: a number of clusters, or "auto" to
    /// choose it by the silhouette (scored against the target's class folders, if any).
    #[arg(long)]
    pub clusters: Option<crate::analysis::cluster::ClusterCount>,
    /// Also spread the source's labels to the target over a nearest-neighbour graph of the
    /// same features (label propagation), keeping every step (JSON `label_spreading`).
    #[arg(long)]
    pub spread: bool,
    /// Image side (default 28).
    #[arg(long, value_parser = values::count, allow_negative_numbers = true)]
    pub input_size: Option<usize>,
    /// Write the full report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Arguments of `transferlab bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Training steps to time.
    #[arg(long, default_value_t = 30, value_parser = values::count, allow_negative_numbers = true)]
    pub steps: usize,
    #[arg(long, default_value_t = 64, value_parser = values::count, allow_negative_numbers = true)]
    pub batch: usize,
    /// PNG images to generate and load for `load_images_per_sec`.
    #[arg(long, default_value_t = 4000, value_parser = values::count, allow_negative_numbers = true)]
    pub load_images: usize,
    /// Measure loading this folder instead of generated PNGs.
    #[arg(long)]
    pub images_dir: Option<PathBuf>,
    /// Backbone to time (small-cnn at 28×28 is the peer benchmark's network).
    #[arg(long, value_enum, default_value_t = BackboneKind::SmallCnn)]
    pub backbone: BackboneKind,
    /// Image side for the timed network.
    #[arg(long, default_value_t = 28, value_parser = values::count, allow_negative_numbers = true)]
    pub input_size: usize,
    /// Also time training epochs through the runner at three freezing depths (fine-tune
    /// all, freeze half, linear probe), frozen-stage cache included.
    #[arg(long)]
    pub freeze_sweep: bool,
    /// Source images per epoch for --freeze-sweep.
    #[arg(long, default_value_t = 4096, value_parser = values::count, allow_negative_numbers = true)]
    pub sweep_images: usize,
    /// Also time the similarity analysis (2,000 + 2,000 samples of 784 values).
    #[arg(long)]
    pub analysis: bool,
    /// Device to time on (a GPU build with no usable GPU falls back to the CPU, with a note).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

/// Arguments of `transferlab bench-methods`.
#[derive(Args, Debug, Clone)]
pub struct BenchMethodsArgs {
    /// MNIST folder with train/ and test/ parts of class subfolders.
    #[arg(long, default_value = "../shared/datasets/mnist")]
    pub mnist: PathBuf,
    /// Shifts to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', default_values_t = crate::train::method_bench::SHIFTS.map(String::from))]
    pub shifts: Vec<String>,
    /// Methods to run, comma-separated (default: source-only, target-only and every adaptation method).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub methods: Vec<MethodKind>,
    /// Number of seeds (1, 2, …).
    #[arg(long, default_value_t = 3, value_parser = values::seed, allow_negative_numbers = true)]
    pub seeds: u64,
    #[arg(long, default_value_t = 8, value_parser = values::count, allow_negative_numbers = true)]
    pub epochs: usize,
    /// Source images per class.
    #[arg(long, default_value_t = 200, value_parser = values::count, allow_negative_numbers = true)]
    pub per_class: usize,
    /// Target images per class.
    #[arg(long, default_value_t = 100, value_parser = values::count, allow_negative_numbers = true)]
    pub target_per_class: usize,
    /// Labelled target images per class for the target-only baseline.
    #[arg(long, default_value_t = 10, value_parser = values::count, allow_negative_numbers = true)]
    pub target_labels: usize,
    #[arg(long, default_value_t = 64, value_parser = values::count, allow_negative_numbers = true)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3, value_parser = values::positive,
        allow_hyphen_values = true)]
    pub lr: f64,
    /// Adaptation weight for every adaptation method (default: each method's own).
    #[arg(long, value_parser = values::number,
        allow_hyphen_values = true)]
    pub lambda: Option<f64>,
    /// Adaptation layer width for the adaptation methods (default: each method's own; 0 = none).
    #[arg(long, value_parser = values::count, allow_negative_numbers = true)]
    pub bottleneck: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Compute threads (default: all cores).
    #[arg(long, value_parser = values::count, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Write every run's figures as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl RunArgs {
    /// The experiment these arguments describe.
    pub fn to_config(&self) -> Result<ExperimentConfig> {
        let data = match (&self.demo, &self.source, &self.target) {
            (Some(name), _, _) => DataSource::Demo { name: name.clone() },
            (None, Some(s), Some(t)) => DataSource::Folders {
                source: s.clone(),
                target: t.clone(),
            },
            (None, Some(s), None) if self.method.is_task_method() => {
                DataSource::Folder { folder: s.clone() }
            }
            (None, Some(_), None) => bail!(
                "{} needs a --target folder too (or --demo NAME)",
                self.method.name()
            ),
            _ => bail!("give --source and --target folders, or --demo NAME"),
        };
        if self.teacher.is_some() && !self.method.needs_teacher() {
            bail!(
                "--teacher is only for the methods that learn from a teacher (relation-distill, distill), not {}",
                self.method.name()
            );
        }
        Ok(ExperimentConfig {
            data,
            method: self.method,
            backbone: self.backbone,
            freeze: self.freeze,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            seed: self.seed,
            target_labels: self.target_labels,
            lambda: self.lambda,
            params: self.params.iter().cloned().collect(),
            bottleneck: self.bottleneck,
            val_fraction: self.val_fraction,
            device: self.device,
            init: self.init.clone(),
            select_by: self.select_by,
            teacher: self.teacher.clone(),
            save: self.save.clone(),
            labels: self.labels.clone(),
            task_weights: self.task_weights.clone(),
            attributes: self.attributes.clone(),
            unseen: self.unseen.clone(),
            via: self.via.clone(),
            stepping_stones: self.stepping_stones,
        })
    }
}

/// `--teacher`: the word `imagenet` (or `efficientnet-lite0`, as `predict --model` names
/// it), or a saved model's path.
fn parse_teacher(s: &str) -> std::result::Result<PredictModel, String> {
    match s {
        "" => Err("give a saved model's path, or imagenet".into()),
        "imagenet" | predict::IMAGENET_MODEL => Ok(PredictModel::Imagenet),
        path => Ok(PredictModel::Checkpoint(PathBuf::from(path))),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|a| format!("{:.1}%", a * 100.0))
        .unwrap_or_else(|| "n/a".into())
}

/// Prints progress to stderr.
struct CliSink {
    bar: ProgressBar,
    quiet: bool,
    /// What the run's figures are (from `Started`).
    metrics: Vec<Metric>,
}

impl CliSink {
    fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (ETA {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self {
            bar,
            quiet,
            metrics: Vec::new(),
        }
    }

    fn line(&self, text: String) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{text}"));
        }
    }
}

impl EventSink for CliSink {
    fn emit(&mut self, event: Event) {
        match event {
            Event::Loading { what, done, total } => {
                self.bar.set_prefix(what);
                self.bar.set_length(total as u64);
                self.bar.set_position(done as u64);
            }
            Event::Started(RunStart {
                epochs,
                batches_per_epoch,
                network:
                    NetworkSummary {
                        device,
                        trainable_params,
                        total_params,
                    },
                warnings,
                metrics,
            }) => {
                self.metrics = metrics;
                // Warnings are printed even with --quiet: they say what was left out.
                for w in warnings {
                    self.bar.suspend(|| eprintln!("warning: {w}"));
                }
                self.line(format!(
                    "training on {device}: {epochs} epoch(s) × {batches_per_epoch} batches, {trainable_params} of {total_params} parameters trainable"
                ));
                self.bar.set_prefix("training");
                self.bar.set_length((epochs * batches_per_epoch) as u64);
                self.bar.set_position(0);
            }
            Event::BatchFinished(BatchProgress {
                epoch,
                batch,
                batches,
                loss,
                images_per_sec,
                ..
            }) => {
                self.bar
                    .set_position(((epoch - 1) * batches + batch) as u64);
                self.bar.set_message(format!(
                    "epoch {epoch} loss {loss:.3} {images_per_sec:.0} img/s"
                ));
            }
            Event::EpochFinished(r) => {
                let figure =
                    |key: &str, v: f64| format!("{key} {}", describe(&self.metrics, key).format(v));
                let mut extra: Vec<String> = r.phase.map(Phase::describe).into_iter().collect();
                extra.extend(
                    r.tasks.iter().map(|t| {
                        format!("{} joint {} alone {}", t.task, pct(t.joint), pct(t.alone))
                    }),
                );
                extra.extend(r.metrics.iter().map(|(k, v)| figure(k, *v)));
                self.line(format!(
                    "epoch {:>3}  loss {:.4}  source {}  target {}  {:.1} s  {:.0} img/s{}{}",
                    r.epoch,
                    r.train_loss,
                    pct(r.source_accuracy),
                    pct(r.target_accuracy),
                    r.seconds,
                    r.images_per_sec,
                    if extra.is_empty() { "" } else { "  " },
                    extra.join("  ")
                ));
            }
            Event::Paused | Event::Resumed => {}
            Event::Finished(_) => self.bar.finish_and_clear(),
            Event::Failed { message, .. } => {
                self.bar.abandon();
                self.line(format!("error: {message}"));
            }
        }
    }
}

fn write_predictions(report: &RunReport, path: &std::path::Path) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let labelled = report.predictions.iter().any(|p| p.label.is_some());
    if labelled {
        w.write_record(["file", "predicted", "confidence", "label"])?;
    } else {
        w.write_record(["file", "predicted", "confidence"])?;
    }
    let name = |i: u32| {
        report
            .data
            .classes
            .get(i as usize)
            .cloned()
            .unwrap_or_default()
    };
    for p in &report.predictions {
        let mut row = vec![
            p.file.clone(),
            name(p.predicted),
            format!("{:.4}", p.confidence),
        ];
        if let Some(l) = p.label {
            row.push(name(l));
        }
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::output::write_atomic("the --predict CSV", path, &bytes)?;
    Ok(())
}

/// Set when Ctrl-C or SIGTERM arrives during `transferlab run`: the run stops after the
/// current batch and its report is still written; `main` then exits with 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True when `transferlab run` was interrupted by a signal.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Stops the run when a signal has arrived.
struct SignalControl;

impl Control for SignalControl {
    fn check(&mut self, _sink: &mut dyn EventSink) -> Flow {
        if interrupted() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

/// Ctrl-C / SIGTERM: the first asks the run to stop and keep what it has, a second one
/// quits at once.
fn catch_signals() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\nstopping after this batch; the report of what was done is still written (Ctrl-C again quits at once)"
        );
    });
}

/// Check a command's `--json` output before its work starts (see [`crate::output`]).
pub(crate) fn check_json_output(json: Option<&PathBuf>, inputs: &[Input]) -> Result<()> {
    if let Some(p) = json {
        crate::output::check_all(inputs, &[Output::new("the --json report", p)])?;
    }
    Ok(())
}

/// The files `transferlab run` writes besides the model.
fn run_outputs(args: &RunArgs, config: &ExperimentConfig) -> Vec<Output> {
    let mut outputs = config.outputs();
    if let Some(p) = &args.json {
        outputs.push(Output::new("the --json report", p));
    }
    if let Some(p) = &args.predict {
        outputs.push(Output::new("the --predict CSV", p));
    }
    outputs
}

/// `transferlab run`.
pub fn run_command(args: &RunArgs) -> Result<RunReport> {
    let config = args.to_config()?;
    crate::train::experiment::validate_config(&config)?;
    if let Some(n) = args.threads {
        // Only the first call configures the global pool; later ones are harmless.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    let meta = init_meta(&config)?;
    let hint = ShapeHint::for_run(
        config.backbone,
        meta.as_ref(),
        args.input_size,
        args.channels.map(usize::from),
    )?;
    // Every output is checked before the work, so finished results are never lost.
    crate::output::check_all(&config.inputs(), &run_outputs(args, &config))?;
    catch_signals();
    let mut sink = CliSink::new(args.quiet);
    let report = match crate::run::run_job(&config, None, hint, &mut sink, &mut SignalControl) {
        Ok(r) => r,
        Err(e) => {
            sink.bar.abandon();
            return Err(e.into());
        }
    };
    sink.emit(Event::Finished(Box::new(report.clone())));
    if let Some(path) = &args.json {
        crate::output::write_json("the --json report", path, &report)?;
    }
    if let Some(path) = &args.predict {
        write_predictions(&report, path)?;
    }
    print_summary(&report);
    Ok(report)
}

/// The one-line summary, and for the across-task and stepping-stone runs their comparison.
fn print_summary(report: &RunReport) {
    match &report.extra {
        Some(RunExtra::Multitask(e)) => {
            println!(
                "multitask on {}: mean task accuracy {} joint vs {} alone after {} epoch(s) ({:.1} s)",
                report.data.source,
                pct(e.joint_mean),
                pct(e.alone_mean),
                report.final_metrics.epochs_completed,
                report.elapsed_secs
            );
            for t in &e.tasks {
                println!(
                    "  task {:<12} joint {:>6}  alone {:>6}  ({} classes, {} held out)",
                    t.name,
                    pct(t.joint_accuracy),
                    pct(t.alone_accuracy),
                    t.classes.len(),
                    t.labelled_eval
                );
            }
        }
        Some(RunExtra::ZeroShot(e)) => {
            println!(
                "zero-shot on {}: unseen classes {} (chance {}), seen classes {}, unseen among all classes {} after {} epoch(s) ({:.1} s)",
                report.data.source,
                pct(e.unseen_accuracy),
                pct(Some(e.chance)),
                pct(e.seen_accuracy),
                pct(e.unseen_accuracy_all_classes),
                report.final_metrics.epochs_completed,
                report.elapsed_secs
            );
            let attrs: Vec<String> = e
                .attribute_accuracy
                .iter()
                .map(|a| format!("{} {}", a.attribute, pct(Some(a.accuracy))))
                .collect();
            println!("  attributes on unseen images: {}", attrs.join(", "));
        }
        Some(RunExtra::SteppingStones(e)) => {
            println!(
                "{} via stepping stones on {}: target {} vs {} direct ({} epochs each way, {:.1} s)",
                report.method,
                report.data.source,
                pct(e.stepping_target_accuracy),
                pct(e.direct_target_accuracy),
                e.direct_epochs,
                report.elapsed_secs
            );
            for h in &e.hops {
                println!(
                    "  {} → {}: accuracy {}{}",
                    h.from,
                    h.to,
                    pct(h.accuracy),
                    match h.pseudo_labels {
                        Some(n) => format!(
                            ", {n} pseudo-labels passed on ({} right)",
                            pct(h.pseudo_label_accuracy)
                        ),
                        None => String::new(),
                    }
                );
            }
        }
        Some(RunExtra::Method(_)) | None
            if MethodKind::from_name(&report.method)
                .is_some_and(|m| m.labelled_data() == crate::method::LabelledData::None) =>
        {
            // Nothing learnt a class: its own figures are the result.
            let last = report.history.last().map(|h| &h.metrics);
            let figures: Vec<String> = report
                .metrics
                .iter()
                .filter_map(|m| {
                    let v = last?.get(m.key.as_ref())?;
                    Some(match m.unit {
                        crate::metric::Unit::Fraction => format!("{} {}", m.label, pct(Some(*v))),
                        _ => format!("{} {v:.4}", m.label),
                    })
                })
                .collect();
            println!(
                "{} on {}: {} after {} epoch(s) ({:.1} s); no class accuracy: it learns without labels",
                report.method,
                report.data.source,
                figures.join(", "),
                report.final_metrics.epochs_completed,
                report.elapsed_secs
            );
        }
        Some(RunExtra::Method(_)) | None => {
            println!(
                "{} on {}: source {}, target {} after {} epoch(s) ({:.1} s)",
                report.method,
                report.data.source,
                pct(report.final_metrics.source_accuracy),
                pct(report.final_metrics.target_accuracy),
                report.final_metrics.epochs_completed,
                report.elapsed_secs
            );
            // On stderr: stdout keeps its one summary line for scripts.
            if let Some(estimate) = &report.final_metrics.label_free {
                eprintln!(
                    "target accuracy estimated without target labels: {}",
                    estimate.summary()
                );
            }
            if let Some(selection) = &report.selection {
                eprintln!("{}", selection.summary());
            }
        }
    }
}

/// `transferlab devices`: one line per device found, then the automatic choice (and why
/// it is the CPU when this is a GPU build).
pub fn devices_command() {
    for d in crate::device::available_devices() {
        let mark = if d.selectable {
            ""
        } else {
            " (not selectable)"
        };
        println!(
            "{:<6} {}{mark}",
            format!("{:?}", d.choice).to_lowercase(),
            d.label
        );
    }
    let (device, note) = crate::device::open_device(DeviceChoice::Auto);
    println!("auto   → {}", crate::device::device_name(&device));
    if let Some(note) = note {
        println!("note: {note}");
    }
}

/// `KEY=VALUE` with a number for a value.
fn parse_param(s: &str) -> std::result::Result<(String, f64), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number (in {s})"))?;
    Ok((key.trim().to_string(), value))
}

/// `transferlab methods`.
pub fn methods_command() {
    for m in MethodKind::ALL {
        let info = m.info();
        println!("{:<20} {:?}: {}", info.name, info.family, info.summary);
        for h in info.hyperparameters {
            println!(
                "{:<22}{} (default {}, {} to {}): {}",
                "",
                h.flag
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("--param {}=…", h.key)),
                h.default,
                h.min,
                h.max,
                h.help
            );
        }
    }
}

/// `transferlab backbones`.
pub fn backbones_command() {
    for b in BackboneKind::ALL {
        let info = b.info();
        let input = match info.input {
            crate::model::InputKind::Vector => "vectors (images flattened)".to_string(),
            crate::model::InputKind::Image {
                min_side,
                default_side,
                max_side,
                ..
            } => format!("images of {min_side}–{max_side} px (default {default_side})"),
        };
        println!(
            "{:<20} {}; stages {}: {}",
            info.name,
            input,
            info.stages.join(", "),
            info.summary
        );
    }
}

/// `transferlab demos`.
pub fn demos_command() {
    for d in DEMOS {
        println!("{:<16} {}: {}", d.name, d.title, d.description);
    }
    println!(
        "{:<16} Shapes × colours × fills: images with three labels each (--method multitask) and 18 classes described by 7 attributes (--method zero-shot)",
        crate::run::TASK_DEMO
    );
}

/// `transferlab bench`.
pub fn bench_command(args: &BenchArgs) -> Result<()> {
    if let Err(e) = args.backbone.info().check_side(args.input_size) {
        bail!("--input-size: {e}");
    }
    let (device, note) = crate::device::open_device(args.device);
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    println!("device {}", crate::device::device_name(&device));
    let figures = crate::train::bench::throughput(
        args.backbone,
        args.input_size,
        args.batch,
        args.steps,
        &device,
    )?;
    println!("train_images_per_sec {:.0}", figures.train_images_per_sec);
    println!("infer_images_per_sec {:.0}", figures.infer_images_per_sec);
    if args.freeze_sweep {
        let rows = crate::train::bench::freeze_sweep(
            args.backbone,
            args.input_size,
            args.batch,
            args.sweep_images,
            args.device,
        )?;
        for r in rows {
            println!(
                "epoch_secs {:<14} freeze {} trainable {:>9}  first {:.2}  later {:.2}  ({} images; whole run {:.1} s)",
                r.label.replace(' ', "-"),
                r.freeze,
                r.trainable_params,
                r.first_epoch_secs,
                r.epoch_secs,
                args.sweep_images,
                r.run_secs
            );
        }
    }
    let load = match &args.images_dir {
        Some(dir) => crate::train::bench::load_folder(dir)?,
        None => crate::train::bench::load_generated(args.load_images)?,
    };
    println!("load_images_per_sec {:.0}", load);
    if args.analysis {
        for (key, value) in crate::analysis::bench::run_analysis_bench(2000, 784, 1) {
            println!("{key} {value:.3}");
        }
    }
    Ok(())
}

/// `transferlab bench-methods`.
pub fn bench_methods_command(args: &BenchMethodsArgs) -> Result<()> {
    use crate::train::method_bench::{BenchSettings, SHIFTS, format_table, run_bench};
    if let Some(n) = args.threads {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    check_json_output(
        args.json.as_ref(),
        &[Input::new("the --mnist folder", &args.mnist)],
    )?;
    if let Some(s) = args.shifts.iter().find(|s| !SHIFTS.contains(&s.as_str())) {
        bail!("unknown shift '{s}'; known shifts: {}", SHIFTS.join(", "));
    }
    if args.seeds == 0 || args.epochs == 0 || args.per_class == 0 || args.target_per_class == 0 {
        bail!("--seeds, --epochs, --per-class and --target-per-class must be at least 1");
    }
    let methods = if args.methods.is_empty() {
        let mut m = vec![MethodKind::SourceOnly, MethodKind::TargetOnly];
        m.extend(MethodKind::ADAPTATION);
        m
    } else {
        args.methods.clone()
    };
    let settings = BenchSettings {
        mnist: args.mnist.clone(),
        shifts: args.shifts.clone(),
        methods,
        seeds: (1..=args.seeds).collect(),
        epochs: args.epochs,
        per_class: args.per_class,
        target_per_class: args.target_per_class,
        target_labels: args.target_labels,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        lambda: args.lambda,
        bottleneck: args.bottleneck,
        device: args.device,
    };
    let started = std::time::Instant::now();
    let runs = run_bench(&settings, &mut |r| {
        eprintln!(
            "{:<20} {:<20} seed {}  target {:5.1}%  source {}  {:.2} s/epoch  {}",
            r.shift,
            r.method,
            r.seed,
            r.target_accuracy * 100.0,
            pct(r.source_accuracy),
            r.train_secs_per_epoch,
            crate::metric::key_values(&r.metrics, 3, "  ")
        );
    })?;
    println!(
        "target accuracy (%), mean ± std over {} seed(s); {} epoch(s), {} source and {} target images per class, batch {}, lr {}; {:.0} s in all",
        args.seeds,
        args.epochs,
        args.per_class,
        args.target_per_class,
        args.batch_size,
        args.lr,
        started.elapsed().as_secs_f64()
    );
    print!("{}", format_table(&settings, &runs));
    println!(
        "\nlabel-free estimators against the true target accuracy (no target label used by any):"
    );
    print!(
        "{}",
        crate::train::method_bench::format_selection(&settings, &runs)
    );
    if let Some(path) = &args.json {
        crate::output::write_json("the --json report", path, &runs)?;
    }
    Ok(())
}

/// `transferlab similarity`.
pub fn similarity_command(
    args: &SimilarityArgs,
) -> Result<crate::train::similarity::SimilarityOutput> {
    use crate::analysis::SimilarityOptions;
    use crate::train::similarity::{FeatureSource, SimilarityRequest, measure};
    let data = match (&args.demo, &args.source, &args.target) {
        (Some(name), _, _) => DataSource::Demo { name: name.clone() },
        (None, Some(s), Some(t)) => DataSource::Folders {
            source: s.clone(),
            target: t.clone(),
        },
        _ => bail!("give --source and --target folders, or --demo NAME"),
    };
    if args.max_per_domain < 4 {
        bail!("--max-per-domain must be at least 4");
    }
    let mut inputs = match &data {
        DataSource::Folders { .. } => ExperimentConfig {
            data: data.clone(),
            init: args.init.clone(),
            ..Default::default()
        }
        .inputs(),
        _ => Vec::new(),
    };
    inputs.extend(args.runs.iter().map(|p| Input::new("a --runs report", p)));
    check_json_output(args.json.as_ref(), &inputs)?;
    let meta = args
        .init
        .as_deref()
        .map(crate::model::read_meta)
        .transpose()?;
    let hint = ShapeHint::for_run(args.backbone, meta.as_ref(), args.input_size, None)?;
    let mut sink = CliSink::new(false);
    let pair = load_pair(&data, hint, &mut |what: &str, p: LoadProgress| {
        sink.emit(Event::Loading {
            what: what.into(),
            done: p.done,
            total: p.total,
        })
    })?;
    sink.bar.finish_and_clear();
    for w in &pair.warnings {
        eprintln!("warning: {w}");
    }
    let req = SimilarityRequest {
        data,
        features: FeatureSource {
            init: args.init.clone(),
            layer: args.layer.clone(),
            backbone: args.backbone,
        },
        max_per_domain: args.max_per_domain,
        options: SimilarityOptions {
            permutations: args.permutations,
            seed: args.seed,
            tsne: args.tsne,
            ..Default::default()
        },
        target_labels: args.target_labels,
        runs: args.runs.clone(),
        clusters: args.clusters,
        spread: args.spread,
    };
    let started = std::time::Instant::now();
    let out = measure(&pair, &req)?;
    let r = &out.report;
    println!(
        "features: {} ({} source, {} target samples, {} dims)",
        out.features, r.n_source, r.n_target, r.dim
    );
    println!(
        "MMD²          {:.4}  (p = {:.3}, {} permutations)",
        r.mmd2, r.mmd_p_value, r.mmd_permutations
    );
    println!(
        "A-distance    {:.3}  (0 = indistinguishable, 2 = fully separable)",
        r.a_distance
    );
    println!("CORAL         {:.5}", r.coral_distance);
    if let Some(d) = &out.imagenet {
        println!(
            "ImageNet      {:.3}  (1 − the ImageNet classifier's mean top-1 probability on {} target images at {} px; similar below {:.2}; feature shift {:.3}, spread {:.3})",
            d.distance,
            d.images,
            d.side,
            out.advice.thresholds.similar_imagenet_distance,
            d.shift,
            d.spread
        );
    }
    println!(
        "advice        case {}: {} → {} ({}). {}",
        format!("{:?}", out.advice.case).to_lowercase(),
        out.advice.case_title,
        out.advice.recommended_method.as_str(),
        out.advice.recommended_freeze,
        out.advice.reason
    );
    if let Some(c) = &out.clusters {
        println!(
            "clusters      {} ({}; silhouette {:.3}; sizes {}){}",
            c.k,
            if c.chosen {
                "chosen by the silhouette"
            } else {
                "given"
            },
            c.silhouette,
            c.sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            c.adjusted_rand_index
                .map(|a| format!("; adjusted Rand index vs the target's folders {a:.3}"))
                .unwrap_or_default()
        );
    }
    if let Some(sp) = &out.label_spreading {
        let at = |v: &[f64], i: usize| {
            v.get(i)
                .map_or("n/a".into(), |a| format!("{:.0}%", a * 100.0))
        };
        let last = sp.reached.len().saturating_sub(1);
        let accuracy = |i: usize| {
            sp.accuracy
                .as_ref()
                .map(|a| format!(", {} right", at(a, i)))
                .unwrap_or_default()
        };
        println!(
            "spreading     labels reach {} of the target after 1 step{}, {} after 5{}, {} after {last}{}",
            at(&sp.reached, 1),
            accuracy(1),
            at(&sp.reached, 5),
            accuracy(5),
            at(&sp.reached, last),
            accuracy(last)
        );
    }
    for w in &out.negative_transfer {
        println!("warning       {}", w.message);
    }
    eprintln!("measured in {:.2} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        crate::output::write_json("the --json report", path, &out)?;
    }
    Ok(out)
}
