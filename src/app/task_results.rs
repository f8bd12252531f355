//! Results of the runs beyond one source and one target, read from their epochs and their
//! report's `extra`: multitask (each task trained together against alone), zero-shot (the
//! attribute table with the unseen classes marked, accuracy per attribute and per unseen
//! class, and for a picked image its predicted attributes and the class they point to),
//! and stepping stones (each hop, and stepping against direct transfer).

use super::format::{self, pct};
use super::jobs::{Job, take_finished};
use super::runs::RunRecord;
use super::task_setup::attribute_grid_ui;
use super::theme::Look;
use super::thumbs::{SampleKey, Thumbnails, thumb_ui};
use super::widgets::{delta_ui, table_ui};
use crate::data::Domain;
use crate::tasks::tables::AttributeTable;
use crate::train::results::{
    RunExtra, SteppingResults, TARGET_ACCURACY, ZeroShotPrediction, ZeroShotResults,
};
use egui::RichText;
use std::collections::HashMap;
use std::sync::Arc;

/// Thumbnail key of the regenerated zero-shot demo images (no loaded pair has this id).
const SHAPES_THUMBS: u64 = u64::MAX;

/// Images shown in the zero-shot gallery, at most.
const GALLERY_MAX: usize = 48;

/// The zero-shot demo's images, regenerated to show thumbnails, by file name.
struct DemoImages {
    domain: Domain,
    index: HashMap<String, usize>,
}

impl DemoImages {
    /// The thumbnail of the demo image `file`, once made.
    fn thumb(
        &self,
        ctx: &egui::Context,
        thumbs: &mut Thumbnails,
        file: &str,
    ) -> Option<egui::TextureHandle> {
        let &index = self.index.get(file)?;
        let key = SampleKey {
            pair_id: SHAPES_THUMBS,
            target: false,
            index,
        };
        thumbs.get(ctx, &self.domain, key)
    }
}

/// State of the across-task result panels.
#[derive(Default)]
pub struct TaskResultsState {
    /// (run, index into the zero-shot predictions) of the picked image.
    pub picked: Option<(usize, usize)>,
    /// Show only images of unseen classes in the gallery.
    pub all_images: bool,
    images: Option<Arc<DemoImages>>,
    job: Option<Job<DemoImages>>,
}

impl TaskResultsState {
    /// True once the zero-shot demo's thumbnails can be drawn.
    pub fn images_ready(&self) -> bool {
        self.images.is_some()
    }
}

/// The report's extra results, when it has ended.
fn extra(run: &RunRecord) -> Option<&RunExtra> {
    run.report.as_deref().and_then(|r| r.extra.as_ref())
}

/// One task of a multitask run.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    pub name: String,
    pub joint: Option<f64>,
    pub alone: Option<f64>,
    pub classes: Option<usize>,
    pub weight: Option<f64>,
}

