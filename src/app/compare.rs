//! The compare view (journey 6): every run in a table (method, freezing, seed, target
//! accuracy, Δ against source-only, time), the curves of selected runs overlaid, and for
//! one run its confusion matrix, a gallery of misclassified target images, negative-
//! transfer warnings and exports (CSV, JSON, checkpoint, PNG).

use super::commands::AppCommand;
use super::context::ViewContext;
use super::export::ExportKind;
use super::format::{duration_words, pct};
use super::jobs::{Job, block_on, take_finished};
use super::runs::{RunKind, RunRecord, RunStatus, Runs, StartPoint, is_direct};
use super::task_results::{TaskResultsState, task_details_ui};
use super::theme::Look;
use super::thumbs::{SampleKey, Thumbnails, thumb_ui};
use super::widgets::{delta_ui, table_ui};
use crate::analysis::RunOutcome;
use crate::method::MethodKind;
use crate::method::instance_weighting::weights_in;
use crate::train::results::RunExtra;
use egui::RichText;
use egui_plot::{Legend, Line, Plot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Which curve the overlay shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverlayCurve {
    #[default]
    TargetAccuracy,
    SourceAccuracy,
    Loss,
}

impl OverlayCurve {
    fn title(self) -> &'static str {
        match self {
            OverlayCurve::TargetAccuracy => "target accuracy",
            OverlayCurve::SourceAccuracy => "source accuracy",
            OverlayCurve::Loss => "training loss",
        }
    }
}

/// The compare view's state.
#[derive(Default)]
pub struct CompareState {
    /// Runs whose curves are overlaid.
    pub overlaid: BTreeSet<usize>,
    /// The run whose details are shown.
    pub detail: Option<usize>,
    pub curve: OverlayCurve,
    /// Where the overlay plot was last drawn (for the PNG export).
    pub curves_rect: Option<egui::Rect>,
    dialog: Option<Job<Option<PathBuf>>>,
    /// Multitask, zero-shot and stepping-stone details.
    pub tasks: TaskResultsState,
    /// The newest run when the view was last drawn: a newer one is shown and overlaid.
    seen_latest: Option<usize>,
}

impl CompareState {
    /// Pick up a chosen export folder.
    pub fn poll(&mut self, export_dir: &mut String) {
        if let Some(Ok(Some(dir))) = take_finished(&mut self.dialog) {
            *export_dir = dir.display().to_string();
        }
    }
}

/// The baseline a run is compared with: the latest ended source-only run on the same
/// data and input size, with the same backbone, the same epochs (done and planned) and
/// the same starting point; otherwise why there is none, in a sentence.
pub fn source_only_baseline<'a>(runs: &'a Runs, run: &RunRecord) -> Result<&'a RunRecord, String> {
    // Multitask and zero-shot runs have data and accuracies of their own.
    if run.config.method.is_task_method() {
        return Err("multitask and zero-shot runs are measured against their own baselines (see the details)".into());
    }
    if run.config.method == MethodKind::SourceOnly {
        return Err(
            "this is a source-only run: the baseline the others are measured against".into(),
        );
    }
    if run.kind() == RunKind::SteppingStones {
        return Err(
            "a stepping-stone run is measured against its direct run (see the details)".into(),
        );
    }
    let Some(_) = run.target_accuracy() else {
        return Err("this run has no target accuracy".into());
    };
    let candidates: Vec<&RunRecord> = runs
        .records
        .iter()
        .rev()
        .filter(|b| b.id != run.id && b.config.method == MethodKind::SourceOnly)
        .filter(|b| b.kind() == RunKind::Transfer && !b.status.is_live())
        .filter(|b| !matches!(b.status, RunStatus::Failed(_)) && b.target_accuracy().is_some())
        .collect();
    let data = format!("{} ({})", run.facts.data, or_dash(&run.facts.input));
    let on_data: Vec<&RunRecord> = candidates
        .into_iter()
        .filter(|b| b.same_data(run))
        .collect();
    if on_data.is_empty() {
        return Err(format!("no source-only run on the same data, {data}"));
    }
    let same_net: Vec<&RunRecord> = on_data
        .into_iter()
        .filter(|b| b.facts.backbone == run.facts.backbone)
        .collect();
    let Some(&other_net) = same_net.first() else {
        return Err(format!(
            "no source-only run with {} on {data}",
            or_dash(&run.facts.backbone)
        ));
    };
    let budget = |r: &RunRecord| (r.history.len(), r.total_epochs);
    let same_epochs: Vec<&RunRecord> = same_net
        .iter()
        .copied()
        .filter(|b| budget(b) == budget(run))
        .collect();
    if same_epochs.is_empty() {
        return Err(format!(
            "no source-only run on the same data and epochs: this run has {} epochs, source-only run #{} has {}",
            run.epochs_words(),
            other_net.id,
            other_net.epochs_words()
        ));
    }
    same_epochs
        .iter()
        .copied()
        .find(|b| b.facts.start == run.facts.start)
        .ok_or_else(|| {
            format!(
                "no source-only run from the same starting point: this run started {}, source-only run #{} {}",
                start_phrase(&run.facts.start),
                same_epochs[0].id,
                start_phrase(&same_epochs[0].facts.start)
            )
        })
}

