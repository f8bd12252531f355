//! Setup of the runs beyond one source and one target: the data of a multitask or zero-shot
//! run (the built-in shapes demo, or a folder with a CSV), the multitask task weights, the
//! zero-shot attribute table with its unseen classes ticked, and the stepping stones
//! between a source and a target (the demo's built-in ones, or intermediate folders).
//! CSV files are read on background threads; the demo's tables are built in memory.

use super::files::{FieldStatus, PathField, path_field_ui};
use super::jobs::{Job, block_on, take_finished};
use super::theme::Look;
use super::widgets::{BoxKind, arrow_ui, stage_box_ui};
use crate::data::demo::{STEPS_ANGLES, demo_intermediates};
use crate::method::{LabelledData, MethodKind};
use crate::run::TASK_DEMO;
use crate::tasks::tables::{AttributeTable, LabelTable, read_attribute_table, read_label_table};
use crate::train::{DataSource, ExperimentConfig};
use egui::RichText;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Range of a multitask loss weight (saved settings are reset outside it).
pub const TASK_WEIGHT: std::ops::RangeInclusive<f64> = 0.0..=10.0;

/// Where a multitask or zero-shot run's images come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskSource {
    /// The built-in `shapes` demo.
    #[default]
    Demo,
    /// A folder of images and a CSV.
    Folder,
}

/// The remembered data of the across-task methods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskData {
    pub source: TaskSource,
    pub folder: String,
    /// Multitask: file → one label per task.
    pub labels_csv: String,
    /// Zero-shot: class → attribute values.
    pub attributes_csv: String,
}

/// A CSV path: typed or chosen in a dialog, read in the background whenever it names a file.
pub struct CsvField<T> {
    pub text: String,
    what: &'static str,
    read: fn(&Path) -> Result<T, String>,
    job: Option<Job<Result<T, String>>>,
    /// The path being read by `job`.
    job_path: String,
    /// The path last read and what reading it gave.
    pub table: Option<(String, Result<T, String>)>,
    dialog: Option<Job<Option<PathBuf>>>,
}

impl<T: Send + 'static> CsvField<T> {
    fn new(what: &'static str, read: fn(&Path) -> Result<T, String>) -> Self {
        Self {
            text: String::new(),
            what,
            read,
            job: None,
            job_path: String::new(),
            table: None,
            dialog: None,
        }
    }

    /// The table of the current path, once read without error.
    pub fn ok(&self) -> Option<&T> {
        match &self.table {
            Some((p, Ok(t))) if p == self.text.trim() => Some(t),
            _ => None,
        }
    }

    /// Why the field cannot be used yet, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let text = self.text.trim();
        if text.is_empty() {
            return Some(format!("choose the {} CSV", self.what));
        }
        match &self.table {
            Some((p, Err(e))) if p == text => Some(e.clone()),
            Some((p, Ok(_))) if p == text => None,
            _ if self.job.is_some() && self.job_path == text => {
                Some(format!("the {} CSV is being read", self.what))
            }
            _ => Some(format!("no such file: {text}")),
        }
    }

    fn poll(&mut self, ctx: &egui::Context) {
        if let Some(Ok(Some(path))) = take_finished(&mut self.dialog) {
            self.text = path.display().to_string();
        }
        if let Some(r) = take_finished(&mut self.job) {
            self.table = Some((std::mem::take(&mut self.job_path), r.and_then(|t| t)));
        }
        let text = self.text.trim().to_string();
        let known = self.table.as_ref().is_some_and(|(p, _)| *p == text)
            || (self.job.is_some() && self.job_path == text);
        // A stat per frame while the path is new: cheap, and a typo shows at once.
        if !known && !text.is_empty() && Path::new(&text).is_file() {
            let read = self.read;
            let path = PathBuf::from(&text);
            match Job::spawn("csv", ctx, move |_| read(&path)) {
                Ok(job) => {
                    self.job = Some(job);
                    self.job_path = text;
                }
                Err(e) => self.table = Some((text, Err(e))),
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, label: &str, look: Look) {
        ui.horizontal(|ui| {
            let l = ui.label(label);
            let w = (ui.available_width() - 110.0).max(120.0);
            ui.add(
                egui::TextEdit::singleline(&mut self.text)
                    .desired_width(w)
                    .hint_text("/path/to/table.csv"),
            )
            .labelled_by(l.id);
            let b = ui.add_enabled(self.dialog.is_none(), egui::Button::new("Choose file…"));
            if b.clicked() {
                let start = PathBuf::from(self.text.trim());
                let title = format!("Choose the {} CSV", self.what);
                if let Ok(job) = Job::spawn("dialog", ui.ctx(), move |_| {
                    let mut d = rfd::AsyncFileDialog::new()
                        .set_title(title)
                        .add_filter("CSV", &["csv"]);
                    if let Some(dir) = start.parent().filter(|d| d.is_dir()) {
                        d = d.set_directory(dir);
                    }
                    block_on(d.pick_file()).map(|h| h.path().to_path_buf())
                }) {
                    self.dialog = Some(job);
                }
            }
        });
        let text = self.text.trim();
        if text.is_empty() {
            ui.weak("Type or paste the path of the CSV, or choose it.");
        } else if self.ok().is_some() {
            ui.colored_label(look.good(), "OK: read");
        } else if let Some(p) = self.problem() {
            if p.contains("being read") {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak("reading…");
                });
            } else {
                ui.colored_label(look.error(), super::theme::plain(&p));
            }
        }
    }
}

