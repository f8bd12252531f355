//! The predict view: pick, type or drop an image file and see the most probable classes
//! with their names and probabilities, from the shipped ImageNet EfficientNet-Lite0 or
//! the model of a finished run. The engine's `predict_files` (the path of
//! `transferlab predict`) runs on a background job; the UI only draws its answer.

use super::context::ViewContext;
use super::jobs::{Job, block_on, take_finished};
use super::runs::Runs;
use crate::model::predict::{PredictModel, Prediction, predict_files};
use egui::{ColorImage, RichText, TextureHandle, TextureOptions};
use std::path::PathBuf;

/// Classes shown per image.
const TOP: usize = 5;
/// Longest side of the preview image.
const PREVIEW_SIDE: u32 = 256;

/// Which model classifies: ImageNet's, or a run's (by id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelChoice {
    #[default]
    Imagenet,
    Run(usize),
}

/// What a finished prediction job hands back.
pub struct PredictOutcome {
    pub file: PathBuf,
    /// The model's name as shown.
    pub model: String,
    pub result: Result<Prediction, String>,
    /// The image, small, for the preview.
    pub preview: Option<ColorImage>,
}

/// The predict view's state.
#[derive(Default)]
pub struct PredictState {
    /// Text of the image path field.
    pub path_text: String,
    pub model: ModelChoice,
    job: Option<Job<PredictOutcome>>,
    dialog: Option<Job<Option<PathBuf>>>,
    pub outcome: Option<PredictOutcome>,
    preview: Option<TextureHandle>,
}

impl PredictState {
    /// True while a prediction runs.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Classify `file` in the background with the chosen model (`model`, `name` as shown).
    pub fn start(&mut self, ctx: &egui::Context, file: PathBuf, model: PredictModel, name: String) {
        self.path_text = file.display().to_string();
        let job = Job::spawn("predict", ctx, move |_| {
            let result = predict_files(&model, std::slice::from_ref(&file), TOP)
                .map_err(|e| e.to_string())
                .and_then(|mut r| r.pop().unwrap_or_else(|| Err("no answer".into())));
            let preview = result.is_ok().then(|| preview(&file)).flatten();
            PredictOutcome {
                file,
                model: name,
                result,
                preview,
            }
        });
        match job {
            Ok(j) => self.job = Some(j),
            Err(e) => {
                self.outcome = Some(PredictOutcome {
                    file: PathBuf::from(&self.path_text),
                    model: String::new(),
                    result: Err(e),
                    preview: None,
                })
            }
        }
    }

    /// Take a finished prediction or file dialog; the picked file, if one was picked.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<PathBuf> {
        if let Some(Ok(outcome)) = take_finished(&mut self.job) {
            self.preview = outcome
                .preview
                .clone()
                .map(|img| ctx.load_texture("predict-preview", img, TextureOptions::LINEAR));
            self.outcome = Some(outcome);
        }
        match take_finished(&mut self.dialog) {
            Some(Ok(Some(path))) => Some(path),
            _ => None,
        }
    }
}

/// The image, at most `PREVIEW_SIDE` a side, for the view.
fn preview(file: &std::path::Path) -> Option<ColorImage> {
    let img = crate::data::folder::decode_checked(file).ok()?;
    let small = img.thumbnail(PREVIEW_SIDE, PREVIEW_SIDE).to_rgba8();
    let size = [small.width() as usize, small.height() as usize];
    Some(ColorImage::from_rgba_unmultiplied(size, small.as_raw()))
}

/// The model a choice stands for, and its name; None when the run has no model.
fn resolve(runs: &Runs, choice: ModelChoice) -> Option<(PredictModel, String)> {
    match choice {
        ModelChoice::Imagenet => Some((
            PredictModel::Imagenet,
            "EfficientNet-Lite0 (ImageNet, 1000 classes)".into(),
        )),
        ModelChoice::Run(id) => {
            let r = runs.get(id).filter(|r| r.has_pair_model())?;
            Some((PredictModel::Checkpoint(r.checkpoint.clone()), r.label()))
        }
    }
}

