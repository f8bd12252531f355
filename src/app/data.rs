//! The data view (journey 2): choose a built-in demo or two folders (typed, chosen or
//! dropped), load them in the background, and show each domain: a thumbnail grid sampled
//! per class, image and class counts as bars, skipped files with reasons, and warnings —
//! with the feature map of both domains beside them.

use super::commands::AppCommand;
use super::context::ViewContext;
use super::feature_map::{ColourBy, FeatureMap, MapPlot, map_ui};
use super::files::{FieldStatus, PathField, path_field_ui, with_advice};
use super::jobs::{Job, take_finished};
use super::settings::DataMode;
use super::theme::{Look, plain};
use super::thumbs::{SampleKey, thumb_ui};
use crate::data::demo::generate_demo_sized;
use crate::data::{DEMOS, Domain, DomainPair, SampleShape};
use crate::train::load::resize_pair;
use crate::train::{DataSource, ShapeHint, load_pair};
use egui::RichText;
use std::sync::Arc;

/// Thumbnails shown per class.
const THUMBS_PER_CLASS: usize = 8;
/// Thumbnails shown for an unlabeled domain.
const THUMBS_FLAT: usize = 48;

/// Evenly spaced indices of up to `m` of `n` samples (the thumbnails shown).
fn evenly_spaced(n: usize, m: usize) -> Vec<usize> {
    if n <= m {
        return (0..n).collect();
    }
    (0..m).map(|i| i * n / m).collect()
}

/// What the view shows of one domain, computed once when it loads.
#[derive(Clone, Debug, Default)]
pub struct DomainSummary {
    /// Images per class (empty when unlabeled).
    pub counts: Vec<usize>,
    /// Sample indices to show, per class.
    pub samples: Vec<Vec<usize>>,
    /// Sample indices to show for an unlabeled domain.
    pub flat: Vec<usize>,
}

impl DomainSummary {
    fn of(d: &Domain, classes: usize) -> Self {
        match &d.labels {
            Some(labels) => {
                let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
                for (i, &l) in labels.iter().enumerate() {
                    if let Some(v) = by_class.get_mut(l as usize) {
                        v.push(i);
                    }
                }
                DomainSummary {
                    counts: by_class.iter().map(Vec::len).collect(),
                    samples: by_class
                        .iter()
                        .map(|v| {
                            evenly_spaced(v.len(), THUMBS_PER_CLASS)
                                .into_iter()
                                .map(|j| v[j])
                                .collect()
                        })
                        .collect(),
                    flat: Vec::new(),
                }
            }
            None => DomainSummary {
                flat: evenly_spaced(d.len(), THUMBS_FLAT),
                ..Default::default()
            },
        }
    }
}

/// A loaded pair and what the view shows of it.
pub struct LoadedData {
    pub pair: Arc<DomainPair>,
    pub source_summary: DomainSummary,
    pub target_summary: DomainSummary,
    /// Where it came from (goes into run configs).
    pub origin: DataSource,
}

/// The data view's state.
pub struct DataState {
    pub loaded: Option<LoadedData>,
    /// Changes with every load; keys thumbnails and cached results.
    pub pair_id: u64,
    pub source_field: PathField,
    pub target_field: PathField,
    loading: Option<Job<Result<LoadedData, String>>>,
    loading_what: String,
    pub error: Option<String>,
    /// The image side and channels the last load asked for.
    pub requested: Option<ShapeHint>,
}

impl Default for DataState {
    fn default() -> Self {
        Self {
            loaded: None,
            pair_id: 0,
            // A flat source is valid for rotation-pretrain (which reads no label); the
            // other methods refuse it when it loads.
            source_field: PathField::new("source", true),
            target_field: PathField::new("target", true),
            loading: None,
            loading_what: String::new(),
            error: None,
            requested: None,
        }
    }
}

impl DataState {
    /// The loaded pair, if any.
    pub fn pair(&self) -> Option<&Arc<DomainPair>> {
        self.loaded.as_ref().map(|l| &l.pair)
    }

