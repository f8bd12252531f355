//! Drawing, once per frame: the tab bar, the run bar and the current view, each handed
//! the frame's [`ViewContext`]; the commands they queue are applied at the end.

use super::commands::{AppCommand, View};
use super::compare::compare_ui;
use super::context::ViewContext;
use super::data::data_ui;
use super::format::duration_words;
use super::help::help_ui;
use super::predict::predict_ui;
use super::runs::RunStatus;
use super::setup::setup_ui;
use super::similarity::similarity_ui;
use super::state::TransferLabApp;
use super::task_setup::TaskSource;
use super::theme::{Look, ThemeChoice};
use super::training::training_ui;
use crate::method::MethodKind;
use crate::train::DataSource;
use egui::RichText;

impl TransferLabApp {
    /// Draw every panel, then apply the commands they raised.
    pub(super) fn draw(&mut self, ui: &mut egui::Ui) {
        let look = self.look();
        let mut commands = std::mem::take(&mut self.commands);
        egui::Panel::top("top-bar").show(ui, |ui| {
            self.top_bar_ui(ui);
        });
        egui::Panel::top("run-bar").show(ui, |ui| {
            self.run_bar_ui(ui, look, &mut commands);
        });
        if let Some(text) = super::saved_state::reset_notice(&self.saved_resets) {
            egui::Panel::top("saved-state-reset").show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(look.warn(), text);
                    if ui.button("OK").clicked() {
                        self.saved_resets.clear();
                    }
                });
            });
        }
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
                    TaskSource::Demo => " · shapes demo",
                    TaskSource::Folder => " · folder + CSV",
                }
            } else if c.stepping_stones || !c.via.is_empty() {
                " · stepping stones (epochs per hop)"
            } else {
                ""
            };
            ui.label(format!(
                "{} · {} frozen · {}{extra}",
                c.method.name(),
                c.freeze,
                super::format::count_of(c.epochs, "epoch")
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
                                duration_words(p.eta_secs)
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
        let view = self.settings.view;
        let loaded_demo = match self.data.loaded.as_ref().map(|l| &l.origin) {
            Some(DataSource::Demo { name }) => Some(name.clone()),
            _ => None,
        };
        let stages: Vec<String> = self
            .setup
            .net
            .as_ref()
            .map(|n| n.stages.clone())
            .unwrap_or_default();
        let mut ctx = ViewContext {
            pair: self.data.pair().cloned(),
            pair_id: self.data.pair_id,
            settings: &mut self.settings,
            runs: &self.runs,
            thumbs: &mut self.thumbs,
            look,
            commands,
        };
        match view {
            View::Data => {
                let map = self.similarity.map();
                let busy = self.similarity.is_busy();
                data_ui(ui, &mut ctx, &mut self.data, map, busy);
            }
            View::Similarity => similarity_ui(ui, &mut ctx, &mut self.similarity, &stages),
            View::Setup => setup_ui(ui, &mut ctx, &mut self.setup, loaded_demo.as_deref()),
            View::Training => training_ui(ui, &mut ctx, &mut self.training),
            View::Compare => compare_ui(ui, &mut ctx, &mut self.compare),
            View::Predict => predict_ui(ui, &mut ctx, &mut self.predict),
        }
    }
}

/// The dark overlay while folders are dragged over the window.
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