fn read_labels(path: &Path) -> Result<LabelTable, String> {
    read_label_table(path).map_err(|e| e.to_string())
}

fn read_attributes(path: &Path) -> Result<AttributeTable, String> {
    read_attribute_table(path).map_err(|e| e.to_string())
}

/// The setup state of the across-task methods and the stepping stones.
pub struct TaskSetup {
    /// Folder of a multitask or zero-shot run.
    pub folder: PathField,
    pub labels: CsvField<LabelTable>,
    pub attributes: CsvField<AttributeTable>,
    /// Intermediate folders of a stepping-stone run, in order.
    pub vias: Vec<PathField>,
    /// The shapes demo's tasks (shape, colour, fill).
    demo_tasks: Vec<String>,
    /// The shapes demo's attribute table and its unseen classes by default.
    demo_table: AttributeTable,
    demo_unseen: Vec<String>,
}

impl Default for TaskSetup {
    fn default() -> Self {
        // One image per class: the tables, not the images, are what is wanted here.
        let multitask = crate::tasks::multitask::shapes_multitask(0, 1);
        let zero_shot = crate::tasks::zeroshot::shapes_zero_shot(0, 1);
        Self {
            folder: PathField::new("image", true),
            labels: CsvField::new("labels", read_labels),
            attributes: CsvField::new("attributes", read_attributes),
            vias: Vec::new(),
            demo_tasks: multitask.tasks.into_iter().map(|t| t.name).collect(),
            demo_table: zero_shot.table,
            demo_unseen: zero_shot.default_unseen,
        }
    }
}

impl TaskSetup {
    /// Fill the fields from remembered settings.
    pub fn restore(&mut self, data: &TaskData, via: &[PathBuf]) {
        self.folder.set(data.folder.clone());
        self.labels.text = data.labels_csv.clone();
        self.attributes.text = data.attributes_csv.clone();
        self.vias = via
            .iter()
            .map(|p| {
                let mut f = PathField::new("intermediate", true);
                f.set(p.display().to_string());
                f
            })
            .collect();
    }

    /// Advance the background checks and reads.
    pub fn poll(&mut self, ctx: &egui::Context) {
        self.folder.poll(ctx);
        self.labels.poll(ctx);
        self.attributes.poll(ctx);
        for v in &mut self.vias {
            v.poll(ctx);
        }
    }

    /// The task names of the chosen data, when known.
    pub fn tasks(&self, data: &TaskData) -> Option<Vec<String>> {
        match data.source {
            TaskSource::Demo => Some(self.demo_tasks.clone()),
            TaskSource::Folder => self
                .labels
                .ok()
                .map(|t| t.tasks.iter().map(|t| t.name.clone()).collect()),
        }
    }

