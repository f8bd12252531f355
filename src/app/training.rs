//! The training view (journey 5): live curves (loss, source and target accuracy, the
//! method's own figures such as MMD² or the domain classifier's accuracy), progress with
//! ETA and images/s, and the feature map recomputed after every epoch, so the two domains
//! can be seen moving together.

use super::context::ViewContext;
use super::feature_map::{ColourBy, MapPlot, map_ui};
use super::format;
use super::frame_stats::percentile;
use super::runs::{RunKind, RunRecord, RunStatus, is_direct};
use super::theme::Look;
use crate::method::domain_classifier::DOMAIN_ACCURACY;
use crate::train::EpochRecord;
use crate::train::results::{Metric, Phase, SOURCE_ACCURACY, TARGET_ACCURACY};
use egui::RichText;
use egui_plot::{HLine, Line, LineStyle, Plot, PlotPoint, PlotPoints, PlotUi, Points, Text, VLine};

/// Transient state of the view.
#[derive(Default)]
pub struct TrainingView {
    /// Epoch of the map to show; None = the latest.
    pub map_epoch: Option<usize>,
    pub colour_by: ColourBy,
}

/// Draw the training view for the live (or latest) run.
pub fn training_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, view: &mut TrainingView) {
    let (runs, look) = (ctx.runs, ctx.look);
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
    match &run.pair {
        Some(pair) if !run.config.method.is_task_method() => {
            live_map_ui(&mut right, ctx, view, run, pair)
        }
        _ => task_side_ui(&mut right, run, look),
    }
}

/// The batch loss's colour: neutral, so the epoch loss (the domain's colour) stands out.
const BATCH_LOSS_GRAY: egui::Color32 = egui::Color32::from_gray(140);

/// The right pane of a multitask or zero-shot run (they have no map of the loaded domains).
fn task_side_ui(ui: &mut egui::Ui, run: &RunRecord, look: Look) {
    if run.config.method == crate::method::MethodKind::Multitask {
        ui.heading("Per task");
        super::task_results::multitask_table_ui(
            ui,
            &super::task_results::multitask_rows(run),
            look,
        );
    } else {
        ui.heading("Seen and unseen classes");
        super::task_results::zero_shot_live_ui(ui, run, look);
    }
    ui.add_space(8.0);
    ui.weak("The full results (and, for zero-shot, the attribute table and the picked image's attributes) are in the Compare view.");
}

