//! The app: persisted settings, the state of each view and background work. A frame is
//! `poll` (drain what the workers reported, time-boxed), `draw` (the views only queue
//! commands), then `command_handling` (apply the queue at the end of the frame).

use super::commands::{AppCommand, View};
use super::compare::CompareState;
use super::data::DataState;
use super::frame_stats::FrameStats;
use super::predict::PredictState;
use super::runs::Runs;
use super::saved_state::{Reset, SavedState};
use super::settings::{DataMode, Settings};
use super::setup::{SetupState, run_problem};
use super::similarity::SimilarityState;
use super::theme::{Look, ThemeChoice};
use super::thumbs::Thumbnails;
use super::training::TrainingView;
use crate::data::DEMOS;
use crate::train::DataSource;
use crossbeam_channel::{Receiver, Sender, bounded};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where an export was written, or why it failed.
pub(super) type ExportResult = Result<PathBuf, String>;

/// How long a notice stays in the run bar.
pub(super) const NOTICE_SECS: u64 = 8;

/// How the app starts (not persisted).
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Open on this demo instead of the remembered one.
    pub demo: Option<String>,
    /// Generate demos with these samples per class (source, target): small and fast, for tests.
    pub demo_size: Option<(usize, usize)>,
    /// Start from these settings instead of the defaults.
    pub settings: Option<Settings>,
    /// What was reset when the saved state was read: shown once, and the saved file is
    /// left as it is until the user changes something.
    pub resets: Vec<Reset>,
    /// Keep ended runs in this folder and read back those saved there (None: runs last
    /// one session; tests give a temporary folder).
    pub runs_dir: Option<PathBuf>,
}

/// A message in the run bar.
pub(super) struct Notice {
    pub text: String,
    pub error: bool,
    pub at: Instant,
}

/// The application.
pub struct TransferLabApp {
    pub settings: Settings,
    pub data: DataState,
    pub similarity: SimilarityState,
    pub setup: SetupState,
    pub runs: Runs,
    pub training: TrainingView,
    pub compare: CompareState,
    pub predict: PredictState,
    pub thumbs: Thumbnails,
    pub frame_stats: FrameStats,
    pub(super) commands: Vec<AppCommand>,
    pub(super) notice: Option<Notice>,
    pub(super) ctx: egui::Context,
    pub(super) options: AppOptions,
    pub(super) applied_look: Option<(ThemeChoice, bool)>,
    /// Results of PNG exports, written by the screenshot callback's thread.
    pub(super) shots: (Sender<ExportResult>, Receiver<ExportResult>),
    pub(super) frame_start: Option<Instant>,
    /// What was reset in the saved state, until the user dismisses the notice.
    pub(super) saved_resets: Vec<Reset>,
    /// After a reset: the settings as they would be saved at start; while they are
    /// unchanged nothing is written over the saved file.
    saved_baseline: Option<Settings>,
}

impl TransferLabApp {
    /// A new app; it starts loading its data at once.
    pub fn new(ctx: &egui::Context, options: AppOptions) -> Self {
        let mut settings = options.settings.clone().unwrap_or_default();
        if let Some(d) = &options.demo {
            settings.demo = d.clone();
            settings.data_mode = DataMode::Demo;
        }
        if !DEMOS.iter().any(|d| d.name == settings.demo) {
            settings.demo = DEMOS[0].name.into();
        }
        // A starting model from an earlier session may be gone (run models are temporary).
        if settings.config.init.as_ref().is_some_and(|p| !p.is_file()) {
            settings.config.init = None;
        }
        settings.config.save = None;
        let mut runs = Runs::default();
        if let Some(dir) = &options.runs_dir {
            super::saved_runs::restore(&mut runs, dir);
        }
        // No run trains at start: open where there is something to see.
        if settings.view == View::Training
            || settings.view == View::Compare && runs.records.is_empty()
        {
            settings.view = View::Data;
        }
        let mut app = Self {
            settings,
            data: DataState::default(),
            similarity: SimilarityState::default(),
            setup: SetupState::default(),
            runs,
            training: TrainingView::default(),
            compare: CompareState::default(),
            predict: PredictState::default(),
            thumbs: Thumbnails::default(),
            frame_stats: FrameStats::default(),
            commands: Vec::new(),
            notice: None,
            ctx: ctx.clone(),
            options,
            applied_look: None,
            shots: bounded(4),
            frame_start: None,
            saved_resets: Vec::new(),
            saved_baseline: None,
        };
        if !app.options.resets.is_empty() {
            app.saved_resets = app.options.resets.clone();
            app.saved_baseline = Some(app.settings_to_save());
        }
        if let Some(first) = app.runs.saved_problems.first() {
            let more = app.runs.saved_problems.len() - 1;
            let text = if more > 0 {
                format!("{first} (and {more} more: see Compare)")
            } else {
                first.clone()
            };
            app.notify(text, true);
        }
        if let Some(init) = &app.settings.config.init {
            app.setup.init_text = init.display().to_string();
        }
        app.setup
            .tasks
            .restore(&app.settings.tasks, &app.settings.config.via);
        app.data
            .source_field
            .set(app.settings.source_folder.clone());
        app.data
            .target_field
            .set(app.settings.target_folder.clone());
        let folders = (app.settings.data_mode == DataMode::Folders)
            .then(|| {
                let s = PathBuf::from(app.settings.source_folder.trim());
                let t = PathBuf::from(app.settings.target_folder.trim());
                (s.is_dir() && t.is_dir()).then_some((s, t))
            })
            .flatten();
        match folders {
            Some((source, target)) => app.load(DataSource::Folders { source, target }),
            None => app.load(DataSource::Demo {
                name: app.settings.demo.clone(),
            }),
        }
        app
    }

