//! The "Which source?" panel of the Similarity view: candidate source folders (and
//! starting models) for the loaded target folder, ranked on a background thread by the
//! engine's [`crate::train::rank`], shown as bars, with a button that makes the best
//! folder the source.

use super::commands::AppCommand;
use super::context::ViewContext;
use super::jobs::{Job, take_finished};
use crate::train::rank::{Candidate, RankFeatures, RankReport, RankRequest, rank};
use egui::RichText;
use std::path::PathBuf;

/// Labelled target images per class the model scores use when the run asks for none.
const DEFAULT_MODEL_LABELS: usize = 10;

/// The panel's state: the candidates typed in, the ranking job and its result.
#[derive(Default)]
pub struct RankState {
    /// The path being typed (a folder, or a `.safetensors` model).
    pub new_candidate: String,
    pub candidates: Vec<PathBuf>,
    /// Rank the shipped ImageNet network as a starting model too.
    pub imagenet: bool,
    job: Option<Job<Result<RankReport, String>>>,
    pub report: Option<RankReport>,
    pub error: Option<String>,
}

impl RankState {
    /// True while a ranking runs.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Take a finished ranking.
    pub fn poll(&mut self) {
        if let Some(result) = take_finished(&mut self.job) {
            match result.and_then(|r| r) {
                Ok(report) => {
                    self.report = Some(report);
                    self.error = None;
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Add the typed candidate, if it names an existing file or folder.
    fn add_typed(&mut self) {
        let path = PathBuf::from(self.new_candidate.trim());
        if self.new_candidate.trim().is_empty() {
            return;
        }
        if !path.exists() {
            self.error = Some(format!("{} does not exist", path.display()));
            return;
        }
        if !self.candidates.contains(&path) {
            self.candidates.push(path);
        }
        self.new_candidate.clear();
        self.error = None;
    }

    /// The request for `target`: folders as sources, files as models.
    pub fn request(&self, target: PathBuf, target_labels: usize, seed: u64) -> RankRequest {
        let mut candidates: Vec<Candidate> = self
            .candidates
            .iter()
            .map(|p| {
                if p.is_dir() {
                    Candidate::Folder(p.clone())
                } else {
                    Candidate::Model(p.clone())
                }
            })
            .collect();
        if self.imagenet {
            candidates.push(Candidate::Imagenet);
        }
        let models = candidates
            .iter()
            .any(|c| !matches!(c, Candidate::Folder(_)));
        RankRequest {
            target,
            candidates,
            target_labels: if models && target_labels == 0 {
                DEFAULT_MODEL_LABELS
            } else {
                target_labels
            },
            features: RankFeatures::Imagenet,
            max_per_domain: 300,
            seed,
        }
    }

    fn start(&mut self, ctx: &egui::Context, req: RankRequest) {
        self.error = None;
        match Job::spawn("rank", ctx, move |_| {
            rank(&req, &mut |_| {}).map_err(|e| e.words(crate::train::Audience::App))
        }) {
            Ok(job) => self.job = Some(job),
            Err(e) => self.error = Some(e),
        }
    }
}

/// Draw the panel (inside the Similarity view's side column).
pub fn rank_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, state: &mut RankState) {
    let look = ctx.look;
    egui::CollapsingHeader::new(RichText::new("Which source?").strong())
        .id_salt("which-source")
        .default_open(false)
        .show(ui, |ui| {
            let target = ctx.settings.target_folder.trim().to_string();
            if ctx.settings.data_mode != super::settings::DataMode::Folders || target.is_empty()
            {
                ui.weak("Load a target folder (Data view) to rank candidate sources for it.");
                return;
            }
            ui.weak("Add candidate source folders (ranked by their distance to the target on ImageNet features) or saved models (ranked by LogME on a few labelled target images).");
            ui.horizontal(|ui| {
                let l = ui.label("Candidate");
                let r = ui
                    .add(
                        egui::TextEdit::singleline(&mut state.new_candidate)
                            .desired_width((ui.available_width() - 60.0).max(100.0))
                            .hint_text("/path/to/folder or model.safetensors"),
                    )
                    .labelled_by(l.id);
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.button("Add").clicked() || enter {
                    state.add_typed();
                }
            });
            let mut remove = None;
            for (i, c) in state.candidates.iter().enumerate() {
                ui.horizontal(|ui| {
                    if ui.small_button("remove").clicked() {
                        remove = Some(i);
                    }
                    ui.label(c.display().to_string());
                });
            }
            if let Some(i) = remove {
                state.candidates.remove(i);
            }
            ui.checkbox(&mut state.imagenet, "also rank the built-in ImageNet model");
            let ready = !state.candidates.is_empty() || state.imagenet;
            ui.horizontal(|ui| {
                let b = ui
                    .add_enabled(ready && !state.is_busy(), egui::Button::new("Rank"))
                    .on_disabled_hover_text("add a candidate first");
                if b.clicked() {
                    let req = state.request(
                        PathBuf::from(&target),
                        ctx.settings.config.target_labels,
                        ctx.settings.config.seed,
                    );
                    state.start(ui.ctx(), req);
                }
                if state.is_busy() {
                    ui.spinner();
                    ui.weak("measuring the candidates…");
                }
            });
            if let Some(e) = &state.error {
                ui.colored_label(look.error(), e);
            }
            if let Some(report) = &state.report {
                ranking_ui(ui, ctx, report);
            }
        });
}

/// The ranking as bars, best first within each kind, and "Use as source" on the best folder.
fn ranking_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, report: &RankReport) {
    for kind in ["folder", "model"] {
        let of_kind: Vec<_> = report
            .candidates
            .iter()
            .filter(|c| c.kind == kind)
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        ui.add_space(4.0);
        ui.label(RichText::new(if kind == "folder" {
            "Source folders, closest to the target first (MMD²)"
        } else {
            "Starting models, best features first (LogME)"
        }));
        // Bars from the worst score (short) to the best (full).
        let (lo, hi) = of_kind
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), c| {
                (a.min(c.score), b.max(c.score))
            });
        for c in &of_kind {
            let fill = if hi > lo {
                0.15 + 0.85 * ((c.score - lo) / (hi - lo)) as f32
            } else {
                1.0
            };
            let figures = crate::metric::key_values(&c.measures, 4, ", ");
            ui.horizontal(|ui| {
                ui.label(format!("#{}", c.rank));
                ui.add(
                    egui::ProgressBar::new(fill)
                        .desired_width(120.0)
                        .text(format!(
                            "{} {:.4}",
                            c.by,
                            c.measures.get(&c.by).copied().unwrap_or(c.score)
                        )),
                )
                .on_hover_text(&figures);
                ui.label(short_name(&c.name)).on_hover_text(&c.name);
            });
        }
        if kind == "folder"
            && let Some(best) = of_kind.first()
        {
            let path = PathBuf::from(&best.name);
            let current = ctx.settings.source_folder.trim() == best.name;
            let b = ui
                .add_enabled(!current, egui::Button::new("Use the closest as source"))
                .on_disabled_hover_text("it is the source already");
            if b.clicked() {
                ctx.command(AppCommand::LoadFolders {
                    source: path,
                    target: PathBuf::from(ctx.settings.target_folder.trim()),
                });
            }
        }
    }
    for n in &report.notes {
        ui.weak(n);
    }
}

/// The last two parts of a path.
fn short_name(name: &str) -> String {
    let parts: Vec<&str> = name.rsplit(['/', '\\']).take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}
