//! Command handling, once per frame after drawing: what the views queued (start a run,
//! load data, apply the advice, export…) is applied here, in order.

use super::commands::{AppCommand, View};
use super::export::{ExportKind, export_file, save_png, stem};
use super::settings::DataMode;
use super::state::TransferLabApp;
use crate::method::MethodKind;
use crate::train::{Command, DataSource};
use std::path::PathBuf;

impl TransferLabApp {
    /// Apply one queued command.
    pub(super) fn apply_command(&mut self, c: AppCommand) {
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
                    // The Data view's fields show what is loaded (e.g. "Use the closest as source").
                    for (field, path) in [
                        (&mut self.data.source_field, &source),
                        (&mut self.data.target_field, &target),
                    ] {
                        let text = path.display().to_string();
                        if field.text.trim() != text {
                            field.set(text);
                        }
                    }
                    self.load(DataSource::Folders { source, target });
                }
            }
            AppCommand::Dropped(paths) => self.on_dropped(paths),
            AppCommand::StartTraining => self.start_training(),
            AppCommand::Pause => self.runs.command(Command::Pause),
            AppCommand::Resume => self.runs.command(Command::Resume),
            AppCommand::Stop => self.runs.command(Command::Stop),
            AppCommand::ShowView(v) => self.settings.view = v,
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
        if self.settings.view == View::Predict {
            // An image dropped on the Predict view is classified, not loaded as data.
            if let Some(file) = paths.into_iter().find(|p| p.is_file()) {
                super::predict::predict_file(&self.runs, &mut self.predict, &self.ctx, file);
            }
            return;
        }
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
        let input_size = self.settings.input_size;
        match self
            .runs
            .start(config, pair, self.data.pair_id, input_size, &self.ctx)
        {
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
        c.params.clear();
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