/// A run's target accuracy, or on an unlabeled target its label-free estimate (flagged).
fn accuracy_or_estimate(r: &RunRecord) -> Option<(f64, bool)> {
    match r.target_accuracy() {
        Some(acc) => Some((acc, false)),
        None => r
            .report
            .as_ref()?
            .final_metrics
            .target_accuracy_or_estimate(),
    }
}

/// "fresh" → "from random weights", "from run #1" → "from the model of run #1".
fn start_phrase(s: &StartPoint) -> String {
    match s {
        StartPoint::Fresh => "from random weights".into(),
        StartPoint::Imagenet => "from ImageNet weights".into(),
        StartPoint::Run(id) => format!("from the model of run #{id}"),
        StartPoint::File(name) => format!("from {name}"),
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "—" } else { s }
}

/// True when `a` and `b` can be held against each other: same data and input, backbone,
/// epochs and starting point.
fn comparable(a: &RunRecord, b: &RunRecord) -> bool {
    a.same_data(b)
        && a.facts.backbone == b.facts.backbone
        && a.facts.start == b.facts.start
        && (a.history.len(), a.total_epochs) == (b.history.len(), b.total_epochs)
}

/// Negative-transfer warnings (the analysis module's rule, applied to each set of
/// comparable runs: same data, backbone, epochs and starting point): transfer runs that
/// ended below the no-transfer baseline — target-only when they used target labels,
/// source-only otherwise.
pub fn negative_transfer(runs: &Runs) -> Vec<(usize, String)> {
    let ended: Vec<&RunRecord> = runs
        .records
        .iter()
        .filter(|r| !r.status.is_live() && !matches!(r.status, RunStatus::Failed(_)))
        .filter(|r| r.kind() == RunKind::Transfer)
        .filter(|r| accuracy_or_estimate(r).is_some())
        .collect();
    // Sets of comparable runs; runs of one set need not be adjacent (data A, B, A again).
    let mut groups: Vec<Vec<&RunRecord>> = Vec::new();
    for r in ended {
        match groups.iter_mut().find(|g| comparable(g[0], r)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    let mut out = Vec::new();
    for group in groups {
        let outcomes: Vec<RunOutcome> = group
            .iter()
            .map(|r| {
                let (acc, estimated) = accuracy_or_estimate(r).unwrap_or((f64::NAN, false));
                RunOutcome {
                    label: format!("#{}", r.id),
                    method: r.config.method.name().to_string(),
                    target_accuracy: acc,
                    used_target_labels: r.config.target_labels > 0,
                    estimated,
                }
            })
            .collect();
        for w in crate::analysis::negative_transfer(&outcomes) {
            if let Some(r) = group.iter().find(|r| format!("#{}", r.id) == w.label) {
                out.push((r.id, super::theme::plain(&w.message)));
            }
        }
    }
    out.sort_by_key(|(id, _)| *id);
    out
}

/// The columns of the runs table.
const RUN_COLUMNS: [&str; 17] = [
    "show",
    "run",
    "data",
    "input",
    "method",
    "backbone",
    "start",
    "frozen",
    "seed",
    "target labels",
    "epochs",
    "target acc.",
    "estimate (no labels)",
    "Δ vs source-only",
    "source acc.",
    "time",
    "status",
];

/// The runs grouped by data pair (and input size), groups in the order of their first run.
fn by_data(runs: &Runs) -> Vec<Vec<&RunRecord>> {
    let mut groups: Vec<Vec<&RunRecord>> = Vec::new();
    for r in &runs.records {
        match groups.iter_mut().find(|g| g[0].same_data(r)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

/// Draw the compare view.
pub fn compare_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, state: &mut CompareState) {
    let (runs, look) = (ctx.runs, ctx.look);
    for p in &runs.saved_problems {
        ui.colored_label(look.warn(), super::theme::plain(p));
    }
    if runs.records.is_empty() {
        ui.add_space(20.0);
        ui.heading("No runs yet");
        ui.label("Every run you train appears here, so you can compare methods and freezing depths. Try a source-only run first: it is the baseline the others are measured against.");
        return;
    }
    let warnings = negative_transfer(runs);
    for (_, w) in &warnings {
        super::widgets::warning_box_ui(ui, look, w);
    }
    let latest = runs.latest().map(|r| r.id);
    if latest != state.seen_latest {
        // A new run: show its details and add its curves to the overlay.
        state.seen_latest = latest;
        state.detail = latest;
        if !state.overlaid.is_empty() {
            state.overlaid.extend(latest);
        }
    }
    if state.detail.is_none_or(|id| runs.get(id).is_none()) {
        state.detail = latest;
    }
    if state.overlaid.is_empty() {
        state.overlaid.extend(runs.records.iter().map(|r| r.id));
    }
    state.overlaid.retain(|id| runs.get(*id).is_some());
    runs_table_ui(ui, state, runs, look);
    ui.separator();
    let detail_w = (ui.available_width() * 0.48).max(300.0);
    let (mut left, mut right) = super::widgets::split_right(ui, detail_w);
    overlay_ui(&mut left, state, runs, look);
    egui::ScrollArea::vertical()
        .id_salt("run-detail")
        .auto_shrink([false, false])
        .show(&mut right, |ui| {
            if let Some(run) = state.detail.and_then(|id| runs.get(id)) {
                detail_ui(ui, ctx, state, run, &warnings);
            }
        });
}

fn runs_table_ui(ui: &mut egui::Ui, state: &mut CompareState, runs: &Runs, look: Look) {
    let groups = by_data(runs);
    if groups.len() > 1 {
        ui.label(format!(
            "Runs on {} data pairs, grouped by data: Δ and warnings only compare runs on the same data, backbone, epochs and starting point.",
            groups.len()
        ));
    }
    let max_h = (ui.available_height() * 0.35).max(120.0);
    egui::ScrollArea::both()
        .id_salt("runs-table")
        .max_height(max_h)
        .show(ui, |ui| {
            table_ui(ui, "runs-grid", &RUN_COLUMNS, |ui| {
                for r in groups.iter().flatten() {
                    run_row_ui(ui, state, runs, r, look);
                }
            });
        });
}

/// One row of the runs table.
fn run_row_ui(ui: &mut egui::Ui, state: &mut CompareState, runs: &Runs, r: &RunRecord, look: Look) {
    let mut on = state.overlaid.contains(&r.id);
    if ui
        .checkbox(&mut on, "")
        .on_hover_text("overlay this run's curve")
        .changed()
    {
        if on {
            state.overlaid.insert(r.id);
        } else {
            state.overlaid.remove(&r.id);
        }
    }
    let selected = state.detail == Some(r.id);
    if ui
        .selectable_label(selected, format!("#{}", r.id))
        .on_hover_text("show this run's details")
        .clicked()
    {
        state.detail = Some(r.id);
    }
    ui.label(super::theme::plain(&r.facts.data))
        .on_hover_text(super::theme::plain(&r.config.data.describe()));
    ui.label(or_dash(&r.facts.input));
    if r.kind() == RunKind::SteppingStones {
        ui.label(format!("{} via stones", r.config.method.name()));
    } else {
        ui.label(r.config.method.name());
    }
    ui.label(or_dash(&r.facts.backbone));
    ui.label(r.facts.start.words());
    ui.label(r.config.freeze.to_string());
    ui.label(r.config.seed.to_string());
    ui.label(r.config.target_labels.to_string());
    ui.label(r.epochs_words());
    ui.label(RichText::new(pct(r.target_accuracy())).strong());
    estimate_ui(ui, r);
    delta_cell_ui(ui, runs, r, look);
    ui.label(pct(r.source_accuracy()));
    ui.label(duration_words(r.elapsed_secs));
    let earlier = if r.earlier_session {
        " (earlier session)"
    } else {
        ""
    };
    match &r.status {
        RunStatus::Failed(e) => {
            ui.colored_label(look.error(), format!("failed{earlier}"))
                .on_hover_text(super::theme::plain(e));
        }
        s => {
            let l = ui.label(format!("{}{earlier}", s.word()));
            if r.earlier_session {
                l.on_hover_text(
                    "from an earlier session: its figures are kept, its model and images are not",
                );
            }
        }
    }
    ui.end_row();
}

/// The difference to the run's source-only baseline, what it is measured against on
/// hover; a dash with the reason when there is no fair baseline.
fn delta_cell_ui(ui: &mut egui::Ui, runs: &Runs, r: &RunRecord, look: Look) {
    match source_only_baseline(runs, r) {
        Ok(b) => {
            let d = r
                .target_accuracy()
                .zip(b.target_accuracy())
                .map(|(a, b)| a - b);
            delta_ui(ui, d, 0.01, look).on_hover_text(baseline_words(b));
        }
        Err(why) => {
            ui.weak("—").on_hover_text(why);
        }
    }
}

/// What a Δ is measured against.
fn baseline_words(b: &RunRecord) -> String {
    format!(
        "against source-only run #{} ({}): same data, backbone, epochs and starting point",
        b.id,
        pct(b.target_accuracy())
    )
}

/// A curve's name in the overlay legend: the run, with its data when the curves are on
/// several data pairs, and how it ended when it did not finish.
fn legend_name(r: &RunRecord, with_data: bool) -> String {
    let mut name = r.label();
    if with_data {
        name.push_str(&format!(" · {}", super::theme::plain(&r.facts.data)));
        if !r.facts.input.is_empty() {
            name.push_str(&format!(" {}", r.facts.input));
        }
    }
    match r.status {
        RunStatus::Failed(_) => name.push_str(" (failed)"),
        RunStatus::Stopped => name.push_str(" (stopped)"),
        _ => {}
    }
    name
}

/// The run's target accuracy as estimated without target labels (ATC), the other
/// estimators on hover.
fn estimate_ui(ui: &mut egui::Ui, r: &RunRecord) {
    let estimate = r
        .report
        .as_ref()
        .and_then(|rep| rep.final_metrics.label_free.as_ref());
    match estimate {
        Some(e) => {
            ui.label(format!("≈ {}", pct(e.accuracy.map(|a| a.atc)))).on_hover_text(format!(
                "Estimated without any target label: {}. ATC sets a confidence threshold on the held-out source and counts the target images above it; DEV and IWCV weight the held-out source by how target-like it is (they read 100% when the model makes no source errors); SND ranks models (higher is better), entropy says how confident the predictions are.",
                e.summary()
            ));
        }
        None => {
            ui.label("–");
        }
    }
}

fn overlay_ui(ui: &mut egui::Ui, state: &mut CompareState, runs: &Runs, look: Look) {
    ui.horizontal(|ui| {
        ui.label(RichText::new("Curves of the ticked runs:").strong());
        for c in [
            OverlayCurve::TargetAccuracy,
            OverlayCurve::SourceAccuracy,
            OverlayCurve::Loss,
        ] {
            ui.selectable_value(&mut state.curve, c, c.title());
        }
    });
    let curve = state.curve;
    let width = look.line_width();
    let mut plot = Plot::new("overlay")
        .legend(Legend::default())
        .x_axis_label("epoch")
        .y_axis_label(curve.title())
        .include_x(0.0)
        .allow_scroll(false);
    if curve != OverlayCurve::Loss {
        plot = plot.include_y(0.0).include_y(1.0);
    }
    // The title names the data only when every curve is on it; else each curve does.
    let shown: Vec<&RunRecord> = runs
        .records
        .iter()
        .filter(|r| state.overlaid.contains(&r.id))
        .collect();
    let mixed = shown.iter().any(|r| !r.same_data(shown[0]));
    let data_name = match shown.first() {
        _ if mixed => {
            let groups = by_data(runs)
                .iter()
                .filter(|g| g.iter().any(|r| state.overlaid.contains(&r.id)))
                .count();
            format!("runs on {groups} data pairs (see the legend)")
        }
        Some(r) if r.facts.input.is_empty() => super::theme::plain(&r.facts.data),
        Some(r) => format!("{} ({})", super::theme::plain(&r.facts.data), r.facts.input),
        None => String::new(),
    };
    // The scope holds what the PNG export captures: a title, the plot and its axes.
    let scope = ui.scope(|ui| {
        ui.label(RichText::new(format!("{} per epoch · {data_name}", curve.title())).strong());
        plot.show(ui, |plot| {
            for (i, r) in runs.records.iter().enumerate() {
                if !state.overlaid.contains(&r.id) {
                    continue;
                }
                let pts: Vec<[f64; 2]> = r
                    .history
                    .iter()
                    // A stepping-stone run's direct epochs are its comparison, not the run.
                    .filter(|h| !is_direct(h))
                    .filter_map(|h| {
                        let v = match curve {
                            OverlayCurve::TargetAccuracy => h.target_accuracy,
                            OverlayCurve::SourceAccuracy => h.source_accuracy,
                            OverlayCurve::Loss => Some(h.train_loss),
                        };
                        v.map(|v| [h.epoch as f64, v])
                    })
                    .collect();
                plot.line(
                    Line::new(legend_name(r, mixed), pts)
                        .width(width)
                        .color(look.class(i)),
                );
            }
        });
    });
    state.curves_rect = Some(scope.response.rect);
}

fn detail_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    state: &mut CompareState,
    run: &RunRecord,
    warnings: &[(usize, String)],
) {
    let look = ctx.look;
    let thumbs = &mut *ctx.thumbs;
    ui.heading(format!("Run {}", run.label()));
    if run.earlier_session {
        ui.weak("From an earlier session: its figures are kept; its model and the misclassified images are not.");
    }
    let target_labels = if run.config.method.is_task_method() {
        String::new()
    } else {
        format!(" · {} target labels per class", run.config.target_labels)
    };
    let input = if run.facts.input.is_empty() {
        String::new()
    } else {
        format!(" · {}", run.facts.input)
    };
    ui.label(format!(
        "{}{input} · {} · {} · epochs {} · lr {} · batch {}{target_labels} · {}",
        super::theme::plain(&run.config.data.describe()),
        or_dash(&run.facts.backbone),
        run.facts.start.words(),
        run.epochs_words(),
        run.config.learning_rate,
        run.config.batch_size,
        if run.network.device.is_empty() {
            "—"
        } else {
            &run.network.device
        }
    ));
    if let RunStatus::Failed(e) = &run.status {
        ui.colored_label(look.error(), format!("Failed: {}", super::theme::plain(e)));
    }
    if !run.status.is_live() && !run.config.method.is_task_method() {
        match source_only_baseline(ctx.runs, run) {
            Ok(b) => {
                let d = run
                    .target_accuracy()
                    .zip(b.target_accuracy())
                    .map_or("—".into(), |(a, b)| {
                        format!("{:+.1} pts", (a - b) * 100.0)
                    });
                ui.label(format!("Δ vs source-only: {d}, {}.", baseline_words(b)));
            }
            Err(why) => {
                ui.weak(format!("No Δ vs source-only: {why}."));
            }
        }
    }
    if let Some(sel) = run.report.as_ref().and_then(|r| r.selection.as_ref()) {
        let colour = match sel.oracle_epoch {
            Some(e) if e != sel.chosen_epoch => look.warn(),
            _ => look.good(),
        };
        let text = sel.summary();
        let text = text.replacen("kept", "Kept", 1);
        ui.colored_label(colour, text);
    }
    for (_, w) in warnings.iter().filter(|(id, _)| *id == run.id) {
        ui.colored_label(look.warn(), w.as_str());
    }
    if !ctx.settings.presentation {
        exports_ui(ui, state, run, &mut ctx.settings.export_dir, ctx.commands);
    }
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                run.has_checkpoint(),
                egui::Button::new("Start the next run from this model"),
            )
            .on_hover_text(
                "Sets this run's trained model as the starting model in Setup (task A to task B)",
            )
            .clicked()
        {
            ctx.commands.push(AppCommand::UseRunAsInit(run.id));
        }
        if !run.status.is_live() && ui.button("Remove").clicked() {
            ctx.commands.push(AppCommand::RemoveRun(run.id));
        }
    });
    let Some(report) = &run.report else {
        if run.status.is_live() {
            ui.weak("The confusion matrix and the misclassified images appear when the run ends.");
        }
        return;
    };
    task_details_ui(ui, &mut state.tasks, run, thumbs, look);
    // Multitask and zero-shot runs did not train on the loaded pair: its images are not theirs.
    let pair = run
        .pair
        .as_ref()
        .filter(|_| !run.config.method.is_task_method());
    if let Some(pair) = pair {
        instance_weights_ui(ui, run, pair, report, thumbs, look);
    }
    if let Some(cm) = &report.confusion {
        ui.separator();
        let title = if run.config.method == MethodKind::ZeroShot {
            "Confusion matrix (unseen classes): rows = true class, columns = predicted"
        } else {
            "Confusion matrix (target): rows = true class, columns = predicted"
        };
        ui.label(RichText::new(title).strong());
        let classes = match pair {
            Some(p) if report.data.classes.is_empty() => &p.classes,
            _ => &report.data.classes,
        };
        confusion_ui(ui, cm, classes, look);
        let shorts = short_names(classes);
        if classes.len() <= 12 && shorts.iter().zip(classes).any(|(s, c)| s != c) {
            let key: Vec<String> = shorts
                .iter()
                .zip(classes)
                .filter(|(s, c)| s != c)
                .map(|(s, c)| format!("{s} = {c}"))
                .collect();
            ui.weak(key.join(" · "));
        }
    }
    let Some(pair) = pair else {
        return;
    };
    ui.separator();
    let wrong: Vec<_> = report
        .predictions
        .iter()
        .filter(|p| p.label.is_some_and(|l| l != p.predicted))
        .collect();
    if report.data.target_labelled {
        ui.label(
            RichText::new(format!(
                "Misclassified target images: {} of {}",
                wrong.len(),
                report.predictions.len()
            ))
            .strong(),
        );
        let side = look.thumb_side() * 1.2;
        let name = |c: u32| pair.classes.get(c as usize).cloned().unwrap_or_default();
        // Fixed columns: each cell is a thumbnail over its "true as predicted" caption.
        let cell_w = side + 10.0;
        let columns = ((ui.available_width() / cell_w).floor() as usize).max(1);
        let shown: Vec<_> = wrong.iter().take(60).collect();
        for row in shown.chunks(columns) {
            ui.horizontal(|ui| {
                for p in row {
                    let key = SampleKey {
                        pair_id: run.pair_id,
                        target: true,
                        index: p.index,
                    };
                    let tex = thumbs.get(ui.ctx(), &pair.target, key);
                    let (truth, predicted) = (name(p.label.unwrap_or(0)), name(p.predicted));
                    ui.allocate_ui(egui::vec2(cell_w - 4.0, side * 1.6), |ui| {
                        ui.vertical(|ui| {
                            thumb_ui(ui, tex.as_ref(), side).on_hover_text(format!(
                                "{}\ntrue {truth} · predicted {predicted} ({:.0}% sure)",
                                p.file,
                                p.confidence * 100.0
                            ));
                            ui.label(RichText::new(format!("{truth} as {predicted}")).small());
                        });
                    });
                }
            });
        }
        if wrong.len() > 60 {
            ui.weak(format!("… and {} more", wrong.len() - 60));
        }
    } else {
        ui.weak("The target is unlabeled: no confusion matrix or misclassified images.");
    }
}