/// Classify `file` with the chosen model (the view's button, a picked or dropped file).
pub fn predict_file(runs: &Runs, state: &mut PredictState, ctx: &egui::Context, file: PathBuf) {
    if let Some((model, name)) = resolve(runs, state.model) {
        state.start(ctx, file, model, name);
    }
}

/// Draw the predict view.
pub fn predict_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, state: &mut PredictState) {
    if let Some(picked) = state.poll(ui.ctx()) {
        predict_file(ctx.runs, state, &ui.ctx().clone(), picked);
    }
    ui.label(
        "Pick, type or drop an image file to see what a model makes of it: the shipped \
         ImageNet network, or the model of one of your runs.",
    );
    ui.horizontal(|ui| {
        let l = ui.label("Model");
        if let ModelChoice::Run(id) = state.model
            && !ctx.runs.get(id).is_some_and(|r| r.has_pair_model())
        {
            state.model = ModelChoice::Imagenet;
        }
        let current = resolve(ctx.runs, state.model)
            .map(|(_, n)| n)
            .unwrap_or_default();
        egui::ComboBox::from_id_salt("predict-model")
            .selected_text(current)
            .width(320.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(
                    &mut state.model,
                    ModelChoice::Imagenet,
                    "EfficientNet-Lite0 (ImageNet, 1000 classes)",
                );
                for r in ctx.runs.records.iter().filter(|r| r.has_pair_model()) {
                    ui.selectable_value(&mut state.model, ModelChoice::Run(r.id), r.label());
                }
            })
            .response
            .labelled_by(l.id);
    });
    ui.horizontal(|ui| {
        let l = ui.label("Image file");
        let field = ui
            .add(egui::TextEdit::singleline(&mut state.path_text).desired_width(420.0))
            .labelled_by(l.id);
        let typed = PathBuf::from(state.path_text.trim());
        let ready = typed.is_file() && !state.is_busy();
        let go = ui.add_enabled(ready, egui::Button::new("Predict"));
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ready && (go.clicked() || entered) {
            predict_file(ctx.runs, state, &ui.ctx().clone(), typed);
        }
        if ui
            .add_enabled(state.dialog.is_none(), egui::Button::new("Choose image…"))
            .clicked()
        {
            let job = Job::spawn("dialog", ui.ctx(), move |_| {
                let d = rfd::AsyncFileDialog::new()
                    .set_title("Choose an image")
                    .add_filter("images", &crate::data::folder::IMAGE_EXTENSIONS);
                block_on(d.pick_file()).map(|h| h.path().to_path_buf())
            });
            state.dialog = job.ok();
        }
    });
    ui.weak("Or drop an image file on the window while this view is open.");
    ui.separator();
    if state.is_busy() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("classifying…");
        });
    }
    let Some(outcome) = &state.outcome else {
        return;
    };
    match &outcome.result {
        Err(e) => super::widgets::error_box_ui(
            ui,
            ctx.look,
            &format!("Could not classify {}", outcome.file.display()),
            e,
        ),
        Ok(p) => {
            ui.label(RichText::new(format!("{} — {}", p.file, outcome.model)).strong());
            ui.horizontal_top(|ui| {
                if let Some(t) = &state.preview {
                    ui.add(egui::Image::new(t).max_size(egui::vec2(256.0, 256.0)));
                }
                egui::Grid::new("predict-top")
                    .num_columns(3)
                    .striped(true)
                    .show(ui, |ui| {
                        for c in &p.top {
                            ui.label(&c.name);
                            ui.add(
                                egui::ProgressBar::new(c.probability)
                                    .desired_width(160.0)
                                    .text(format!("{:.1}%", 100.0 * c.probability)),
                            );
                            ui.weak(format!("class {}", c.index));
                            ui.end_row();
                        }
                    });
            });
        }
    }
}