/// The tasks of a multitask run, by name (the order, and so the colours, of the training
/// view's curves): from its report when it has ended, else from its last epoch.
pub fn multitask_rows(run: &RunRecord) -> Vec<TaskRow> {
    let mut rows = unsorted_rows(run);
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

fn unsorted_rows(run: &RunRecord) -> Vec<TaskRow> {
    if let Some(RunExtra::Multitask(e)) = extra(run) {
        return e
            .tasks
            .iter()
            .map(|t| TaskRow {
                name: t.name.clone(),
                joint: t.joint_accuracy,
                alone: t.alone_accuracy,
                classes: Some(t.classes.len()),
                weight: Some(t.weight),
            })
            .collect();
    }
    let Some(last) = run.history.last() else {
        return Vec::new();
    };
    last.tasks
        .iter()
        .map(|t| TaskRow {
            name: t.task.clone(),
            joint: t.joint,
            alone: t.alone,
            classes: None,
            weight: None,
        })
        .collect()
}

/// The multitask table: each task's accuracy trained together, alone, and the difference.
pub fn multitask_table_ui(ui: &mut egui::Ui, rows: &[TaskRow], look: Look) {
    if rows.is_empty() {
        ui.weak("The per-task accuracies appear after the first epoch.");
        return;
    }
    let titles = [
        "task",
        "classes",
        "weight",
        "joint",
        "alone",
        "Δ joint − alone",
    ];
    table_ui(ui, "multitask-table", &titles, |ui| {
        for (i, r) in rows.iter().enumerate() {
            ui.colored_label(look.class(i), RichText::new(&r.name).strong());
            ui.label(r.classes.map(|c| c.to_string()).unwrap_or("—".into()));
            ui.label(r.weight.map(|w| format!("{w}")).unwrap_or("—".into()));
            ui.label(RichText::new(pct(r.joint)).strong());
            ui.label(pct(r.alone));
            delta_ui(ui, r.joint.zip(r.alone).map(|(j, a)| j - a), 0.005, look);
            ui.end_row();
        }
    });
    let mean = |f: fn(&TaskRow) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> = rows.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let (j, a) = (mean(|r| r.joint), mean(|r| r.alone));
    ui.label(format!(
        "Mean over tasks: joint {} against alone {}.",
        pct(j),
        pct(a)
    ));
    if let Some(d) = j.zip(a).map(|(j, a)| j - a) {
        ui.weak(if d > 0.005 {
            "Trained together, the shared trunk helped: what one task learns serves the others."
        } else if d < -0.005 {
            "Trained together, the tasks did worse than alone: they compete for the shared trunk."
        } else {
            "Trained together or alone made little difference here."
        });
    }
}

/// The zero-shot figures after the last epoch, while the run trains.
pub fn zero_shot_live_ui(ui: &mut egui::Ui, run: &RunRecord, look: Look) {
    let Some(last) = run.history.last() else {
        ui.weak("The seen and unseen accuracies appear after the first epoch.");
        return;
    };
    let chance = run.metric(TARGET_ACCURACY).chance;
    ui.label(
        RichText::new(format!(
            "After epoch {}: unseen classes {} (chance {})",
            last.epoch,
            pct(last.target_accuracy),
            pct(chance)
        ))
        .strong()
        .color(look.target()),
    );
    ui.label(format!(
        "Seen classes (held-out images): {}",
        pct(last.source_accuracy)
    ));
    for (key, v) in &last.metrics {
        let m = run.metric(key);
        ui.label(format!("{}: {}", sentence_case(&m.label), m.format(*v)));
    }
}

/// "unseen classes" → "Unseen classes".
fn sentence_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The details of an across-task or stepping-stone run in the compare view (nothing for
/// an ordinary run).
pub fn task_details_ui(
    ui: &mut egui::Ui,
    state: &mut TaskResultsState,
    run: &RunRecord,
    thumbs: &mut Thumbnails,
    look: Look,
) {
    match extra(run) {
        Some(RunExtra::Multitask(_)) => {
            ui.separator();
            ui.label(RichText::new("Each task: trained together (joint) against alone").strong());
            multitask_table_ui(ui, &multitask_rows(run), look);
        }
        Some(RunExtra::ZeroShot(e)) => zero_shot_ui(ui, state, run, e, thumbs, look),
        Some(RunExtra::SteppingStones(e)) => stepping_ui(ui, e, look),
        Some(RunExtra::Method(v)) => {
            if let Some(r) = super::relations::relations_of(v) {
                super::relations::relations_ui(ui, &r, look);
            }
        }
        None => {}
    }
}

fn stepping_ui(ui: &mut egui::Ui, extra: &SteppingResults, look: Look) {
    ui.separator();
    ui.label(RichText::new("Stepping stones: hop by hop").strong());
    let titles = [
        "hop",
        "from",
        "to",
        "epochs",
        "accuracy on 'to'",
        "pseudo-labels",
        "their accuracy",
    ];
    table_ui(ui, "hops-table", &titles, |ui| {
        for (i, h) in extra.hops.iter().enumerate() {
            ui.label(format!("{}", i + 1));
            ui.label(&h.from);
            ui.label(&h.to);
            ui.label(h.epochs.to_string());
            ui.label(pct(h.accuracy));
            ui.label(h.pseudo_labels.map(|n| n.to_string()).unwrap_or("—".into()));
            ui.label(pct(h.pseudo_label_accuracy));
            ui.end_row();
        }
    });
    let keep = extra.pseudo_keep;
    ui.weak(format!(
        "After each hop but the last the model labels the domain it reached; its most confident {:.0} % become the labelled data of the next hop.",
        keep * 100.0
    ));
    let (stepping, direct) = (extra.stepping_target_accuracy, extra.direct_target_accuracy);
    let epochs = extra.direct_epochs;
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(format!(
                "Target accuracy: through the stones {}",
                pct(stepping)
            ))
            .strong(),
        );
        ui.label(format!(
            "· direct transfer on the same budget ({epochs} epochs) {}",
            pct(direct)
        ));
        ui.label("· gain");
        delta_ui(ui, extra.gain, 0.005, look);
    });
}