    /// The attribute table of the chosen data, when known.
    pub fn attribute_table(&self, data: &TaskData) -> Option<&AttributeTable> {
        match data.source {
            TaskSource::Demo => Some(&self.demo_table),
            TaskSource::Folder => self.attributes.ok(),
        }
    }

    /// The unseen classes a zero-shot run will hold out.
    pub fn unseen(&self, config: &ExperimentConfig, data: &TaskData) -> Vec<String> {
        if config.unseen.is_empty() && data.source == TaskSource::Demo {
            self.demo_unseen.clone()
        } else {
            config.unseen.clone()
        }
    }

    /// Why a multitask or zero-shot run cannot start with its data, if it cannot (the
    /// config itself is checked by `setup::run_problem`).
    pub fn problem(&self, config: &ExperimentConfig, data: &TaskData) -> Option<String> {
        if data.source == TaskSource::Folder {
            match &self.folder.status {
                FieldStatus::Valid(s) => {
                    if config.method == MethodKind::ZeroShot && s.classes == 0 {
                        return Some(
                            "zero-shot needs a folder with one subfolder per class".into(),
                        );
                    }
                }
                FieldStatus::Empty => return Some("choose the image folder".into()),
                FieldStatus::Checking => return Some("the image folder is being checked".into()),
                FieldStatus::Invalid(e) => return Some(format!("image folder: {e}")),
            }
            let csv = match config.method {
                MethodKind::Multitask => self.labels.problem(),
                _ => self.attributes.problem(),
            };
            if csv.is_some() {
                return csv;
            }
        }
        match config.method {
            MethodKind::Multitask => {
                let tasks = self.tasks(data)?;
                let w = &config.task_weights;
                if !w.is_empty() && w.len() != tasks.len() {
                    return Some(format!(
                        "{} task weights for {} tasks",
                        w.len(),
                        tasks.len()
                    ));
                }
                if !w.is_empty() && w.iter().all(|&w| w <= 0.0) {
                    return Some("at least one task weight must be above 0".into());
                }
            }
            MethodKind::ZeroShot => {
                let table = self.attribute_table(data)?;
                let unseen = self.unseen(config, data);
                let n = unseen.iter().filter(|u| table.find(u).is_some()).count();
                if n < 2 {
                    return Some("tick at least two unseen classes in the attribute table".into());
                }
                if table.classes.len() < n + 2 {
                    return Some("leave at least two classes seen, to learn from".into());
                }
            }
            _ => {}
        }
        None
    }

    /// The config of a multitask or zero-shot run with this data.
    pub fn run_config(&self, config: &ExperimentConfig, data: &TaskData) -> ExperimentConfig {
        let mut c = config.clone();
        // Points are not images: a backbone chosen for the moons demo does not apply.
        if c.backbone == Some(crate::model::BackboneKind::Mlp) {
            c.backbone = None;
        }
        c.via.clear();
        c.stepping_stones = false;
        c.labels = None;
        c.attributes = None;
        match data.source {
            TaskSource::Demo => {
                c.data = DataSource::Demo {
                    name: TASK_DEMO.into(),
                }
            }
            TaskSource::Folder => {
                c.data = DataSource::Folder {
                    folder: PathBuf::from(self.folder.text.trim()),
                };
                match c.method {
                    MethodKind::Multitask => c.labels = Some(data.labels_csv.trim().into()),
                    _ => c.attributes = Some(data.attributes_csv.trim().into()),
                }
            }
        }
        if c.method == MethodKind::ZeroShot {
            c.unseen = self.unseen(config, data);
        }
        c
    }

