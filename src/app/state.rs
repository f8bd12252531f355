//! The app: persisted settings, the state of each view, background work, and the frame
//! loop — drain what the workers reported (time-boxed), draw the views (which only queue
//! commands), then apply the queued commands at the end of the frame.

use super::commands::{AppCommand, View};
use super::compare::{CompareState, compare_ui};
use super::data::{DataMode, DataState, data_ui};
use super::export::{ExportKind, default_export_dir, export_file, save_png, stem};
use super::feature_map::{ColourBy, Layer};
use super::frame_stats::FrameStats;
use super::help::help_ui;
use super::runs::{RunStatus, Runs};
use super::setup::{SetupState, run_problem, setup_ui};
use super::similarity::{SimilarityState, similarity_ui};
use super::task_setup::TaskData;
use super::theme::{Look, ThemeChoice, apply};
use super::thumbs::Thumbnails;
use super::training::{TrainingView, training_ui};
use crate::data::DEMOS;
use crate::method::MethodKind;
use crate::train::{Command, DataSource, ExperimentConfig};
use crossbeam_channel::{Receiver, Sender, bounded};
use egui::RichText;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where an export was written, or why it failed.
type ExportResult = Result<PathBuf, String>;

/// How long a notice stays in the run bar.
const NOTICE_SECS: u64 = 8;

/// What is remembered between sessions. Every field has a default, so saves from older
/// versions still load; a corrupt save is ignored and the defaults are used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub view: View,
    pub theme: ThemeChoice,
    pub presentation: bool,
    pub help_open: bool,
    pub data_mode: DataMode,
    pub demo: String,
    pub source_folder: String,
    pub target_folder: String,
    /// Settings of the next run (its data and save path are set when it starts).
    pub config: ExperimentConfig,
    /// Data of the multitask and zero-shot runs.
    pub tasks: TaskData,
    pub map_layer: Layer,
    pub map_colour: ColourBy,
    pub map_points: usize,
    pub export_dir: String,
    pub frame_overlay: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            view: View::Data,
            theme: ThemeChoice::Dark,
            presentation: false,
            help_open: true,
            data_mode: DataMode::Demo,
            demo: DEMOS[0].name.into(),
            source_folder: String::new(),
            target_folder: String::new(),
            config: ExperimentConfig::default(),
            tasks: TaskData::default(),
            map_layer: Layer::Pixels,
            map_colour: ColourBy::Domain,
            map_points: 400,
            export_dir: default_export_dir(),
            frame_overlay: false,
        }
    }
}

/// How the app starts (not persisted).
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Open on this demo instead of the remembered one.
    pub demo: Option<String>,
    /// Generate demos with these samples per class (source, target): small and fast, for tests.
    pub demo_size: Option<(usize, usize)>,
    /// Start from these settings instead of the defaults.
    pub settings: Option<Settings>,
}

/// A message in the run bar.
struct Notice {
    text: String,
    error: bool,
    at: Instant,
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
    pub thumbs: Thumbnails,
    pub frame_stats: FrameStats,
    commands: Vec<AppCommand>,
    notice: Option<Notice>,
    ctx: egui::Context,
    options: AppOptions,
    applied_look: Option<(ThemeChoice, bool)>,
    /// Results of PNG exports, written by the screenshot callback's thread.
    shots: (Sender<ExportResult>, Receiver<ExportResult>),
    frame_start: Option<Instant>,
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
        // Runs do not outlive a session: open where there is something to see.
        if matches!(settings.view, View::Training | View::Compare) {
            settings.view = View::Data;
        }
        let mut app = Self {
            settings,
            data: DataState::default(),
            similarity: SimilarityState::default(),
            setup: SetupState::default(),
            runs: Runs::default(),
            training: TrainingView::default(),
            compare: CompareState::default(),
            thumbs: Thumbnails::default(),
            frame_stats: FrameStats::default(),
            commands: Vec::new(),
            notice: None,
            ctx: ctx.clone(),
            options,
            applied_look: None,
            shots: bounded(4),
            frame_start: None,
        };
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

    /// Create from eframe's creation context, restoring saved settings.
    pub fn from_creation(cc: &eframe::CreationContext<'_>, demo: Option<String>) -> Self {
        let settings = cc
            .storage
            .and_then(|s| eframe::get_value::<Settings>(s, eframe::APP_KEY));
        Self::new(
            &cc.egui_ctx,
            AppOptions {
                demo,
                settings,
                ..Default::default()
            },
        )
    }