fn zero_shot_ui(
    ui: &mut egui::Ui,
    state: &mut TaskResultsState,
    run: &RunRecord,
    extra: &ZeroShotResults,
    thumbs: &mut Thumbnails,
    look: Look,
) {
    ui.separator();
    let unseen = &extra.unseen;
    ui.label(
        RichText::new(format!(
            "Unseen classes: {} right (chance {}) · seen classes: {}",
            pct(extra.unseen_accuracy),
            pct(Some(extra.chance)),
            pct(extra.seen_accuracy)
        ))
        .strong(),
    );
    ui.weak(format!(
        "Named among all {} classes (generalised zero-shot), the unseen images are {} right.",
        extra.classes.len(),
        pct(extra.unseen_accuracy_all_classes)
    ));
    let attr_acc: Vec<f64> = extra
        .attribute_accuracy
        .iter()
        .map(|a| a.accuracy)
        .collect();
    let table = AttributeTable {
        attributes: extra.attributes.clone(),
        classes: extra.classes.clone(),
        signatures: extra.signatures.clone(),
        lines: Vec::new(),
    };
    if table.classes.len() == table.signatures.len() {
        ui.label(RichText::new("Attribute table: unseen classes marked; last row, how often each attribute was predicted right on unseen images").strong());
        egui::ScrollArea::horizontal()
            .id_salt("zs-table")
            .show(ui, |ui| {
                let footer = (attr_acc.len() == table.attributes.len())
                    .then_some(("right on unseen images", attr_acc.as_slice()));
                attribute_grid_ui(ui, "zs-result-grid", &table, unseen, None, footer, look);
            });
    }
    if !extra.unseen_class_accuracy.is_empty() {
        ui.label(RichText::new("Each unseen class").strong());
        egui::Grid::new("zs-class-acc")
            .spacing([12.0, 2.0])
            .show(ui, |ui| {
                for c in &extra.unseen_class_accuracy {
                    let (acc, n) = (c.accuracy, c.images);
                    ui.label(&c.class);
                    bar_ui(
                        ui,
                        acc as f32,
                        look.target(),
                        &format!("{:.0}% of {n}", acc * 100.0),
                    );
                    ui.end_row();
                }
            });
        ui.weak(format!(
            "Chance: {} (one in {}).",
            format::chance(extra.chance),
            unseen.len()
        ));
    }
    picked_image_ui(ui, state, run, &extra.predictions, &table, thumbs, look);
}

/// A horizontal bar of `value` in 0..=1 with a caption.
fn bar_ui(ui: &mut egui::Ui, value: f32, colour: egui::Color32, caption: &str) {
    // One grid cell: the bar and its caption side by side.
    ui.horizontal(|ui| {
        let h = ui.text_style_height(&egui::TextStyle::Body);
        let w = 160.0;
        let (rect, _) = ui.allocate_exact_size(egui::vec2(w, h), egui::Sense::hover());
        let p = ui.painter();
        p.rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
        let fill = egui::Rect::from_min_size(rect.min, egui::vec2(w * value.clamp(0.0, 1.0), h));
        p.rect_filled(fill, 2.0, colour);
        ui.label(caption);
    });
}