fn exports_ui(
    ui: &mut egui::Ui,
    state: &mut CompareState,
    run: &RunRecord,
    export_dir: &mut String,
    commands: &mut Vec<AppCommand>,
) {
    ui.horizontal(|ui| {
        let l = ui.label("Export to");
        ui.add(egui::TextEdit::singleline(export_dir).desired_width(220.0))
            .labelled_by(l.id);
        if ui
            .add_enabled(state.dialog.is_none(), egui::Button::new("Choose folder…"))
            .clicked()
        {
            let start = PathBuf::from(export_dir.as_str());
            if let Ok(job) = Job::spawn("dialog", ui.ctx(), move |_| {
                let mut d = rfd::AsyncFileDialog::new().set_title("Export folder");
                if start.is_dir() {
                    d = d.set_directory(&start);
                }
                block_on(d.pick_folder()).map(|h| h.path().to_path_buf())
            }) {
                state.dialog = Some(job);
            }
        }
    });
    ui.horizontal_wrapped(|ui| {
        for kind in [
            ExportKind::MetricsCsv,
            ExportKind::ReportJson,
            ExportKind::Checkpoint,
            ExportKind::CurvesPng,
        ] {
            let enabled = match kind {
                ExportKind::Checkpoint => run.has_checkpoint(),
                ExportKind::MetricsCsv => !run.history.is_empty(),
                _ => true,
            };
            if ui
                .add_enabled(enabled, egui::Button::new(kind.title()))
                .clicked()
            {
                commands.push(AppCommand::Export { run: run.id, kind });
            }
        }
    });
}

