//! The training view (journey 5): live curves (loss, source and target accuracy, the
//! method's own figures such as MMD² or the domain classifier's accuracy), progress with
//! ETA and images/s, and the feature map recomputed after every epoch, so the two domains
//! can be seen moving together.

use super::feature_map::{ColourBy, map_ui};
use super::frame_stats::percentile;
use super::runs::{RunRecord, RunStatus, Runs};
use super::theme::Look;
use super::thumbs::Thumbnails;
use egui::RichText;
use egui_plot::{HLine, Line, Plot, PlotPoints, Points};

/// Transient state of the view.
#[derive(Default)]
pub struct TrainingView {
    /// Epoch of the map to show; None = the latest.
    pub map_epoch: Option<usize>,
    pub colour_by: ColourBy,
}

/// Draw the training view for the live (or latest) run.
pub fn training_ui(
    ui: &mut egui::Ui,
    view: &mut TrainingView,
    runs: &Runs,
    thumbs: &mut Thumbnails,
    look: Look,
) {
    let Some(run) = runs.live().or_else(|| runs.latest()) else {
        ui.add_space(20.0);
        ui.heading("No run yet");
        ui.label("Press Train (top left) to train with the settings of the Setup view. The curves and the feature map appear here as training goes.");
        return;
    };
    run_header_ui(ui, run, look);
    ui.separator();
    let map_w = (ui.available_width() * 0.38).clamp(260.0, 620.0);
    let (mut left, mut right) = super::widgets::split_right(ui, map_w);
    // On a small screen (or in presentation mode) the plots keep a readable height and scroll.
    let avail = left.available_height();
    egui::ScrollArea::vertical()
        .id_salt("curves")
        .auto_shrink([false, false])
        .show(&mut left, |ui| {
            ui.set_min_height(avail);
            curves_ui(ui, run, look, avail);
        });
    live_map_ui(&mut right, view, runs, run, thumbs, look);
}

fn run_header_ui(ui: &mut egui::Ui, run: &RunRecord, look: Look) {
    ui.horizontal_wrapped(|ui| {
        ui.heading(format!("Run {}", run.label()));
        ui.label(format!(
            "· {}",
            super::theme::plain(&run.config.data.describe())
        ));
        if run.total_params > 0 {
            ui.label(format!(
                "· {} of {} parameters trainable · on {}",
                super::setup::thousands(run.trainable_params),
                super::setup::thousands(run.total_params),
                run.device
            ));
        }
    });
    let epochs = run.config.epochs;
    match &run.status {
        RunStatus::Starting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("preparing the run…");
            });
        }
        RunStatus::Failed(e) => super::widgets::error_box_ui(
            ui,
            look,
            "The run failed",
            &format!(
                "{} — change the settings in Setup (e.g. a smaller learning rate) and press Train again.",
                super::setup::gui_words(e)
            ),
        ),
        status => {
            if let Some(p) = run.progress {
                let total = (epochs * p.batches).max(1);
                let done = if matches!(status, RunStatus::Finished) {
                    total
                } else {
                    p.epoch.saturating_sub(1) * p.batches + p.batch
                };
                let text = match status {
                    RunStatus::Finished => format!(
                        "finished {} epochs in {:.0} s",
                        run.history.len(),
                        run.elapsed_secs
                    ),
                    RunStatus::Stopped => format!("stopped after {} epoch(s)", run.history.len()),
                    RunStatus::Paused => format!("paused in epoch {}/{epochs}", p.epoch),
                    _ => format!(
                        "epoch {}/{epochs} · batch {}/{} · {:.0} images/s · about {} left",
                        p.epoch,
                        p.batch,
                        p.batches,
                        p.images_per_sec,
                        duration_words(p.eta_secs)
                    ),
                };
                ui.add(egui::ProgressBar::new(done as f32 / total as f32).text(text));
            }
        }
    }
    for w in &run.warnings {
        ui.colored_label(look.warn(), super::setup::gui_words(w));
    }
}