fn picked_image_ui(
    ui: &mut egui::Ui,
    state: &mut TaskResultsState,
    run: &RunRecord,
    preds: &[ZeroShotPrediction],
    table: &AttributeTable,
    thumbs: &mut Thumbnails,
    look: Look,
) {
    let demo = matches!(&run.config.data, crate::train::DataSource::Demo { .. });
    if demo && state.images.is_none() && state.job.is_none() {
        // The same images as the run's (the demo's data seed is fixed), made off the UI thread.
        state.job = Job::spawn("shapes-thumbs", ui.ctx(), |_| {
            let domain =
                crate::data::shapes::shapes_domain(7, crate::run::ZERO_SHOT_DEMO_PER_CLASS);
            let index = domain
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| (f.clone(), i))
                .collect();
            DemoImages { domain, index }
        })
        .ok();
    }
    if let Some(Ok(images)) = take_finished(&mut state.job) {
        state.images = Some(Arc::new(images));
    }
    ui.separator();
    ui.horizontal(|ui| {
        ui.label(RichText::new("Pick an image to see its predicted attributes").strong());
        ui.checkbox(&mut state.all_images, "seen classes too");
    });
    let shown: Vec<(usize, &ZeroShotPrediction)> = preds
        .iter()
        .enumerate()
        .filter(|(_, p)| state.all_images || p.unseen)
        .take(GALLERY_MAX)
        .collect();
    let images = state.images.clone().filter(|_| demo);
    let side = look.thumb_side();
    let cell_w = side + 8.0;
    let columns = ((ui.available_width() / cell_w).floor() as usize).clamp(1, 16);
    let picked = state.picked.filter(|(r, _)| *r == run.id).map(|(_, i)| i);
    let mut clicked = None;
    for row in shown.chunks(columns) {
        ui.horizontal(|ui| {
            for &(i, p) in row {
                let (file, class, predicted) = (&p.file, &p.class, &p.predicted);
                let right = class == predicted;
                let name = format!("{file}: {class}, predicted {predicted}");
                let resp = match &images {
                    Some(im) => {
                        let tex = im.thumb(ui.ctx(), thumbs, file);
                        let r = thumb_ui(ui, tex.as_ref(), side).interact(egui::Sense::click());
                        r.widget_info(|| {
                            egui::WidgetInfo::labeled(egui::Role::Button, true, &name)
                        });
                        let colour = if right { look.good() } else { look.error() };
                        let width = if picked == Some(i) { 3.0 } else { 1.5 };
                        ui.painter().rect_stroke(
                            r.rect.expand(1.0),
                            1.0,
                            egui::Stroke::new(width, colour),
                            egui::StrokeKind::Outside,
                        );
                        r
                    }
                    None => ui.selectable_label(
                        picked == Some(i),
                        RichText::new(format!(
                            "{} {file}",
                            if right { "right:" } else { "wrong:" }
                        ))
                        .small(),
                    ),
                };
                if resp.on_hover_text(&name).clicked() {
                    clicked = Some(i);
                }
            }
        });
    }
    if demo && images.is_none() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.weak("making the thumbnails…");
        });
    }
    ui.weak("Green frame: named right; red: named wrong.");
    if let Some(i) = clicked {
        state.picked = Some((run.id, i));
    }
    let Some(p) = state
        .picked
        .filter(|(r, _)| *r == run.id)
        .and_then(|(_, i)| preds.get(i))
    else {
        return;
    };
    let (file, class, predicted) = (&p.file, &p.class, &p.predicted);
    let probs = &p.attributes;
    let unseen = p.unseen;
    ui.add_space(4.0);
    ui.label(RichText::new(format!("Picked: {file}")).strong());
    ui.horizontal(|ui| {
        if let Some(im) = &images
            && im.index.contains_key(file)
        {
            let tex = im.thumb(ui.ctx(), thumbs, file);
            thumb_ui(ui, tex.as_ref(), side * 2.0);
        }
        ui.vertical(|ui| {
            ui.label(format!(
                "true class: {class}{}",
                if unseen {
                    " (unseen: never in training)"
                } else {
                    " (seen)"
                }
            ));
            let colour = if class == predicted {
                look.good()
            } else {
                look.error()
            };
            ui.colored_label(
                colour,
                RichText::new(format!("the attributes point to: {predicted}")).strong(),
            );
        });
    });
    let sig = |c: &str| table.find(c).map(|r| table.signatures[r].clone());
    let (pred_sig, true_sig) = (sig(predicted), sig(class));
    // One signature column when the attributes point to the right class, two otherwise.
    let same = predicted == class;
    egui::Grid::new("zs-picked")
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            ui.label(RichText::new("attribute").strong());
            ui.label(RichText::new("predicted probability").strong());
            if same {
                ui.label(RichText::new(format!("{predicted} (right)")).strong());
            } else {
                ui.label(RichText::new(format!("points to {predicted}")).strong());
                ui.label(RichText::new(format!("true: {class}")).strong());
            }
            ui.end_row();
            for (a, name) in table.attributes.iter().enumerate() {
                let v = probs.get(a).copied().unwrap_or(0.0);
                ui.label(name);
                bar_ui(ui, v, look.target(), &format!("{:.0}%", v * 100.0));
                let mark = |s: &Option<Vec<f32>>| match s.as_ref().and_then(|s| s.get(a)) {
                    Some(x) if *x >= 0.5 => "has it".to_string(),
                    Some(_) => "—".to_string(),
                    None => "?".to_string(),
                };
                ui.label(mark(&pred_sig));
                if !same {
                    ui.label(mark(&true_sig));
                }
                ui.end_row();
            }
        });
    ui.weak("The predicted class is the one whose signature fits these probabilities best (direct attribute prediction), among the unseen classes for an unseen image and among the seen ones for a seen image.");
}