fn confusion_ui(ui: &mut egui::Ui, cm: &[Vec<u32>], classes: &[String], look: Look) {
    let k = cm.len();
    let cell = (ui.available_width() / (k as f32 + 1.5)).clamp(18.0, 44.0);
    let font = egui::FontId::proportional((cell * 0.36).clamp(9.0, 16.0));
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(cell * (k as f32 + 1.0), cell * (k as f32 + 1.0)),
        egui::Sense::hover(),
    );
    let p = ui.painter_at(rect);
    let text = ui.visuals().text_color();
    let shorts = short_names(classes);
    for (i, short) in shorts.iter().enumerate().take(k) {
        let x = rect.left() + cell * (i as f32 + 1.5);
        p.text(
            egui::pos2(x, rect.top() + cell * 0.5),
            egui::Align2::CENTER_CENTER,
            short,
            font.clone(),
            text,
        );
        let y = rect.top() + cell * (i as f32 + 1.5);
        p.text(
            egui::pos2(rect.left() + cell * 0.5, y),
            egui::Align2::CENTER_CENTER,
            short,
            font.clone(),
            text,
        );
    }
    for (i, row) in cm.iter().enumerate() {
        let total: u32 = row.iter().sum::<u32>().max(1);
        for (j, &v) in row.iter().enumerate() {
            let f = v as f32 / total as f32;
            let base = if i == j { look.good() } else { look.error() };
            let bg = ui.visuals().faint_bg_color;
            let fill = if v == 0 {
                bg
            } else {
                bg.lerp_to_gamma(base, 0.25 + 0.75 * f)
            };
            // Dark digits on bright cells, the normal text colour on dim ones.
            let text = if v > 0 && 0.25 + 0.75 * f > 0.55 {
                egui::Color32::BLACK
            } else {
                text
            };
            let r = egui::Rect::from_min_size(
                egui::pos2(
                    rect.left() + cell * (j as f32 + 1.0),
                    rect.top() + cell * (i as f32 + 1.0),
                ),
                egui::vec2(cell - 1.0, cell - 1.0),
            );
            p.rect_filled(r, 2.0, fill);
            if v > 0 {
                p.text(
                    r.center(),
                    egui::Align2::CENTER_CENTER,
                    v.to_string(),
                    font.clone(),
                    text,
                );
            }
        }
    }
}