/// "42 s", "3 min 5 s".
pub fn duration_words(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    let s = secs.round() as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

fn curves_ui(ui: &mut egui::Ui, run: &RunRecord, look: Look, avail: f32) {
    let width = look.line_width();
    let keys: Vec<String> = {
        let mut k: Vec<String> = run
            .history
            .iter()
            .flat_map(|r| r.metrics.keys().cloned())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    let plots = if keys.is_empty() { 2.0 } else { 3.0 };
    // Each plot has a title row with its key above it, and an epoch axis below.
    let row = ui.text_style_height(&egui::TextStyle::Body);
    let h = ((avail - (1.6 * row + 8.0) * plots - 2.5 * row) / plots).max(130.0);
    let link = egui::Id::unique("training-x");
    let max_x = run.config.epochs as f64;
    key_row_ui(
        ui,
        "Loss",
        &[
            ("batch loss", look.source().gamma_multiply(0.6)),
            ("epoch loss", look.source()),
        ],
    );
    Plot::new("loss-plot")
        .height(h)
        .link_axis(link, [true, false])
        .y_axis_min_width(40.0)
        .include_x(0.0)
        .include_x(max_x)
        .include_y(0.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
        .show(ui, |plot| {
            // The first batches' loss can be ten times the rest: scale the axis to the
            // bulk of the curve (95th percentile) so its fall stays visible.
            if let Some(p95) = percentile(run.batch_losses.iter().map(|p| p.y as f32), 0.95) {
                let top = run
                    .history
                    .iter()
                    .map(|r| r.train_loss)
                    .fold(p95 as f64, f64::max);
                if top.is_finite() && top > 0.0 {
                    plot.set_plot_bounds_y(0.0..=top * 1.15);
                }
            }
            plot.line(
                Line::new("batch loss", PlotPoints::Borrowed(&run.batch_losses))
                    .width(width * 0.6)
                    .color(look.source().gamma_multiply(0.6)),
            );
            let epoch_loss: Vec<[f64; 2]> = run
                .history
                .iter()
                .map(|r| [r.epoch as f64, r.train_loss])
                .collect();
            plot.line(
                Line::new("epoch loss", epoch_loss.clone())
                    .width(width)
                    .color(look.source()),
            );
            plot.points(
                Points::new("epoch loss", epoch_loss)
                    .radius(width * 1.5)
                    .color(look.source()),
            );
        });
    key_row_ui(
        ui,
        "Accuracy",
        &[
            ("source accuracy", look.source()),
            ("target accuracy", look.target()),
        ],
    );
    Plot::new("accuracy-plot")
        .height(h)
        .link_axis(link, [true, false])
        .y_axis_min_width(40.0)
        .include_x(0.0)
        .include_x(max_x)
        .include_y(0.0)
        .include_y(1.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
        .show(ui, |plot| {
            for (name, target) in [("source accuracy", false), ("target accuracy", true)] {
                let pts: Vec<[f64; 2]> = run
                    .history
                    .iter()
                    .filter_map(|r| {
                        let a = if target {
                            r.target_accuracy
                        } else {
                            r.source_accuracy
                        };
                        a.map(|a| [r.epoch as f64, a])
                    })
                    .collect();
                plot.line(
                    Line::new(name, pts.clone())
                        .width(width)
                        .color(look.domain(target)),
                );
                plot.points(
                    Points::new(name, pts)
                        .radius(width * 1.5)
                        .color(look.domain(target)),
                );
            }
        });
    if !keys.is_empty() {
        let mut entries: Vec<(&str, egui::Color32)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), look.class(i + 2)))
            .collect();
        if keys
            .iter()
            .any(|k| k.contains("domain") && k.contains("acc"))
        {
            entries.push(("chance (0.5)", egui::Color32::GRAY));
        }
        key_row_ui(ui, "The method's own figures", &entries);
        Plot::new("method-plot")
            .height(h)
            .link_axis(link, [true, false])
            .y_axis_min_width(40.0)
            .include_x(0.0)
            .include_x(max_x)
            .include_y(0.0)
            .x_axis_label("epoch")
            .allow_scroll(false)
            .show(ui, |plot| {
                for (i, k) in keys.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = run
                        .history
                        .iter()
                        .filter_map(|r| r.metrics.get(k).map(|v| [r.epoch as f64, *v]))
                        .collect();
                    plot.line(
                        Line::new(k.as_str(), pts.clone())
                            .width(width)
                            .color(look.class(i + 2)),
                    );
                    plot.points(
                        Points::new(k.as_str(), pts)
                            .radius(width * 1.5)
                            .color(look.class(i + 2)),
                    );
                    if k.contains("domain") && k.contains("acc") {
                        plot.hline(
                            HLine::new("chance (0.5)", 0.5)
                                .color(egui::Color32::GRAY)
                                .width(1.0),
                        );
                    }
                }
            });
        if keys
            .iter()
            .any(|k| k.contains("domain") && k.contains("acc"))
        {
            ui.weak("The domain classifier's accuracy falling toward 0.5 means it can no longer tell source from target features.");
        }
    }
}