    /// The intermediate folders as typed (empty fields left out).
    fn via_paths(&self) -> Vec<PathBuf> {
        self.vias
            .iter()
            .map(|f| f.text.trim())
            .filter(|t| !t.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// Why the stepping stones cannot be used, if they cannot.
    pub fn via_problem(&self, config: &ExperimentConfig) -> Option<String> {
        if !config.stepping_stones && config.via.is_empty() {
            return None;
        }
        if config.method.labelled_data() == LabelledData::Target {
            return Some(format!(
                "{} never trains on the source, so it cannot step through intermediate domains: untick the stepping stones",
                config.method.name()
            ));
        }
        for (i, f) in self.vias.iter().enumerate() {
            match &f.status {
                FieldStatus::Invalid(e) => {
                    return Some(format!("intermediate folder {}: {e}", i + 1));
                }
                FieldStatus::Checking => {
                    return Some(format!("intermediate folder {} is being checked", i + 1));
                }
                _ => {}
            }
        }
        None
    }
}

/// Intermediate domains a demo brings (their names), empty for demos that have none.
pub fn demo_stones(demo: &str) -> Vec<String> {
    // No images are made for zero per class: only the count is wanted.
    let n = demo_intermediates(demo, 0, 0).len();
    (0..n)
        .map(|i| match (demo, STEPS_ANGLES.get(i)) {
            ("digits-steps", Some(a)) => format!("rotated {a}°"),
            _ => format!("intermediate {}", i + 1),
        })
        .collect()
}

/// Data, weights or attribute table of a multitask or zero-shot run (in place of the
/// network diagram: the network is built for the task data when the run starts).
pub fn task_data_ui(
    ui: &mut egui::Ui,
    state: &mut TaskSetup,
    data: &mut TaskData,
    config: &mut ExperimentConfig,
    look: Look,
) {
    let multitask = config.method == MethodKind::Multitask;
    ui.heading(if multitask {
        "Multitask data: several labels per image"
    } else {
        "Zero-shot data: classes described by attributes"
    });
    ui.weak(if multitask {
        "One shared trunk with a head per task, trained together, side by side with each task trained alone on the same trunk from the same start: the comparison is the point."
    } else {
        "The network learns to predict each attribute from images of the seen classes only. An image of an unseen class is named by the class whose attribute signature its predicted attributes fit best."
    });
    ui.horizontal(|ui| {
        ui.label("Images");
        ui.selectable_value(&mut data.source, TaskSource::Demo, "built-in shapes demo");
        ui.selectable_value(&mut data.source, TaskSource::Folder, "folder + CSV");
    });
    match data.source {
        TaskSource::Demo => {
            ui.weak(if multitask {
                "Shapes demo: 540 images of a circle, square or triangle on a red, green or blue card, filled or outlined; tasks shape, colour and fill."
            } else {
                "Shapes demo: 18 classes (3 shapes × 3 colours × filled or outline), 60 images each, 7 attributes. Every attribute value appears among the seen classes; the unseen combinations never do."
            });
        }
        TaskSource::Folder => {
            path_field_ui(ui, &mut state.folder, "Image folder", look);
            if multitask {
                state.labels.ui(ui, "Labels CSV", look);
                ui.weak("file,task1,task2,… — one row per image (its path inside the folder), one column per task; an empty cell = no label for that task.");
            } else {
                state.attributes.ui(ui, "Attributes CSV", look);
                ui.weak(
                    "class,attr1,attr2,… — one row per class subfolder, values 0/1 or numbers.",
                );
            }
        }
    }
    data.folder = state.folder.text.clone();
    data.labels_csv = state.labels.text.clone();
    data.attributes_csv = state.attributes.text.clone();
    ui.add_space(6.0);
    if multitask {
        weights_ui(ui, state, data, config);
    } else {
        match state.attribute_table(data).cloned() {
            Some(table) => {
                let defaults = (data.source == TaskSource::Demo).then(|| state.demo_unseen.clone());
                unseen_grid_ui(ui, &table, config, defaults.as_deref(), look);
            }
            None => {
                ui.weak("The attribute table appears here once the CSV is read.");
            }
        }
    }
    if config.freeze > 0 && config.init.is_none() {
        ui.horizontal(|ui| {
            ui.colored_label(
                look.warn(),
                format!(
                    "{} stage(s) of a new network will stay frozen at random weights.",
                    config.freeze
                ),
            );
            if ui.button("Freeze nothing").clicked() {
                config.freeze = 0;
            }
        });
    }
}

fn weights_ui(
    ui: &mut egui::Ui,
    state: &TaskSetup,
    data: &TaskData,
    config: &mut ExperimentConfig,
) {
    ui.label(RichText::new("Task weights").strong());
    let Some(tasks) = state.tasks(data) else {
        ui.weak("The tasks appear here once the labels CSV is read.");
        return;
    };
    if config.task_weights.len() != tasks.len() {
        // Empty = every task weighs 1; weights of other data no longer apply.
        config.task_weights.clear();
    }
    let mut weights = if config.task_weights.is_empty() {
        vec![1.0; tasks.len()]
    } else {
        config.task_weights.clone()
    };
    let mut changed = false;
    ui.horizontal_wrapped(|ui| {
        for (t, w) in tasks.iter().zip(weights.iter_mut()) {
            let l = ui.label(t.as_str());
            changed |= ui
                .add(egui::DragValue::new(w).speed(0.05).range(TASK_WEIGHT))
                .labelled_by(l.id)
                .on_hover_text(format!("weight of the {t} loss in the joint model's sum"))
                .changed();
            ui.add_space(10.0);
        }
    });
    if changed {
        config.task_weights = weights;
    }
    ui.weak("The joint model minimises Σ weight × loss of each task; 0 leaves a task out of the joint training (it is still trained alone).");
}

/// The attribute table, classes × attributes, with the unseen classes marked. With
/// `editable`, each class has a checkbox that moves it between seen and unseen.
pub fn attribute_grid_ui(
    ui: &mut egui::Ui,
    id: &str,
    table: &AttributeTable,
    unseen: &[String],
    mut editable: Option<&mut Vec<String>>,
    footer: Option<(&str, &[f64])>,
    look: Look,
) {
    let weak = ui.visuals().weak_text_color();
    let on = look.target();
    egui::Grid::new(id)
        .striped(true)
        .spacing([6.0, 2.0])
        .show(ui, |ui| {
            let first = if editable.is_some() {
                "class (ticked = unseen)"
            } else {
                "class"
            };
            ui.label(RichText::new(first).strong());
            for a in &table.attributes {
                ui.label(RichText::new(a).strong());
            }
            ui.end_row();
            let cell = ui.text_style_height(&egui::TextStyle::Body);
            for (c, class) in table.classes.iter().enumerate() {
                let is_unseen = unseen.contains(class);
                match editable.as_deref_mut() {
                    Some(list) => {
                        let mut ticked = is_unseen;
                        let text = if is_unseen {
                            RichText::new(class).color(on).strong()
                        } else {
                            RichText::new(class)
                        };
                        if ui
                            .checkbox(&mut ticked, text)
                            .on_hover_text("ticked: never shown in training, recognised by its attributes alone")
                            .changed()
                        {
                            if ticked {
                                list.push(class.clone());
                            } else {
                                list.retain(|u| u != class);
                            }
                        }
                    }
                    None => {
                        if is_unseen {
                            ui.label(RichText::new(format!("{class} (unseen)")).color(on).strong());
                        } else {
                            ui.label(class);
                        }
                    }
                }
                for v in &table.signatures[c] {
                    let (rect, resp) =
                        ui.allocate_exact_size(egui::vec2(cell * 2.2, cell), egui::Sense::hover());
                    let v = v.clamp(0.0, 1.0);
                    let colour = if is_unseen { on } else { look.source() };
                    let r = egui::Rect::from_center_size(rect.center(), egui::vec2(cell * 0.8, cell * 0.8));
                    if v > 0.0 {
                        ui.painter().rect_filled(r, 2.0, colour.gamma_multiply(0.2 + 0.8 * v));
                    } else {
                        ui.painter().rect_stroke(
                            r,
                            2.0,
                            egui::Stroke::new(1.0, weak),
                            egui::StrokeKind::Inside,
                        );
                    }
                    resp.on_hover_text(format!("{class}: {v}"));
                }
                ui.end_row();
            }
            if let Some((title, values)) = footer {
                ui.label(RichText::new(title).strong());
                for v in values {
                    ui.label(RichText::new(format!("{:.0}%", v * 100.0)).strong());
                }
                ui.end_row();
            }
        });
}

fn unseen_grid_ui(
    ui: &mut egui::Ui,
    table: &AttributeTable,
    config: &mut ExperimentConfig,
    defaults: Option<&[String]>,
    look: Look,
) {
    ui.label(RichText::new("Attribute table: tick the classes to hold out (unseen)").strong());
    // Names of other data (another CSV) no longer apply.
    config.unseen.retain(|u| table.find(u).is_some());
    let mut list: Vec<String> = match defaults {
        Some(d) if config.unseen.is_empty() => d.to_vec(),
        _ => config.unseen.clone(),
    };
    let before = list.clone();
    attribute_grid_ui(
        ui,
        "unseen-grid",
        table,
        &before,
        Some(&mut list),
        None,
        look,
    );
    if list != before {
        config.unseen = list.clone();
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "{} unseen, {} seen: chance among the unseen is {}.",
            list.len(),
            table.classes.len().saturating_sub(list.len()),
            if list.is_empty() {
                "—".to_string()
            } else {
                format!("{:.0}%", 100.0 / list.len() as f64)
            }
        ));
        if defaults.is_some()
            && !config.unseen.is_empty()
            && ui.button("Back to the demo's unseen classes").clicked()
        {
            config.unseen.clear();
        }
    });
}