    /// Create from eframe's creation context with the settings read back (and checked)
    /// from the saved state.
    pub fn from_creation(
        cc: &eframe::CreationContext<'_>,
        demo: Option<String>,
        saved: SavedState,
        runs_dir: Option<PathBuf>,
    ) -> Self {
        Self::new(
            &cc.egui_ctx,
            AppOptions {
                demo,
                settings: saved.settings,
                resets: saved.resets,
                runs_dir,
                ..Default::default()
            },
        )
    }

    /// The settings as the next session should get them.
    fn settings_to_save(&self) -> Settings {
        let mut s = self.settings.clone();
        // Run models are temporary files: do not point the next session at them.
        if s.config
            .init
            .as_ref()
            .is_some_and(|p| p.starts_with(self.runs.temp_dir()))
        {
            s.config.init = None;
        }
        s.config.save = None;
        s
    }

    /// Whether the saved file is still being left as it was: something in it was reset
    /// and the user has changed nothing since.
    pub fn keeps_saved_file(&self) -> bool {
        self.saved_baseline
            .as_ref()
            .is_some_and(|b| *b == self.settings_to_save())
    }

    /// Start loading `origin`, images at the side the settings ask for.
    pub(super) fn load(&mut self, origin: DataSource) {
        self.setup.refresh_init_side(&self.settings.config);
        let hint = self.wanted_shape();
        self.data
            .start_load(&self.ctx, origin, hint, self.options.demo_size);
    }

    /// The side and channels to load images at: the Setup view's side, and the channel
    /// count the chosen backbone takes if it takes only one (EfficientNet-Lite0: RGB, so
    /// gray images are repeated to three channels), else what the images are.
    pub(super) fn wanted_shape(&self) -> crate::train::load::ShapeHint {
        let config = &self.settings.config;
        crate::train::load::ShapeHint {
            size: self.setup.wanted_side(config, self.settings.input_size),
            channels: config.backbone.and_then(super::setup::fixed_channels),
            flat_source: config.method.labelled_data() == crate::method::LabelledData::None,
        }
    }

    pub(super) fn look(&self) -> Look {
        Look {
            presentation: self.settings.presentation,
            dark: self.settings.theme == ThemeChoice::Dark,
        }
    }

    /// The background work the views are waiting for (data, folder checks, analysis,
    /// network summary, live map), by name; empty when the views are settled.
    pub fn pending_work(&self) -> Vec<&'static str> {
        [
            (self.data.is_loading(), "loading data"),
            (
                self.data.source_field.is_scanning() || self.data.target_field.is_scanning(),
                "checking folders",
            ),
            (self.similarity.is_busy(), "similarity analysis"),
            (self.setup.is_busy(), "network summary"),
            (self.runs.map_busy(), "live feature map"),
            (self.predict.is_busy(), "prediction"),
        ]
        .into_iter()
        .filter_map(|(busy, what)| busy.then_some(what))
        .collect()
    }

    /// Why Train is disabled, if it is.
    pub fn train_blocker(&self) -> Option<String> {
        if self.runs.is_running() {
            return Some("a run is training".into());
        }
        // Multitask and zero-shot runs bring their own data.
        if self.data.is_loading() && !self.settings.config.method.is_task_method() {
            return Some("the data is still loading".into());
        }
        run_problem(
            &self.settings.config,
            self.data.pair().map(|p| p.as_ref()),
            &self.setup.tasks,
            &self.settings.tasks,
        )
    }

    pub(super) fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
            at: Instant::now(),
        });
        self.ctx
            .request_repaint_after(Duration::from_secs(NOTICE_SECS));
    }

    /// One whole frame: background work, drawing, commands. Used by tests; eframe calls
    /// the same parts through `logic` and `ui`.
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.logic_step(&ctx);
        self.draw(ui);
    }
}

impl eframe::App for TransferLabApp {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        if let Some(cpu) = frame.info().cpu_usage {
            self.frame_stats.record_cpu(cpu);
        }
        self.logic_step(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.keeps_saved_file() {
            return;
        }
        self.saved_baseline = None;
        eframe::set_value(storage, eframe::APP_KEY, &self.settings_to_save());
    }

    fn persist_egui_memory(&self) -> bool {
        // The zoom and layout go with the settings: kept as saved until the user changes something.
        !self.keeps_saved_file()
    }
}