fn live_map_ui(
    ui: &mut egui::Ui,
    view: &mut TrainingView,
    runs: &Runs,
    run: &RunRecord,
    thumbs: &mut Thumbnails,
    look: Look,
) {
    ui.heading("Feature map, live");
    ui.horizontal(|ui| {
        ui.label("Colour by");
        ui.selectable_value(&mut view.colour_by, ColourBy::Domain, "domain");
        ui.selectable_value(&mut view.colour_by, ColourBy::Class, "class");
    });
    if run.maps.is_empty() {
        if runs.map_busy() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("computing the map…");
            });
        } else if let Some(e) = &runs.map_error {
            ui.colored_label(look.error(), format!("No map: {}", super::theme::plain(e)));
        } else {
            ui.weak("The map appears after the first epoch: the network's features for a sample of both domains, projected to 2-D.");
        }
        return;
    }
    let last = run.maps.len() - 1;
    let mut idx = view
        .map_epoch
        .and_then(|e| run.maps.iter().position(|(ep, _)| *ep == e))
        .unwrap_or(last);
    if run.maps.len() > 1 {
        ui.horizontal(|ui| {
            let l = ui.label("Epoch");
            let mut epoch_ix = idx;
            ui.add(
                egui::Slider::new(&mut epoch_ix, 0..=last)
                    .custom_formatter(|v, _| {
                        run.maps
                            .get(v as usize)
                            .map(|(e, _)| e.to_string())
                            .unwrap_or_default()
                    })
                    .show_value(true),
            )
            .labelled_by(l.id);
            if epoch_ix != idx {
                idx = epoch_ix;
                view.map_epoch = (idx != last).then(|| run.maps[idx].0);
            }
            if view.map_epoch.is_some() && ui.button("latest").clicked() {
                view.map_epoch = None;
                idx = last;
            }
        });
    }
    let (epoch, map) = &run.maps[idx];
    let when = if *epoch == 0 {
        "Before training".to_string()
    } else {
        format!("After epoch {epoch}")
    };
    ui.label(format!("{when}: {} of {}", map.projection, map.layer_name));
    let h = (ui.available_height() - 50.0).max(200.0);
    map_ui(
        ui,
        "live-map-plot",
        map,
        &run.pair,
        run.pair_id,
        view.colour_by,
        look,
        thumbs,
        h,
    );
    if runs.map_busy() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.weak("updating…");
        });
    }
}

/// A plot's title with its colour key, in one row above the plot (a legend inside a
/// short plot would hide the curves).
fn key_row_ui(ui: &mut egui::Ui, title: &str, entries: &[(&str, egui::Color32)]) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(title).strong());
        for (name, colour) in entries {
            ui.add_space(8.0);
            let h = ui.text_style_height(&egui::TextStyle::Body);
            let (rect, _) = ui.allocate_exact_size(egui::vec2(h * 0.9, h), egui::Sense::hover());
            ui.painter().line_segment(
                [rect.left_center(), rect.right_center()],
                egui::Stroke::new(3.0, *colour),
            );
            ui.label(*name);
        }
    });
}
