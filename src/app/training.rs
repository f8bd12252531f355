//! The training view: settings of the next run, Train / Pause / Stop, and live curves.

use super::state::TransferLabApp;
use crate::data::DEMOS;
use crate::method::MethodKind;
use crate::train::{Command, DataSource};
use egui_plot::{Legend, Line, Plot, PlotPoints};

/// Draw the whole (minimal) app.
pub fn ui(app: &mut TransferLabApp, ui: &mut egui::Ui) {
    egui::Panel::top("controls").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.heading("transferlab");
            ui.separator();
            let demo_label = ui.label("Demo");
            let mut demo = app.demo.clone();
            egui::ComboBox::from_id_salt("demo")
                .selected_text(&demo)
                .show_ui(ui, |ui| {
                    for d in DEMOS {
                        ui.selectable_value(&mut demo, d.name.to_string(), d.title);
                    }
                })
                .response
                .labelled_by(demo_label.id);
            if demo != app.demo && !app.run.is_running() {
                app.demo = demo.clone();
                app.config.data = DataSource::Demo { name: demo };
                app.load_data();
            }
            let method_label = ui.label("Method");
            egui::ComboBox::from_id_salt("method")
                .selected_text(app.config.method.name())
                .show_ui(ui, |ui| {
                    for m in MethodKind::ALL {
                        ui.selectable_value(&mut app.config.method, m, m.name())
                            .on_hover_text(m.summary());
                    }
                })
                .response
                .labelled_by(method_label.id);
            let freeze_label = ui.label("Freeze");
            ui.add(egui::Slider::new(&mut app.config.freeze, 0..=3))
                .labelled_by(freeze_label.id);
            let epochs_label = ui.label("Epochs");
            ui.add(egui::DragValue::new(&mut app.config.epochs).range(1..=200))
                .labelled_by(epochs_label.id);
        });
        ui.horizontal(|ui| {
            let running = app.run.is_running();
            let ready = app.pair.is_some() && !running;
            if ui
                .add_enabled(ready, egui::Button::new("▶ Train"))
                .clicked()
            {
                app.start_training();
            }
            let pause_text = if app.run.paused { "Resume" } else { "Pause" };
            if ui
                .add_enabled(running, egui::Button::new(pause_text))
                .clicked()
            {
                let c = if app.run.paused {
                    Command::Resume
                } else {
                    Command::Pause
                };
                app.command(c);
            }
            if ui
                .add_enabled(running, egui::Button::new("■ Stop"))
                .clicked()
            {
                app.command(Command::Stop);
            }
            if app.is_loading() {
                ui.spinner();
                ui.label("generating the demo…");
            } else if let Some(p) = &app.pair {
                ui.label(format!(
                    "{} source / {} target images, {} classes",
                    p.source.len(),
                    p.target.len(),
                    p.classes.len()
                ));
            }
            if let Some(e) = &app.data_error {
                ui.colored_label(egui::Color32::RED, e);
            }
        });
        if let Some((epoch, batch, batches, ips, eta)) = app.run.progress {
            let total = (app.run.epochs * batches).max(1);
            let done = (epoch - 1) * batches + batch;
            ui.add(
                egui::ProgressBar::new(done as f32 / total as f32).text(format!(
                    "epoch {epoch}/{} · {ips:.0} img/s · ETA {eta:.0} s",
                    app.run.epochs
                )),
            );
        }
        ui.label(&app.run.status);
        if let Some(e) = &app.run.error {
            ui.colored_label(egui::Color32::RED, format!("Run failed: {e}"));
        }
    });
    egui::CentralPanel::default().show(ui, |ui| {
        let h = &app.run.history;
        let src: PlotPoints = h
            .iter()
            .filter_map(|r| r.source_accuracy.map(|a| [r.epoch as f64, a]))
            .collect();
        let tgt: PlotPoints = h
            .iter()
            .filter_map(|r| r.target_accuracy.map(|a| [r.epoch as f64, a]))
            .collect();
        ui.label(format!("Epochs finished: {}", h.len()));
        Plot::new("accuracy")
            .legend(Legend::default())
            .height(ui.available_height() / 2.0)
            .include_y(0.0)
            .include_y(1.0)
            .show(ui, |plot| {
                plot.line(Line::new("source accuracy", src));
                plot.line(Line::new("target accuracy", tgt));
            });
        let losses: PlotPoints = app.run.batch_losses.iter().copied().collect();
        Plot::new("loss")
            .legend(Legend::default())
            .show(ui, |plot| plot.line(Line::new("training loss", losses)));
    });
}
