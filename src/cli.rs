//! The headless front end: `transferlab run | demos | bench`. It drives the same engine as
//! the GUI, printing progress (a bar with ETA) on stderr, a one-line summary on stdout and
//! the full report as JSON.

use crate::data::{DEMOS, LoadProgress};
use crate::device::DeviceChoice;
use crate::method::MethodKind;
use crate::model::BackboneKind;
use crate::train::experiment::init_meta;
use crate::train::{
    DataSource, Event, EventSink, Experiment, ExperimentConfig, NoControl, RunReport, ShapeHint,
    load_pair,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;

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
    Run(RunArgs),
    /// List the built-in demo domain pairs.
    Demos,
    /// Measure training, inference and loading throughput.
    Bench(BenchArgs),
}

/// Arguments of `transferlab run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Source folder (one subfolder per class).
    #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
    pub source: Option<PathBuf>,
    /// Target folder (class subfolders = labelled, used for evaluation; flat = unlabeled).
    #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
    pub target: Option<PathBuf>,
    /// A built-in domain pair instead of folders (see `transferlab demos`).
    #[arg(long)]
    pub demo: Option<String>,
    #[arg(long, value_enum, default_value_t = MethodKind::SourceOnly)]
    pub method: MethodKind,
    /// Backbone (default: mlp for points, small-cnn for images, or the --init model's).
    #[arg(long, value_enum)]
    pub backbone: Option<BackboneKind>,
    /// Freeze the first K backbone stages (all stages = linear probe).
    #[arg(long, default_value_t = 0)]
    pub freeze: usize,
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hand K labelled target images per class to training (the rest are evaluated).
    #[arg(long, default_value_t = 0)]
    pub target_labels: usize,
    /// Adaptation weight (methods that adapt; default: the method's own).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Fraction of the source held out to measure source accuracy.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Start from a saved model (task A → task B).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Save the trained model (weights + JSON sidecar).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Write the full report (history, final metrics) as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a prediction per target file as CSV.
    #[arg(long)]
    pub predict: Option<PathBuf>,
    /// Image side the images are resized to (default: 28, or 32 for resnet18, or the --init model's).
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Image channels (1 = gray, 3 = colour; default: detected from the images).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub channels: Option<u8>,
    /// Compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of `transferlab bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Training steps to time.
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// PNG images to generate and load for `load_images_per_sec`.
    #[arg(long, default_value_t = 4000)]
    pub load_images: usize,
    /// Measure loading this folder instead of generated PNGs.
    #[arg(long)]
    pub images_dir: Option<PathBuf>,
    /// Backbone to time (small-cnn at 28×28 is the peer benchmark's network).
    #[arg(long, value_enum, default_value_t = BackboneKind::SmallCnn)]
    pub backbone: BackboneKind,
    /// Image side for the timed network.
    #[arg(long, default_value_t = 28)]
    pub input_size: usize,
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
            _ => bail!("give --source and --target folders, or --demo NAME"),
        };
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
            val_fraction: self.val_fraction,
            device: self.device,
            init: self.init.clone(),
            save: self.save.clone(),
        })
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
        Self { bar, quiet }
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
            Event::Started {
                epochs,
                batches_per_epoch,
                trainable_params,
                total_params,
                device,
                warnings,
            } => {
                for w in warnings {
                    self.line(format!("warning: {w}"));
                }
                self.line(format!(
                    "training on {device}: {epochs} epoch(s) × {batches_per_epoch} batches, {trainable_params} of {total_params} parameters trainable"
                ));
                self.bar.set_prefix("training");
                self.bar.set_length((epochs * batches_per_epoch) as u64);
                self.bar.set_position(0);
            }
            Event::BatchFinished {
                epoch,
                batch,
                batches,
                loss,
                images_per_sec,
                ..
            } => {
                self.bar
                    .set_position(((epoch - 1) * batches + batch) as u64);
                self.bar.set_message(format!(
                    "epoch {epoch} loss {loss:.3} {images_per_sec:.0} img/s"
                ));
            }
            Event::EpochFinished(r) => {
                let extra: Vec<String> = r
                    .metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
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

fn write_predictions(report: &RunReport, path: &PathBuf) -> Result<()> {
    let mut w = csv::Writer::from_path(path)
        .with_context(|| format!("cannot write predictions to {}", path.display()))?;
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
    w.flush()?;
    Ok(())
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
    let default_size = if config.backbone == Some(BackboneKind::Resnet18) {
        32
    } else {
        28
    };
    let hint = ShapeHint {
        channels: args
            .channels
            .map(usize::from)
            .or(meta.as_ref().map(|m| m.channels.max(1))),
        size: args
            .input_size
            .or(meta.as_ref().map(|m| m.input_size[0]))
            .unwrap_or(default_size),
    };
    let mut sink = CliSink::new(args.quiet);
    let pair = load_pair(&config.data, hint, &mut |what: &str, p: LoadProgress| {
        sink.emit(Event::Loading {
            what: what.into(),
            done: p.done,
            total: p.total,
        })
    })?;
    let mut exp = Experiment::new(config, Arc::new(pair))?;
    let report = match exp.run(&mut sink, &mut NoControl) {
        Ok(r) => r,
        Err(e) => {
            sink.bar.abandon();
            return Err(e.into());
        }
    };
    sink.emit(Event::Finished(Box::new(report.clone())));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    if let Some(path) = &args.predict {
        write_predictions(&report, path)?;
    }
    println!(
        "{} on {}: source {}, target {} after {} epoch(s) ({:.1} s)",
        report.method,
        report.data.source,
        pct(report.final_metrics.source_accuracy),
        pct(report.final_metrics.target_accuracy),
        report.final_metrics.epochs_completed,
        report.elapsed_secs
    );
    Ok(report)
}

/// `transferlab demos`.
pub fn demos_command() {
    for d in DEMOS {
        println!("{:<16} {}: {}", d.name, d.title, d.description);
    }
}

/// `transferlab bench`.
pub fn bench_command(args: &BenchArgs) -> Result<()> {
    let figures =
        crate::train::bench::throughput(args.backbone, args.input_size, args.batch, args.steps)?;
    println!("train_images_per_sec {:.0}", figures.train_images_per_sec);
    println!("infer_images_per_sec {:.0}", figures.infer_images_per_sec);
    let load = match &args.images_dir {
        Some(dir) => crate::train::bench::load_folder(dir)?,
        None => crate::train::bench::load_generated(args.load_images)?,
    };
    println!("load_images_per_sec {:.0}", load);
    Ok(())
}