fn run_header_ui(ui: &mut egui::Ui, run: &RunRecord, look: Look) {
    ui.horizontal_wrapped(|ui| {
        ui.heading(format!("Run {}", run.label()));
        ui.label(format!(
            "· {} · {}",
            super::theme::plain(&run.config.data.describe()),
            run.facts.start.words()
        ));
        if run.network.total_params > 0 {
            ui.label(format!(
                "· {} of {} parameters trainable · on {}",
                format::thousands(run.network.trainable_params),
                format::thousands(run.network.total_params),
                run.network.device
            ));
        }
    });
    let epochs = run.total_epochs;
    match &run.status {
        RunStatus::Starting => {
            ui.horizontal(|ui| {
                ui.spinner();
                match &run.preparing {
                    Some((what, done, total)) if *total > 0 => {
                        ui.label(format!(
                            "preparing the run: {what}, {} of {}",
                            format::thousands(*done),
                            format::thousands(*total)
                        ));
                        ui.add(
                            egui::ProgressBar::new(*done as f32 / *total as f32)
                                .desired_width(160.0),
                        );
                    }
                    _ => {
                        ui.label("preparing the run…");
                    }
                }
            });
        }
        RunStatus::Failed(e) => super::widgets::error_box_ui(
            ui,
            look,
            "The run failed",
            &format!(
                "{} — change the settings in Setup (e.g. a smaller learning rate) and press Train again.",
                super::theme::plain(e)
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
                        "finished {} in {:.0} s",
                        format::count_of(run.history.len(), "epoch"),
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
                        format::duration_words(p.eta_secs)
                    ),
                };
                ui.add(egui::ProgressBar::new(done as f32 / total as f32).text(text));
            }
        }
    }
    for w in &run.warnings {
        ui.colored_label(look.warn(), super::theme::plain(w));
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
    let max_x = run.total_epochs as f64;
    key_row_ui(
        ui,
        "Loss",
        &[
            ("batch loss", BATCH_LOSS_GRAY),
            ("epoch loss", look.source()),
        ],
    );
    epoch_plot("loss-plot", h, link, max_x).show(ui, |plot| {
        // The first batches' loss can be a hundred times the rest: show the whole curve,
        // its start included, unless a spike would squash the bulk of it (then up to
        // three times its 95th percentile).
        if let Some(p95) = percentile(run.batch_losses.iter().map(|p| p.y as f32), 0.95) {
            let highest = run.batch_losses.iter().map(|p| p.y).fold(0.0, f64::max);
            let top = run
                .history
                .iter()
                .map(|r| r.train_loss)
                .fold(highest.min(3.0 * p95 as f64), f64::max);
            if top.is_finite() && top > 0.0 {
                plot.set_plot_bounds_y(0.0..=top * 1.15);
            }
        }
        plot.line(
            Line::new("batch loss", PlotPoints::Borrowed(&run.batch_losses))
                .width(width * 0.6)
                .color(BATCH_LOSS_GRAY),
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
    let accuracy_plot = epoch_plot("accuracy-plot", h, link, max_x).include_y(1.0);
    match run.kind() {
        RunKind::Multitask => multitask_accuracy_ui(ui, run, look, accuracy_plot),
        RunKind::SteppingStones => stepping_accuracy_ui(ui, run, look, accuracy_plot),
        kind => {
            let zero_shot = kind == RunKind::ZeroShot;
            let (source, target) = (run.metric(SOURCE_ACCURACY), run.metric(TARGET_ACCURACY));
            let names = [source.label.as_ref(), target.label.as_ref()];
            let chance = target.chance;
            let chance_name = chance.map(|c| format!("chance ({})", format::chance(c)));
            let mut entries = vec![(names[0], look.source()), (names[1], look.target())];
            if let Some(n) = &chance_name {
                entries.push((n.as_str(), egui::Color32::GRAY));
            }
            key_row_ui(ui, "Accuracy", &entries);
            accuracy_plot.show(ui, |plot| {
                for (name, target) in [(names[0], false), (names[1], true)] {
                    let pts = points(run, |r| {
                        if target {
                            r.target_accuracy
                        } else {
                            r.source_accuracy
                        }
                    });
                    plot_series(plot, name, pts, look.domain(target), width, false);
                }
                if let (Some(c), Some(n)) = (chance, &chance_name) {
                    plot.hline(
                        HLine::new(n.as_str(), c)
                            .color(egui::Color32::GRAY)
                            .width(1.5)
                            .style(LineStyle::dashed_dense()),
                    );
                }
            });
            if zero_shot {
                ui.weak("Seen classes: held-out images of classes seen in training. Unseen classes: images of classes never seen, named by their attributes; the grey line is chance.");
            }
        }
    }
    if !keys.is_empty() {
        let metrics: Vec<Metric> = keys.iter().map(|k| run.metric(k)).collect();
        let mut entries: Vec<(&str, egui::Color32)> = metrics
            .iter()
            .enumerate()
            .map(|(i, m)| (m.label.as_ref(), look.class(i + 2)))
            .collect();
        let chances: Vec<(f64, String)> = {
            let mut c: Vec<(f64, String)> = metrics
                .iter()
                .filter_map(|m| m.chance)
                .map(|c| (c, format!("chance ({})", format::chance(c))))
                .collect();
            c.sort_by(|a, b| a.0.total_cmp(&b.0));
            c.dedup_by(|a, b| a.0 == b.0);
            c
        };
        for (_, name) in &chances {
            entries.push((name.as_str(), egui::Color32::GRAY));
        }
        key_row_ui(ui, "The method's own figures", &entries);
        epoch_plot("method-plot", h, link, max_x).show(ui, |plot| {
            for (i, m) in metrics.iter().enumerate() {
                let pts = points(run, |r| r.metrics.get(m.key.as_ref()).copied());
                plot_series(plot, &m.label, pts, look.class(i + 2), width, false);
            }
            for (c, name) in &chances {
                plot.hline(
                    HLine::new(name.as_str(), *c)
                        .color(egui::Color32::GRAY)
                        .width(1.0),
                );
            }
        });
        if metrics.iter().any(|m| m.key == DOMAIN_ACCURACY.key) {
            ui.weak("The domain classifier's accuracy falling toward 0.5 means it can no longer tell source from target features.");
        }
    }
}

fn live_map_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    view: &mut TrainingView,
    run: &RunRecord,
    pair: &crate::data::DomainPair,
) {
    let (runs, look) = (ctx.runs, ctx.look);
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
    if run.kind() == RunKind::SteppingStones {
        ui.weak("Stepping stones: the map follows the model in the last hop (towards the target); the direct run is not mapped.");
    }
    let h = (ui.available_height() - 50.0).max(200.0);
    let plot = MapPlot {
        id: "live-map-plot",
        map,
        pair,
        pair_id: run.pair_id,
        colour_by: view.colour_by,
        height: h,
        spread: None,
    };
    map_ui(ui, &plot, ctx.thumbs, look);
    if runs.map_busy() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.weak("updating…");
        });
    }
}