    /// True while a pair is loading.
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// Start loading `origin` in the background, images at the hint's side and channels
    /// (`demo_size`: samples per class, for tests).
    pub fn start_load(
        &mut self,
        ctx: &egui::Context,
        origin: DataSource,
        hint: ShapeHint,
        demo_size: Option<(usize, usize)>,
    ) {
        self.error = None;
        self.requested = Some(hint);
        self.loading_what = match &origin {
            DataSource::Demo { name } => format!("generating the demo '{name}'…"),
            DataSource::Folders { .. } | DataSource::Folder { .. } => "loading the folders…".into(),
        };
        let job = Job::spawn("load", ctx, move |progress| {
            let pair = match (&origin, demo_size) {
                (DataSource::Demo { name }, Some((s, t))) => {
                    generate_demo_sized(name, 7, s, t).map(|p| resize_pair(p, hint))
                }
                _ => load_pair(&origin, hint, &mut |_, p| progress.set(p.done, p.total)),
            }
            .map_err(|e| with_advice(&e.to_string()))?;
            let k = pair.classes.len();
            Ok(LoadedData {
                source_summary: DomainSummary::of(&pair.source, k),
                target_summary: DomainSummary::of(&pair.target, k),
                pair: Arc::new(pair),
                origin,
            })
        });
        match job {
            Ok(j) => self.loading = Some(j),
            Err(e) => self.error = Some(e),
        }
    }

    /// Advance loading and the path fields; true when a new pair arrived.
    pub fn poll(&mut self, ctx: &egui::Context) -> bool {
        self.source_field.poll(ctx);
        self.target_field.poll(ctx);
        if let Some(job) = &self.loading {
            // Show loading progress without a repaint per file.
            if job.started.elapsed().as_millis() > 0 {
                ctx.request_repaint_after(std::time::Duration::from_millis(100));
            }
        }
        match take_finished(&mut self.loading) {
            Some(Ok(Ok(loaded))) => {
                self.loaded = Some(loaded);
                self.pair_id += 1;
                true
            }
            Some(Ok(Err(e)) | Err(e)) => {
                self.error = Some(e);
                false
            }
            None => false,
        }
    }
}

/// Draw the data view; `map` is the similarity view's map of the loaded pair.
pub fn data_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    data: &mut DataState,
    map: Option<&FeatureMap>,
    map_busy: bool,
) {
    let look = ctx.look;
    source_picker_ui(ui, ctx, data);
    ui.separator();
    if let Some(e) = &data.error {
        super::widgets::error_box_ui(ui, look, "Could not load the data", e);
    }
    if let Some(job) = &data.loading {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(&data.loading_what);
            if let Some(f) = job.progress.fraction() {
                ui.add(
                    egui::ProgressBar::new(f)
                        .desired_width(200.0)
                        .show_percentage(),
                );
            }
        });
    }
    let Some(loaded) = &data.loaded else {
        if data.loading.is_none() && data.error.is_none() {
            ui.label("No data loaded yet: pick a demo or two folders above.");
        }
        return;
    };
    let pair = loaded.pair.clone();
    for w in pair
        .warnings
        .iter()
        .filter(|w| w.contains("class sets differ"))
    {
        super::widgets::warning_box_ui(ui, look, w);
    }
    let columns = if ui.available_width() > 900.0 { 3 } else { 2 };
    ui.columns(columns, |cols| {
        let (left, rest) = cols.split_at_mut(1);
        domain_ui(&mut left[0], ctx, &pair, &loaded.source_summary, false);
        domain_ui(&mut rest[0], ctx, &pair, &loaded.target_summary, true);
        if columns == 3 {
            map_card_ui(&mut rest[1], ctx, &pair, map, map_busy);
        }
    });
    if columns == 2 {
        map_card_ui(ui, ctx, &pair, map, map_busy);
    }
}