/// The stepping-stones section of an ordinary method: the demo's built-in stones, extra
/// intermediate folders, and the chain from source to target drawn as boxes.
pub fn stepping_ui(
    ui: &mut egui::Ui,
    state: &mut TaskSetup,
    config: &mut ExperimentConfig,
    loaded_demo: Option<&str>,
    look: Look,
) {
    ui.heading("Stepping stones");
    ui.weak("When source and target are far apart, go through intermediate domains: the model adapts to the first, labels it itself (its most confident 80 %), goes on from there to the next, and so on to the target. It is compared with direct transfer on the same budget.");
    let stones = loaded_demo.map(demo_stones).unwrap_or_default();
    if stones.is_empty() {
        config.stepping_stones = false;
    } else {
        ui.checkbox(
            &mut config.stepping_stones,
            "through the demo's intermediate domains",
        )
        .on_hover_text(stones.join(", "));
    }
    let mut remove = None;
    for (i, f) in state.vias.iter_mut().enumerate() {
        ui.push_id(("via", i), |ui| {
            ui.horizontal(|ui| {
                if ui
                    .small_button("Remove")
                    .on_hover_text("remove this intermediate folder")
                    .clicked()
                {
                    remove = Some(i);
                }
                ui.vertical(|ui| {
                    path_field_ui(ui, f, &format!("Intermediate {}", i + 1), look);
                });
            });
        });
    }
    if let Some(i) = remove {
        state.vias.remove(i);
    }
    if ui
        .button("Add an intermediate folder")
        .on_hover_text("a folder of images between source and target (flat, or with class subfolders whose labels are only used to score the pseudo-labels)")
        .clicked()
    {
        state.vias.push(PathField::new("intermediate", true));
    }
    config.via = state.via_paths();
    let mut chain: Vec<String> = Vec::new();
    if config.stepping_stones {
        chain.extend(stones);
    }
    chain.extend(config.via.iter().map(|p| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    }));
    if chain.is_empty() {
        ui.weak("No stepping stones: the run goes straight from source to target.");
        return;
    }
    let hops = chain.len() + 1;
    egui::ScrollArea::horizontal()
        .id_salt("chain")
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                stage_box_ui(ui, "source\n(labelled)", BoxKind::Io, look);
                for (i, c) in chain.iter().enumerate() {
                    arrow_ui(ui);
                    stage_box_ui(
                        ui,
                        &format!("stone {}\n{c}", i + 1),
                        BoxKind::Stage { frozen: false },
                        look,
                    );
                }
                arrow_ui(ui);
                stage_box_ui(ui, "target", BoxKind::Io, look);
            });
        });
    ui.label(format!(
        "{hops} hops of {e} epoch(s) each, then direct transfer for {d} epochs (the same budget): {t} epochs in all.",
        e = config.epochs,
        d = hops * config.epochs,
        t = 2 * hops * config.epochs
    ));
}