/// A plot over the run's epochs (0 to `max_x`), its x axis linked to the others by `link`.
fn epoch_plot(id: &str, height: f32, link: egui::Id, max_x: f64) -> Plot<'static> {
    Plot::new(id)
        .height(height)
        .link_axis(link, [true, false])
        .y_axis_min_width(40.0)
        .include_x(0.0)
        .include_x(max_x)
        .include_y(0.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
}

/// A plot's title with its colour key, in one row above the plot (a legend inside a
/// short plot would hide the curves).
fn key_row_ui(ui: &mut egui::Ui, title: &str, entries: &[(&str, egui::Color32)]) {
    let styled: Vec<(&str, egui::Color32, bool)> =
        entries.iter().map(|(n, c)| (*n, *c, false)).collect();
    styled_key_row_ui(ui, title, &styled);
}

/// A key row whose entries may be dashed lines.
fn styled_key_row_ui(ui: &mut egui::Ui, title: &str, entries: &[(&str, egui::Color32, bool)]) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(title).strong());
        for (name, colour, dashed) in entries {
            ui.add_space(8.0);
            let h = ui.text_style_height(&egui::TextStyle::Body);
            let (rect, _) = ui.allocate_exact_size(egui::vec2(h * 1.2, h), egui::Sense::hover());
            let stroke = egui::Stroke::new(3.0, *colour);
            if *dashed {
                let (a, b) = (rect.left_center(), rect.right_center());
                let third = (b - a) / 3.0;
                ui.painter().line_segment([a, a + third], stroke);
                ui.painter().line_segment([a + third * 2.0, b], stroke);
            } else {
                ui.painter()
                    .line_segment([rect.left_center(), rect.right_center()], stroke);
            }
            ui.label(*name);
        }
    });
}

/// The phase of an epoch: 0 for an ordinary run or a stepping-stone hop, 1 for the direct
/// run a stepping-stone run is compared with.
fn phase(r: &EpochRecord) -> usize {
    usize::from(is_direct(r))
}

/// (epoch, value) points of a figure, split where the phase changes so that the direct
/// run's curve does not continue the stepping one.
fn points(run: &RunRecord, value: impl Fn(&EpochRecord) -> Option<f64>) -> Vec<Vec<[f64; 2]>> {
    let mut out: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut last_phase = None;
    for r in &run.history {
        let Some(v) = value(r) else { continue };
        if last_phase != Some(phase(r)) {
            out.push(Vec::new());
            last_phase = Some(phase(r));
        }
        if let Some(seg) = out.last_mut() {
            seg.push([r.epoch as f64, v]);
        }
    }
    out
}

/// One curve (in segments) with a dot at each epoch.
fn plot_series(
    plot: &mut PlotUi<'_>,
    name: &str,
    segments: Vec<Vec<[f64; 2]>>,
    colour: egui::Color32,
    width: f32,
    dashed: bool,
) {
    for seg in segments {
        let mut line = Line::new(name, seg.clone()).width(width).color(colour);
        if dashed {
            line = line.style(LineStyle::dashed_loose());
        }
        plot.line(line);
        plot.points(Points::new(name, seg).radius(width * 1.5).color(colour));
    }
}