    fn load(&mut self, origin: DataSource) {
        self.data
            .start_load(&self.ctx, origin, self.options.demo_size);
    }

    fn look(&self) -> Look {
        Look {
            presentation: self.settings.presentation,
            dark: self.settings.theme == ThemeChoice::Dark,
        }
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

    fn notify(&mut self, text: impl Into<String>, error: bool) {
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

    /// Drain workers and background jobs; handle dropped folders.
    fn logic_step(&mut self, ctx: &egui::Context) {
        self.frame_start = Some(Instant::now());
        self.thumbs.begin_frame();
        let look = (self.settings.theme, self.settings.presentation);
        if self.applied_look != Some(look) {
            apply(ctx, look.0, look.1);
            self.applied_look = Some(look);
        }
        if self.data.poll(ctx) {
            self.on_new_pair();
        }
        self.runs.poll(ctx, self.settings.map_layer);
        let pair = self.data.pair().cloned();
        self.similarity.poll(
            ctx,
            pair.as_ref().map(|p| (p, self.data.pair_id)),
            self.settings.map_layer,
            self.settings.map_points,
            &self.runs,
            self.settings.config.seed,
        );
        self.setup.poll(ctx, &self.settings.config, pair.as_deref());
        self.compare.poll(&mut self.settings.export_dir);
        while let Ok(r) = self.shots.1.try_recv() {
            match r {
                Ok(p) => self.notify(format!("Saved {}", p.display()), false),
                Err(e) => self.notify(format!("Could not save the plot: {e}"), true),
            }
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if !dropped.is_empty() {
            self.commands.push(AppCommand::Dropped(dropped));
        }
        if self
            .notice
            .as_ref()
            .is_some_and(|n| n.at.elapsed() > Duration::from_secs(NOTICE_SECS))
        {
            self.notice = None;
        }
    }

    fn on_new_pair(&mut self) {
        let Some(loaded) = &self.data.loaded else {
            return;
        };
        match &loaded.origin {
            DataSource::Demo { name } => {
                self.settings.demo = name.clone();
            }
            DataSource::Folders { source, target } => {
                self.settings.source_folder = source.display().to_string();
                self.settings.target_folder = target.display().to_string();
            }
            DataSource::Folder { folder } => {
                self.settings.source_folder = folder.display().to_string();
            }
        }
        // Labelled target images cannot be asked of an unlabeled target.
        if !loaded.pair.target_labelled() {
            self.settings.config.target_labels = 0;
        }
    }

    /// Draw every panel, then apply the commands they raised.
    fn draw(&mut self, ui: &mut egui::Ui) {
        let look = self.look();
        let mut commands = std::mem::take(&mut self.commands);
        egui::Panel::top("top-bar").show(ui, |ui| {
            self.top_bar_ui(ui);
        });
        egui::Panel::top("run-bar").show(ui, |ui| {
            self.run_bar_ui(ui, look, &mut commands);
        });
        egui::CentralPanel::default().show(ui, |ui| {
            if self.settings.help_open {
                help_ui(ui, self.settings.view, &mut self.settings.help_open);
                ui.add_space(4.0);
            }
            self.view_ui(ui, look, &mut commands);
        });
        let hovering = ui.ctx().input(|i| !i.raw.hovered_files.is_empty());
        if hovering {
            drop_hint_ui(ui.ctx());
        }
        if self.settings.frame_overlay && !self.settings.presentation {
            self.frame_stats.overlay_ui(ui.ctx());
        }
        commands.append(&mut self.commands);
        for c in commands {
            self.apply_command(c);
        }
        if let Some(start) = self.frame_start.take() {
            self.frame_stats.record_ui(start.elapsed());
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading(RichText::new("transferlab").strong());
            ui.separator();
            for v in View::ALL {
                let r =
                    ui.selectable_label(self.settings.view == v, RichText::new(v.title()).strong());
                if r.clicked() {
                    self.settings.view = v;
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.toggle_value(&mut self.settings.presentation, "Presentation")
                    .on_hover_text(
                        "Large text, thick lines, high contrast, fewer controls: for a projector",
                    );
                let theme_text = match self.settings.theme {
                    ThemeChoice::Dark => "Light theme",
                    ThemeChoice::Light => "Dark theme",
                };
                if ui.button(theme_text).clicked() {
                    self.settings.theme = self.settings.theme.toggled();
                }
                ui.toggle_value(&mut self.settings.help_open, "What am I looking at?");
                if !self.settings.presentation {
                    ui.toggle_value(&mut self.settings.frame_overlay, "Frame time")
                        .on_hover_text("Show the 95th percentile of frame times");
                }
            });
        });
    }

    fn run_bar_ui(&mut self, ui: &mut egui::Ui, look: Look, commands: &mut Vec<AppCommand>) {
        ui.horizontal(|ui| {
            let blocker = self.train_blocker();
            let train = ui
                .add_enabled(
                    blocker.is_none(),
                    egui::Button::new(RichText::new("Train").strong().color(egui::Color32::WHITE))
                        .fill(if blocker.is_none() {
                            egui::Color32::from_rgb(36, 130, 70)
                        } else {
                            ui.visuals().widgets.inactive.weak_bg_fill
                        })
                        .min_size(egui::vec2(90.0, 0.0)),
                )
                .on_hover_text("Train a model with the settings of the Setup view")
                .on_disabled_hover_text(blocker.clone().unwrap_or_default());
            if train.clicked() {
                commands.push(AppCommand::StartTraining);
            }
            let live = self.runs.live();
            let paused = live.is_some_and(|r| r.status == RunStatus::Paused);
            let pause_text = if paused { "Resume" } else { "Pause" };
            if ui
                .add_enabled(live.is_some(), egui::Button::new(pause_text))
                .clicked()
            {
                commands.push(if paused {
                    AppCommand::Resume
                } else {
                    AppCommand::Pause
                });
            }
            if ui
                .add_enabled(live.is_some(), egui::Button::new("Stop"))
                .clicked()
            {
                commands.push(AppCommand::Stop);
            }
            ui.separator();
            let c = &self.settings.config;
            let extra = if c.method.is_task_method() {
                match self.settings.tasks.source {
                    super::task_setup::TaskSource::Demo => " · shapes demo",
                    super::task_setup::TaskSource::Folder => " · folder + CSV",
                }
            } else if c.stepping_stones || !c.via.is_empty() {
                " · stepping stones (epochs per hop)"
            } else {
                ""
            };
            ui.label(format!(
                "{} · {} frozen · {} epochs{extra}",
                c.method.name(),
                c.freeze,
                c.epochs
            ));
            ui.separator();
            match self.runs.live().or_else(|| self.runs.latest()) {
                Some(r) if r.status.is_live() => {
                    if let Some(p) = r.progress {
                        let total = (r.total_epochs * p.batches).max(1);
                        let done = p.epoch.saturating_sub(1) * p.batches + p.batch;
                        let text = if r.status == RunStatus::Paused {
                            format!("run #{} paused", r.id)
                        } else {
                            format!(
                                "run #{} · epoch {}/{} · {:.0} img/s · {} left",
                                r.id,
                                p.epoch,
                                r.total_epochs,
                                p.images_per_sec,
                                super::training::duration_words(p.eta_secs)
                            )
                        };
                        ui.add(
                            egui::ProgressBar::new(done as f32 / total as f32)
                                .desired_width(360.0)
                                .text(text),
                        );
                    } else {
                        ui.spinner();
                        ui.label(format!("run #{} starting…", r.id));
                    }
                }
                Some(r) => {
                    let (what, acc) = match r.config.method {
                        MethodKind::ZeroShot => ("unseen classes", r.target_accuracy()),
                        MethodKind::Multitask => ("mean over tasks", r.source_accuracy()),
                        _ => ("target accuracy", r.target_accuracy()),
                    };
                    let acc = acc
                        .map(|a| format!(": {what} {:.1}%", a * 100.0))
                        .unwrap_or_default();
                    match &r.status {
                        RunStatus::Failed(_) => {
                            ui.colored_label(
                                look.error(),
                                format!("run #{} failed (see Training)", r.id),
                            );
                        }
                        s => {
                            ui.label(format!("run #{} {}{acc}", r.id, s.word()));
                        }
                    }
                }
                None => {
                    if let Some(b) = &blocker {
                        ui.weak(format!("Train is not ready: {b}"));
                    } else {
                        ui.weak("Ready: press Train.");
                    }
                }
            }
            if let Some(n) = &self.notice {
                let colour = if n.error { look.error() } else { look.good() };
                ui.colored_label(colour, &n.text);
            }
        });
    }

    fn view_ui(&mut self, ui: &mut egui::Ui, look: Look, commands: &mut Vec<AppCommand>) {
        let presentation = self.settings.presentation;
        match self.settings.view {
            View::Data => {
                let map = self.similarity.map();
                data_ui(
                    ui,
                    &mut self.data,
                    &mut self.settings.data_mode,
                    &self.settings.demo,
                    map,
                    self.similarity.is_busy(),
                    &mut self.thumbs,
                    look,
                    commands,
                );
            }
            View::Similarity => {
                let stages: Vec<String> = self
                    .setup
                    .net
                    .as_ref()
                    .map(|n| n.stages.clone())
                    .unwrap_or_default();
                let pair = self.data.pair().cloned();
                similarity_ui(
                    ui,
                    &mut self.similarity,
                    pair.as_ref().map(|p| (p, self.data.pair_id)),
                    &mut self.settings.map_layer,
                    &mut self.settings.map_points,
                    &mut self.settings.map_colour,
                    &stages,
                    &self.runs,
                    self.settings.config.target_labels,
                    &mut self.thumbs,
                    look,
                    commands,
                );
            }
            View::Setup => {
                let pair = self.data.pair().cloned();
                let running = self.runs.is_running();
                let loaded_demo = match self.data.loaded.as_ref().map(|l| &l.origin) {
                    Some(DataSource::Demo { name }) => Some(name.clone()),
                    _ => None,
                };
                setup_ui(
                    ui,
                    &mut self.setup,
                    &mut self.settings.config,
                    &mut self.settings.tasks,
                    loaded_demo.as_deref(),
                    pair.as_deref(),
                    &self.runs,
                    running,
                    presentation,
                    look,
                );
            }
            View::Training => {
                training_ui(ui, &mut self.training, &self.runs, &mut self.thumbs, look);
            }
            View::Compare => {
                compare_ui(
                    ui,
                    &mut self.compare,
                    &self.runs,
                    &mut self.settings.export_dir,
                    presentation,
                    &mut self.thumbs,
                    look,
                    commands,
                );
            }
        }
    }

    fn apply_command(&mut self, c: AppCommand) {
        match c {
            AppCommand::LoadDemo(name) => {
                if self.runs.is_running() {
                    self.notify("Stop the run before changing the data.", true);
                } else {
                    self.load(DataSource::Demo { name });
                }
            }
            AppCommand::LoadFolders { source, target } => {
                if self.runs.is_running() {
                    self.notify("Stop the run before changing the data.", true);
                } else {
                    self.settings.data_mode = DataMode::Folders;
                    self.load(DataSource::Folders { source, target });
                }
            }
            AppCommand::Dropped(paths) => self.on_dropped(paths),
            AppCommand::StartTraining => self.start_training(),
            AppCommand::Pause => self.runs.command(Command::Pause),
            AppCommand::Resume => self.runs.command(Command::Resume),
            AppCommand::Stop => self.runs.command(Command::Stop),
            AppCommand::ShowView(v) => self.settings.view = v,
            AppCommand::Analyse => {}
            AppCommand::ApplyAdvice {
                method,
                freeze,
                target_labels,
            } => self.apply_advice(method, freeze, target_labels),
            AppCommand::UseRunAsInit(id) => {
                if let Some(r) = self.runs.get(id) {
                    self.settings.config.init = Some(r.checkpoint.clone());
                    self.setup.init_text.clear();
                    let label = r.label();
                    self.notify(
                        format!("The next run starts from the model of run {label}."),
                        false,
                    );
                    self.settings.view = View::Setup;
                }
            }
            AppCommand::Export { run, kind } => self.export(run, kind),
            AppCommand::RemoveRun(id) => self.runs.remove(id),
        }
    }

    fn on_dropped(&mut self, paths: Vec<PathBuf>) {
        let folders: Vec<PathBuf> = paths
            .into_iter()
            .map(|p| {
                if p.is_dir() {
                    p
                } else {
                    p.parent().map(PathBuf::from).unwrap_or(p)
                }
            })
            .collect();
        self.settings.data_mode = DataMode::Folders;
        self.settings.view = View::Data;
        match folders.as_slice() {
            [] => {}
            [one] => {
                // One folder: the source first, then the target.
                let field = if self.data.source_field.text.trim().is_empty()
                    || self.data.target_field.valid_path().is_some()
                        && self.data.source_field.valid_path().is_none()
                {
                    &mut self.data.source_field
                } else {
                    &mut self.data.target_field
                };
                field.set(one.display().to_string());
            }
            [s, t, ..] => {
                self.data.source_field.set(s.display().to_string());
                self.data.target_field.set(t.display().to_string());
            }
        }
    }

    fn start_training(&mut self) {
        if let Some(b) = self.train_blocker() {
            self.notify(format!("Cannot train: {b}"), true);
            return;
        }
        let (config, pair) = if self.settings.config.method.is_task_method() {
            // Multitask and zero-shot runs load their own data on the worker.
            let config = self
                .setup
                .tasks
                .run_config(&self.settings.config, &self.settings.tasks);
            (config, None)
        } else {
            let Some(loaded) = &self.data.loaded else {
                return;
            };
            let mut config = self.settings.config.clone();
            config.data = loaded.origin.clone();
            // The checkbox shows only for a demo with built-in stones.
            if let DataSource::Demo { name } = &loaded.origin {
                config.stepping_stones &= !super::task_setup::demo_stones(name).is_empty();
            } else {
                config.stepping_stones = false;
            }
            (config, Some(loaded.pair.clone()))
        };
        match self.runs.start(config, pair, self.data.pair_id, &self.ctx) {
            Ok(_) => {
                self.training.map_epoch = None;
                self.settings.view = View::Training;
            }
            Err(e) => self.notify(e, true),
        }
    }

    fn apply_advice(&mut self, method: MethodKind, freeze: usize, target_labels: Option<usize>) {
        let c = &mut self.settings.config;
        c.method = method;
        c.freeze = freeze;
        c.lambda = None;
        if let Some(k) = target_labels {
            c.target_labels = k;
        }
        let mut text = format!("Applied: {}, {} stage(s) frozen.", method.name(), freeze);
        if c.init.is_none() && (freeze > 0 || method == MethodKind::FineTune) {
            let pair_id = self.data.pair_id;
            let source_model = self.runs.records.iter().rev().find(|r| {
                r.pair_id == pair_id
                    && r.config.method == MethodKind::SourceOnly
                    && r.has_checkpoint()
                    && !r.status.is_live()
            });
            match source_model {
                Some(r) => {
                    c.init = Some(r.checkpoint.clone());
                    text.push_str(&format!(" Starting from the model of run {}.", r.label()));
                }
                None => text.push_str(
                    " Train a source-only run first: its model is what gets frozen and fine-tuned.",
                ),
            }
        }
        self.notify(text, false);
        self.settings.view = View::Setup;
    }

    fn export(&mut self, id: usize, kind: ExportKind) {
        let Some(run) = self.runs.get(id) else { return };
        let dir = PathBuf::from(self.settings.export_dir.trim());
        if self.settings.export_dir.trim().is_empty() {
            self.notify("Type an export folder first.", true);
            return;
        }
        if kind == ExportKind::CurvesPng {
            let Some(rect) = self.compare.curves_rect else {
                self.notify("Open the Compare view to export its curves.", true);
                return;
            };
            let path = dir.join(format!("{}-curves.png", stem(run)));
            let tx = self.shots.0.clone();
            let ctx = self.ctx.clone();
            let ppp = self.ctx.pixels_per_point();
            self.ctx.request_screenshot(move |image| {
                // Encode off the UI thread.
                let _ = std::thread::Builder::new()
                    .name("transferlab-png".into())
                    .spawn(move || {
                        let _ = tx.send(save_png(&image, rect, ppp, &path));
                        ctx.request_repaint();
                    });
            });
            return;
        }
        match export_file(run, kind, &dir) {
            Ok(p) => self.notify(format!("Saved {}", p.display()), false),
            Err(e) => self.notify(format!("Export failed: {e}"), true),
        }
    }
}

fn drop_hint_ui(ctx: &egui::Context) {
    let screen = ctx.content_rect();
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop-hint"),
    ));
    painter.rect_filled(screen, 0.0, egui::Color32::from_black_alpha(160));
    painter.text(
        screen.center(),
        egui::Align2::CENTER_CENTER,
        "Drop folders here: the first is the source, the second the target",
        egui::FontId::proportional(24.0),
        egui::Color32::WHITE,
    );
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
        eframe::set_value(storage, eframe::APP_KEY, &s);
    }
}