fn source_picker_ui(ui: &mut egui::Ui, ctx: &mut ViewContext<'_>, data: &mut DataState) {
    let look = ctx.look;
    let commands = &mut *ctx.commands;
    let mode = &mut ctx.settings.data_mode;
    let demo = ctx.settings.demo.as_str();
    ui.horizontal(|ui| {
        ui.label(RichText::new("Domains from").strong());
        ui.selectable_value(mode, DataMode::Demo, "a built-in demo");
        ui.selectable_value(mode, DataMode::Folders, "my folders");
    });
    match mode {
        DataMode::Demo => {
            ui.horizontal(|ui| {
                let l = ui.label("Demo");
                let current = DEMOS.iter().find(|d| d.name == demo);
                let mut chosen = demo.to_string();
                egui::ComboBox::from_id_salt("demo-picker")
                    .selected_text(plain(current.map(|d| d.title).unwrap_or(demo)))
                    .width(320.0)
                    .show_ui(ui, |ui| {
                        for d in DEMOS {
                            ui.selectable_value(&mut chosen, d.name.to_string(), plain(d.title))
                                .on_hover_text(plain(d.description));
                        }
                    })
                    .response
                    .labelled_by(l.id);
                if chosen != demo {
                    commands.push(AppCommand::LoadDemo(chosen));
                }
                if let Some(d) = current {
                    ui.weak(plain(d.description));
                }
            });
        }
        DataMode::Folders => {
            ui.label(
                "Source: one subfolder per class (plenty of labels). Target: class subfolders \
                 (labelled, used to measure accuracy) or images directly inside (unlabeled).",
            );
            path_field_ui(ui, &mut data.source_field, "Source folder", look);
            path_field_ui(ui, &mut data.target_field, "Target folder", look);
            let ready = data
                .source_field
                .valid_path()
                .zip(data.target_field.valid_path());
            ui.horizontal(|ui| {
                let b = ui.add_enabled(
                    ready.is_some() && !data.is_loading(),
                    egui::Button::new("Load these folders"),
                );
                if let Some((source, target)) = ready {
                    if b.clicked() {
                        commands.push(AppCommand::LoadFolders { source, target });
                    }
                } else {
                    let waiting = [&data.source_field, &data.target_field]
                        .iter()
                        .any(|f| f.status == FieldStatus::Checking);
                    if !waiting {
                        ui.weak("Both folders must be valid to load them.");
                    }
                }
            });
        }
    }
}

fn domain_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    pair: &DomainPair,
    summary: &DomainSummary,
    target: bool,
) {
    let (look, pair_id) = (ctx.look, ctx.pair_id);
    let thumbs = &mut *ctx.thumbs;
    let domain = if target { &pair.target } else { &pair.source };
    let role = if target { "Target" } else { "Source" };
    ui.horizontal(|ui| {
        let h = ui.text_style_height(&egui::TextStyle::Heading);
        let (rect, _) = ui.allocate_exact_size(egui::vec2(h, h), egui::Sense::hover());
        ui.painter()
            .circle_filled(rect.center(), h * 0.35, look.domain(target));
        ui.heading(role);
        if !domain.name.eq_ignore_ascii_case(role) {
            ui.weak(plain(&domain.name));
        }
    });
    let labelled = if domain.labels.is_some() {
        format!(
            "{} classes",
            summary.counts.iter().filter(|&&c| c > 0).count()
        )
    } else {
        "unlabeled".into()
    };
    ui.label(format!(
        "{} images · {labelled} · {}",
        domain.len(),
        domain.shape.describe()
    ));
    egui::ScrollArea::vertical()
        .id_salt(("domain-scroll", target))
        .auto_shrink([false, false])
        .max_height(ui.available_height() - 4.0)
        .show(ui, |ui| {
            if let SampleShape::Vector { .. } = domain.shape {
                points_ui(ui, domain, target, look);
            }
            let side = look.thumb_side();
            let max_count = summary.counts.iter().copied().max().unwrap_or(1).max(1);
            for (c, samples) in summary.samples.iter().enumerate() {
                let count = summary.counts[c];
                let name = pair.classes.get(c).map(String::as_str).unwrap_or("?");
                class_bar_ui(ui, name, count, max_count, look.domain(target));
                if count == 0 {
                    ui.weak("  (no images of this class)");
                    continue;
                }
                ui.horizontal_wrapped(|ui| {
                    ui.spacing_mut().item_spacing = egui::vec2(2.0, 2.0);
                    for &i in samples {
                        let key = SampleKey {
                            pair_id,
                            target,
                            index: i,
                        };
                        let tex = thumbs.get(ui.ctx(), domain, key);
                        if matches!(domain.shape, SampleShape::Image { .. }) {
                            thumb_ui(ui, tex.as_ref(), side)
                                .on_hover_text(domain.files.get(i).cloned().unwrap_or_default());
                        }
                    }
                });
            }
            if !summary.flat.is_empty() {
                ui.label(
                    "No class subfolders: the target is unlabeled (accuracy cannot be measured).",
                );
                ui.horizontal_wrapped(|ui| {
                    ui.spacing_mut().item_spacing = egui::vec2(2.0, 2.0);
                    for &i in &summary.flat {
                        let key = SampleKey {
                            pair_id,
                            target,
                            index: i,
                        };
                        let tex = thumbs.get(ui.ctx(), domain, key);
                        thumb_ui(ui, tex.as_ref(), side)
                            .on_hover_text(domain.files.get(i).cloned().unwrap_or_default());
                    }
                });
            }
            if !domain.skipped.is_empty() {
                egui::CollapsingHeader::new(
                    RichText::new(format!(
                        "{} file(s) skipped: show why",
                        domain.skipped.len()
                    ))
                    .color(look.warn()),
                )
                .id_salt(("skipped", target))
                .show(ui, |ui| {
                    for s in domain.skipped.iter().take(200) {
                        ui.label(format!("{} — {}", s.path.display(), s.reason));
                    }
                    if domain.skipped.len() > 200 {
                        ui.weak(format!("… and {} more", domain.skipped.len() - 200));
                    }
                });
            }
            for w in &domain.warnings {
                ui.colored_label(look.warn(), plain(w));
            }
        });
}