/// Multitask: each task's held-out accuracy, trained together (solid) and alone (dashed),
/// in the task's colour.
fn multitask_accuracy_ui(ui: &mut egui::Ui, run: &RunRecord, look: Look, plot: Plot<'_>) {
    let width = look.line_width();
    let mut tasks: Vec<String> = run
        .history
        .iter()
        .flat_map(|r| r.tasks.iter().map(|t| t.task.clone()))
        .collect();
    tasks.sort();
    tasks.dedup();
    let mut entries: Vec<(&str, egui::Color32, bool)> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), look.class(i), false))
        .collect();
    let grey = ui.visuals().text_color();
    entries.push(("trained together (joint)", grey, false));
    entries.push(("each alone", grey, true));
    styled_key_row_ui(ui, "Accuracy per task", &entries);
    plot.show(ui, |plot| {
        for (i, t) in tasks.iter().enumerate() {
            for (which, dashed) in [("joint", false), ("alone", true)] {
                let pts = points(run, |r| {
                    let f = r.tasks.iter().find(|f| &f.task == t)?;
                    if dashed { f.alone } else { f.joint }
                });
                plot_series(
                    plot,
                    &format!("{t} {which}"),
                    pts,
                    look.class(i),
                    width,
                    dashed,
                );
            }
        }
    });
    ui.weak("Each task's accuracy on held-out images: solid, the joint model (one trunk, a head per task); dashed, the same task trained alone from the same start on the same batches.");
}

/// Stepping stones: the hops one after another (a dotted line where each begins), then the
/// direct run on the same budget as a curve of its own.
fn stepping_accuracy_ui(ui: &mut egui::Ui, run: &RunRecord, look: Look, plot: Plot<'_>) {
    let width = look.line_width();
    let direct_colour = look.class(4);
    styled_key_row_ui(
        ui,
        "Accuracy",
        &[
            ("labelled data of the hop", look.source(), false),
            ("the hop's destination", look.target(), false),
            ("target, direct transfer", direct_colour, true),
        ],
    );
    // Where each phase begins (x = the end of the epoch before) and its name.
    let mut phases: Vec<(f64, String)> = Vec::new();
    let mut last: Option<(usize, i64)> = None;
    for r in &run.history {
        let hop = match r.phase {
            Some(Phase::Hop(n)) => n as i64,
            _ => 0,
        };
        let key = (phase(r), hop);
        if last != Some(key) {
            let name = if key.0 == 1 {
                "direct".to_string()
            } else {
                format!("hop {hop}")
            };
            phases.push(((r.epoch - 1) as f64, name));
            last = Some(key);
        }
    }
    let end = run.history.last().map(|r| r.epoch as f64).unwrap_or(0.0);
    let text_colour = ui.visuals().text_color();
    plot.include_y(1.12).show(ui, |plot| {
        for (i, (x, name)) in phases.iter().enumerate() {
            if i > 0 {
                plot.vline(
                    VLine::new(format!("{name} begins"), *x)
                        .color(egui::Color32::GRAY)
                        .width(1.5)
                        .style(LineStyle::dotted_dense()),
                );
            }
            let next = phases.get(i + 1).map(|p| p.0).unwrap_or(end.max(x + 1.0));
            plot.text(
                Text::new(
                    name.as_str(),
                    PlotPoint::new((x + next) / 2.0, 1.08),
                    name.as_str(),
                )
                .color(text_colour),
            );
        }
        for (name, target) in [
            ("labelled data of the hop", false),
            ("the hop's destination", true),
        ] {
            let segs = points(run, |r| {
                if target {
                    r.target_accuracy
                } else {
                    r.source_accuracy
                }
            });
            for (i, seg) in segs.into_iter().enumerate() {
                let direct = i > 0;
                let (name, colour) = match (direct, target) {
                    (true, true) => ("target, direct transfer", direct_colour),
                    (true, false) => ("source, direct transfer", look.source()),
                    (false, _) => (name, look.domain(target)),
                };
                plot_series(plot, name, vec![seg], colour, width, direct);
            }
        }
    });
    ui.weak("Each hop starts from the model of the one before: its destination's accuracy in the last hop is the target's. The direct run gets the same number of epochs, straight from source to target.");
}