/// Short labels for the matrix's axes: the first four letters, or, when those collide
/// (`square-blue-filled`, `square-red-outline`), the initials of the name's parts, or
/// else the class numbers.
pub fn short_names(classes: &[String]) -> Vec<String> {
    let unique = |v: &[String]| {
        let mut s: Vec<&String> = v.iter().collect();
        s.sort();
        s.dedup();
        s.len() == v.len()
    };
    let prefix: Vec<String> = classes
        .iter()
        .map(|c| c.chars().take(4).collect())
        .collect();
    if unique(&prefix) {
        return prefix;
    }
    let initials: Vec<String> = classes
        .iter()
        .map(|c| {
            c.split(['-', '_', ' '])
                .filter_map(|p| p.chars().next())
                .collect()
        })
        .collect();
    if unique(&initials) {
        return initials;
    }
    (1..=classes.len()).map(|i| i.to_string()).collect()
}

/// Per-source-image weights of an instance-based run, read from its report.
fn instance_weights(report: &crate::train::RunReport) -> Vec<(usize, f64)> {
    match &report.extra {
        Some(RunExtra::Method(extra)) => weights_in(extra)
            .into_iter()
            .map(|w| (w.index, w.weight))
            .filter(|(_, w)| w.is_finite())
            .collect(),
        _ => Vec::new(),
    }
}