fn class_bar_ui(ui: &mut egui::Ui, name: &str, count: usize, max: usize, colour: egui::Color32) {
    ui.horizontal(|ui| {
        let name_w = 70.0;
        let (rect, _) = ui.allocate_exact_size(
            egui::vec2(name_w, ui.text_style_height(&egui::TextStyle::Body)),
            egui::Sense::hover(),
        );
        ui.painter().text(
            rect.left_center(),
            egui::Align2::LEFT_CENTER,
            name,
            egui::TextStyle::Body.resolve(ui.style()),
            ui.visuals().text_color(),
        );
        let bar_w = (ui.available_width() - 60.0).max(40.0);
        let h = ui.text_style_height(&egui::TextStyle::Body) * 0.7;
        let (rect, _) = ui.allocate_exact_size(egui::vec2(bar_w, h), egui::Sense::hover());
        ui.painter()
            .rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
        let mut filled = rect;
        filled.set_width(rect.width() * count as f32 / max as f32);
        ui.painter().rect_filled(filled, 2.0, colour);
        ui.label(count.to_string());
    });
}

fn points_ui(ui: &mut egui::Ui, domain: &Domain, target: bool, look: Look) {
    use egui_plot::{Plot, Points};
    let k = domain.class_names.len().max(1);
    let mut groups: Vec<Vec<[f64; 2]>> = vec![Vec::new(); k];
    for i in 0..domain.len() {
        let s = domain.sample(i);
        let c = domain.labels.as_ref().map(|l| l[i] as usize).unwrap_or(0);
        if s.len() >= 2 {
            groups[c.min(k - 1)].push([s[0] as f64, s[1] as f64]);
        }
    }
    Plot::new(("points", target))
        .height(220.0)
        .data_aspect(1.0)
        .allow_scroll(false)
        .show(ui, |plot| {
            for (c, g) in groups.into_iter().enumerate() {
                let name = domain.class_names.get(c).cloned().unwrap_or_default();
                plot.points(
                    Points::new(name, g)
                        .color(look.class(c))
                        .radius(look.marker_radius())
                        .filled(true),
                );
            }
        });
}

fn map_card_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    pair: &DomainPair,
    map: Option<&FeatureMap>,
    busy: bool,
) {
    ui.heading("Feature map");
    match map {
        Some(m) => {
            ui.label(format!(
                "{} of {} · {} points",
                m.projection,
                m.layer_name,
                m.points.len()
            ));
            // Leave room for the caption and the button below the plot.
            let row = ui.text_style_height(&egui::TextStyle::Body);
            let h = (ui.available_height() - 5.5 * row).clamp(180.0, 520.0);
            let plot = MapPlot {
                id: "data-map",
                map: m,
                pair,
                pair_id: ctx.pair_id,
                colour_by: ColourBy::Domain,
                height: h,
                spread: None,
            };
            map_ui(ui, &plot, ctx.thumbs, ctx.look);
            ui.weak("Each dot is an image. Where the colours separate, the domains differ.");
        }
        None if busy => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("computing the map…");
            });
        }
        None => {
            ui.weak("No map yet.");
        }
    }
    if ui.button("Measure the similarity").clicked() {
        ctx.commands
            .push(AppCommand::ShowView(super::commands::View::Similarity));
    }
}
