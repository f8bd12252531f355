//! The app's state: the loaded domain pair, the settings of the next run, and the runs.

use super::training;
use crate::data::{DEMOS, DomainPair};
use crate::method::MethodKind;
use crate::train::{
    Command, DataSource, EpochRecord, Event, ExperimentConfig, RunReport, ShapeHint, Worker,
    load_pair,
};
use crossbeam_channel::{Receiver, bounded};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest time spent draining worker events in one frame.
const DRAIN_BUDGET: Duration = Duration::from_millis(4);

/// State of the current (or last) run.
#[derive(Default)]
pub struct RunState {
    pub worker: Option<Worker>,
    pub history: Vec<EpochRecord>,
    /// (epoch + fraction, loss) per progress event.
    pub batch_losses: Vec<[f64; 2]>,
    pub progress: Option<(usize, usize, usize, f64, f64)>,
    pub paused: bool,
    pub report: Option<RunReport>,
    pub error: Option<String>,
    pub epochs: usize,
    pub status: String,
}

impl RunState {
    /// True while a worker is training.
    pub fn is_running(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| !w.is_finished())
            && self.report.is_none()
            && self.error.is_none()
    }
}

/// The application.
pub struct TransferLabApp {
    pub demo: String,
    pub pair: Option<Arc<DomainPair>>,
    pub data_error: Option<String>,
    loading: Option<Receiver<Result<DomainPair, String>>>,
    pub config: ExperimentConfig,
    pub run: RunState,
    ctx: egui::Context,
}

impl TransferLabApp {
    /// A new app that starts generating `demo` (or the first demo) at once.
    pub fn new(ctx: &egui::Context, demo: Option<&str>) -> Self {
        let demo = demo
            .filter(|d| DEMOS.iter().any(|x| x.name == *d))
            .unwrap_or(DEMOS[0].name)
            .to_string();
        let mut app = Self {
            demo: demo.clone(),
            pair: None,
            data_error: None,
            loading: None,
            config: ExperimentConfig {
                data: DataSource::Demo { name: demo },
                epochs: 5,
                ..Default::default()
            },
            run: RunState::default(),
            ctx: ctx.clone(),
        };
        app.load_data();
        app
    }

    /// Load the configured data on a background thread.
    pub fn load_data(&mut self) {
        let (tx, rx) = bounded(1);
        let source = self.config.data.clone();
        let ctx = self.ctx.clone();
        self.pair = None;
        self.data_error = None;
        let spawned = std::thread::Builder::new()
            .name("transferlab-load".into())
            .spawn(move || {
                let r = load_pair(&source, ShapeHint::default(), &mut |_, _| {})
                    .map_err(|e| e.to_string());
                let _ = tx.send(r);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.loading = Some(rx),
            Err(e) => self.data_error = Some(format!("could not start loading: {e}")),
        }
    }

    /// Start training with the current settings.
    pub fn start_training(&mut self) {
        let Some(pair) = self.pair.clone() else {
            return;
        };
        let ctx = self.ctx.clone();
        // Leave one core to the UI.
        let threads = std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1).max(1))
            .ok();
        self.run = RunState {
            epochs: self.config.epochs,
            status: "starting…".into(),
            ..Default::default()
        };
        match Worker::spawn(
            self.config.clone(),
            Some(pair),
            threads,
            Arc::new(move || ctx.request_repaint()),
        ) {
            Ok(w) => self.run.worker = Some(w),
            Err(e) => self.run.error = Some(format!("could not start the training thread: {e}")),
        }
    }

    /// Send a command to the running worker.
    pub fn command(&mut self, c: Command) {
        if let Some(w) = &self.run.worker {
            w.send(c);
        }
    }

    fn drain(&mut self) {
        if let Some(rx) = &self.loading {
            if let Ok(r) = rx.try_recv() {
                match r {
                    Ok(p) => self.pair = Some(Arc::new(p)),
                    Err(e) => self.data_error = Some(e),
                }
                self.loading = None;
            }
        }
        let start = Instant::now();
        let Some(worker) = &self.run.worker else {
            return;
        };
        let rx = worker.events().clone();
        while start.elapsed() < DRAIN_BUDGET {
            let Ok(ev) = rx.try_recv() else { break };
            self.apply(ev);
        }
        if !rx.is_empty() {
            self.ctx.request_repaint();
        }
    }

    fn apply(&mut self, ev: Event) {
        let run = &mut self.run;
        match ev {
            Event::Loading { what, done, total } => run.status = format!("{what} {done}/{total}"),
            Event::Started {
                device,
                trainable_params,
                total_params,
                ..
            } => {
                run.status = format!(
                    "training on {device}: {trainable_params} of {total_params} parameters trainable"
                );
            }
            Event::BatchFinished {
                epoch,
                batch,
                batches,
                loss,
                images_per_sec,
                eta_secs,
            } => {
                run.batch_losses
                    .push([(epoch - 1) as f64 + batch as f64 / batches as f64, loss]);
                run.progress = Some((epoch, batch, batches, images_per_sec, eta_secs));
            }
            Event::EpochFinished(r) => run.history.push(r),
            Event::Paused => run.paused = true,
            Event::Resumed => run.paused = false,
            Event::Finished(report) => {
                run.status = if report.stopped_early {
                    "stopped".into()
                } else {
                    "finished".into()
                };
                run.report = Some(*report);
            }
            Event::Failed { message, .. } => run.error = Some(message),
        }
    }

    /// True while data is being loaded.
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// The method picked for the next run.
    pub fn method(&self) -> MethodKind {
        self.config.method
    }
}

impl eframe::App for TransferLabApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        training::ui(self, ui);
    }
}