/// Instance-based transfer made visible: the source images the method weighted most
/// (most target-like) and least, with their weights.
fn instance_weights_ui(
    ui: &mut egui::Ui,
    run: &RunRecord,
    pair: &crate::data::DomainPair,
    report: &crate::train::RunReport,
    thumbs: &mut Thumbnails,
    look: Look,
) {
    let mut weights = instance_weights(report);
    if weights.is_empty() {
        return;
    }
    weights.sort_by(|a, b| b.1.total_cmp(&a.1));
    ui.separator();
    ui.label(RichText::new("Source images re-weighted by how target-like they are").strong());
    let (max, min) = (weights[0].1, weights[weights.len() - 1].1);
    ui.label(format!(
        "{} weights, from {min:.3} to {max:.3} (mean 1 = unchanged).",
        weights.len()
    ));
    if max - min < 0.01 {
        ui.weak("All weights are close to 1: the domain classifier found no source images more target-like than others.");
        return;
    }
    let side = look.thumb_side();
    let cell_w = side + 12.0;
    let n = ((ui.available_width() / cell_w).floor() as usize).clamp(1, 12);
    let row_ui =
        |ui: &mut egui::Ui, title: &str, items: &[(usize, f64)], thumbs: &mut Thumbnails| {
            ui.weak(title);
            ui.horizontal(|ui| {
                for &(index, w) in items {
                    let key = SampleKey {
                        pair_id: run.pair_id,
                        target: false,
                        index,
                    };
                    let tex = thumbs.get(ui.ctx(), &pair.source, key);
                    ui.allocate_ui(egui::vec2(cell_w - 4.0, side * 1.6), |ui| {
                        ui.vertical(|ui| {
                            let file = pair.source.files.get(index).cloned().unwrap_or_default();
                            thumb_ui(ui, tex.as_ref(), side).on_hover_text(file);
                            ui.label(RichText::new(format!("w {w:.3}")).small());
                        });
                    });
                }
            });
        };
    let top: Vec<_> = weights.iter().take(n).copied().collect();
    let bottom: Vec<_> = weights.iter().rev().take(n).copied().collect();
    row_ui(
        ui,
        "weighted most (look most like the target):",
        &top,
        thumbs,
    );
    row_ui(ui, "weighted least:", &bottom, thumbs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::runs::{RunRecord, RunStatus};
    use crate::train::{EpochRecord, ExperimentConfig};

    fn run(id: usize, demo: &str, method: MethodKind, target_accuracy: f64) -> RunRecord {
        let config = ExperimentConfig {
            method,
            data: crate::train::DataSource::Demo { name: demo.into() },
            ..ExperimentConfig::default()
        };
        let mut r = RunRecord::new(id, config, None, 0, Default::default());
        r.total_epochs = 1;
        r.status = RunStatus::Finished;
        r.history.push(EpochRecord {
            epoch: 1,
            train_loss: 0.5,
            source_accuracy: Some(0.9),
            target_accuracy: Some(target_accuracy),
            seconds: 1.0,
            images_per_sec: 100.0,
            metrics: Default::default(),
            phase: None,
            tasks: Vec::new(),
        });
        r
    }

    #[test]
    fn negative_transfer_is_warned_once_when_runs_on_one_pair_are_not_adjacent() {
        let mut runs = Runs::default();
        // Data A: source-only 80%, DANN 60% (negative transfer); then data B; then A again.
        runs.records.push(run(1, "a", MethodKind::SourceOnly, 0.8));
        runs.records.push(run(2, "a", MethodKind::Dann, 0.6));
        runs.records.push(run(3, "b", MethodKind::SourceOnly, 0.5));
        runs.records.push(run(4, "a", MethodKind::Coral, 0.82));
        // On data B, DANN beats B's baseline but is below A's: no warning for it.
        runs.records.push(run(5, "b", MethodKind::Dann, 0.55));
        let warnings = negative_transfer(&runs);
        let ids: Vec<usize> = warnings.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![2], "{warnings:?}");
    }

    /// Why `r` has no baseline; panics if it has one.
    fn no_baseline(runs: &Runs, r: &RunRecord) -> String {
        match source_only_baseline(runs, r) {
            Ok(b) => panic!("run #{} is compared with #{}", r.id, b.id),
            Err(why) => why,
        }
    }

    #[test]
    fn the_baseline_is_on_the_same_data_epochs_and_starting_point_or_there_is_none() {
        let mut runs = Runs::default();
        runs.records.push(run(1, "a", MethodKind::SourceOnly, 0.5));
        runs.records.push(run(2, "b", MethodKind::SourceOnly, 0.9));
        let dann = run(3, "a", MethodKind::Dann, 0.7);
        assert_eq!(source_only_baseline(&runs, &dann).map(|b| b.id), Ok(1));
        let other_data = run(4, "c", MethodKind::Dann, 0.7);
        let why = no_baseline(&runs, &other_data);
        assert!(why.contains("same data"), "{why}");
        let mut longer = run(5, "a", MethodKind::Dann, 0.7);
        longer.total_epochs = 2;
        longer.history.push(longer.history[0].clone());
        let why = no_baseline(&runs, &longer);
        assert!(why.contains("epochs") && why.contains("#1"), "{why}");
        let mut stopped = run(6, "a", MethodKind::Dann, 0.7);
        stopped.total_epochs = 5;
        stopped.status = RunStatus::Stopped;
        let why = no_baseline(&runs, &stopped);
        assert!(why.contains("1/5, stopped"), "{why}");
        let mut continued = run(7, "a", MethodKind::FineTune, 0.95);
        continued.facts.start = StartPoint::Run(1);
        let why = no_baseline(&runs, &continued);
        assert!(why.contains("model of run #1"), "{why}");
        let why = no_baseline(&runs, &runs.records[0]);
        assert!(why.contains("this is a source-only run"), "{why}");
    }
}
