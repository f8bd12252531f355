//! The similarity view (journey 3): how far apart the two domains are — MMD² with its
//! p-value, the proxy A-distance, the CORAL distance, per-class distances — as labelled
//! cards; the 2-D feature map coloured by domain or class, at a selectable layer; and the
//! advisor's recommendation with a button that applies it. The analysis runs on a
//! background thread whenever the data or the chosen features change.

use super::commands::AppCommand;
use super::context::ViewContext;
use super::feature_map::{
    ColourBy, FeatureMap, Layer, MapPlot, MapPoint, MapRequest, ModelSource, features, map_ui,
    message,
};
use super::jobs::{Job, Polled};
use super::runs::Runs;
use super::settings::Settings;
use super::setup::backbone_for;
use super::theme::Look;
use crate::analysis::cluster::{ClusterCount, Clustering};
use crate::analysis::embedding::{Embedding, EmbeddingMethod};
use crate::analysis::{SimilarityOptions, advise, advise_pretrained};
use crate::data::DomainPair;
use crate::method::MethodKind;
use crate::model::BackboneKind;
use crate::train::imagenet_distance::ImagenetDistance;
use crate::train::similarity::{LabelSpreading, label_clusters, target_imagenet_distance};
use egui::RichText;
use std::sync::Arc;

/// Range of the feature map's points per domain (saved settings are clamped to it).
pub const MAP_POINTS: std::ops::RangeInclusive<usize> = 20..=3000;

/// Which network's features the analysis uses for stage layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkChoice {
    /// A freshly initialised network.
    #[default]
    Untrained,
    /// The model of a run (by id).
    Run(usize),
}

/// What an analysis was computed for.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisKey {
    pub pair_id: u64,
    pub layer: Layer,
    pub network: NetworkChoice,
    pub per_domain: usize,
    /// t-SNE instead of PCA for the map.
    pub tsne: bool,
    /// The Setup view's seed and backbone (an untrained network's weights and stages).
    pub seed: u64,
    pub backbone: Option<BackboneKind>,
}

/// Similarity figures, with how sure each is.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub mmd2: f64,
    pub mmd_p_value: f64,
    pub mmd_permutations: usize,
    pub a_distance: f64,
    pub a_distance_se: f64,
    pub held_out_error: f64,
    pub coral_distance: f64,
    /// Per shared class: name and distance between the class's source and target means.
    pub per_class: Vec<(String, f64)>,
    pub samples: (usize, usize),
    pub dim: usize,
}

/// A finished analysis.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub key: AnalysisKey,
    pub map: FeatureMap,
    /// None when the metrics could not be computed (see `metrics_note`).
    pub metrics: Option<Metrics>,
    pub metrics_note: Option<String>,
    /// With the pretrained backbone's ImageNet weights as the features: how far the target
    /// is from ImageNet (the advisor's "similar"), or why it could not be measured.
    pub imagenet: Option<Result<ImagenetDistance, String>>,
    /// The target's k-means clusters on the same features (k = the number of classes), or
    /// why there are none.
    pub clusters: Result<Clustering, String>,
    /// The source's labels spreading to the target over the graph of the same features
    /// (None: the source has no labels), or why they could not be spread.
    pub spreading: Result<Option<LabelSpreading>, String>,
    pub seconds: f64,
}

/// The advisor's recommendation, in the app's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    /// E.g. "(c) small target, different domains".
    pub case: String,
    pub method: Option<MethodKind>,
    pub method_name: String,
    pub freeze: usize,
    pub freeze_words: String,
    pub reason: String,
}

/// The similarity view's state.
#[derive(Default)]
pub struct SimilarityState {
    pub analysis: Option<Analysis>,
    job: Option<(AnalysisKey, Job<Result<Analysis, String>>)>,
    pub error: Option<String>,
    /// The key of the last analysis started (not retried when it failed).
    failed_key: Option<AnalysisKey>,
    pub network: NetworkChoice,
    /// Draw the map with t-SNE (slower, keeps neighbourhoods) instead of PCA.
    pub tsne: bool,
    /// The "Which source?" panel.
    pub rank: super::rank::RankState,
    /// The step of the labels' spreading the map shows.
    pub spread_step: usize,
    /// Since when (the UI clock, seconds) the spreading plays on its own, if it does.
    pub spread_playing: Option<f64>,
}

/// Seconds each step of the spreading stays on the map while it plays.
const SPREAD_STEP_SECONDS: f64 = 0.5;

impl SimilarityState {
    /// True while an analysis runs.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// The map of the current analysis.
    pub fn map(&self) -> Option<&FeatureMap> {
        self.analysis.as_ref().map(|a| &a.map)
    }

    /// Keep the analysis in step with the data and the chosen features (the map's layer
    /// and points, the next run's seed and backbone).
    pub fn poll(
        &mut self,
        ctx: &egui::Context,
        pair: Option<(&Arc<DomainPair>, u64)>,
        settings: &Settings,
        runs: &Runs,
    ) {
        self.rank.poll();
        if let Some((_, job)) = &self.job {
            let result = match job.poll() {
                Polled::Pending => return,
                Polled::Done(r) => r,
                Polled::Lost => Err("the analysis failed (internal error)".into()),
            };
            match result {
                Ok(a) => {
                    self.analysis = Some(a);
                    self.error = None;
                }
                Err(e) => self.error = Some(e),
            }
            self.job = None;
        }
        let Some((pair, pair_id)) = pair else { return };
        let (layer, per_domain) = (settings.map_layer, settings.map_points);
        let seed = settings.config.seed;
        let backbone = Some(backbone_for(&settings.config, pair));
        if let NetworkChoice::Run(id) = self.network
            && !runs.get(id).is_some_and(|r| r.has_pair_model())
        {
            self.network = NetworkChoice::Untrained;
        }
        let key = AnalysisKey {
            pair_id,
            layer,
            network: self.network,
            per_domain,
            tsne: self.tsne,
            seed,
            backbone,
        };
        let have = self.analysis.as_ref().map(|a| &a.key);
        let failed = self.error.is_some();
        if have == Some(&key) || (failed && self.failed_key.as_ref() == Some(&key)) {
            return;
        }
        let model = match self.network {
            NetworkChoice::Untrained => ModelSource::Untrained { backbone },
            NetworkChoice::Run(id) => match runs.get(id) {
                Some(r) => ModelSource::Checkpoint(r.checkpoint.clone()),
                None => return,
            },
        };
        let req = MapRequest {
            pair: pair.clone(),
            layer,
            model,
            per_domain,
            seed,
        };
        self.failed_key = Some(key.clone());
        let k = key.clone();
        match Job::spawn("analysis", ctx, move |_| analyse(&req, k)) {
            Ok(job) => self.job = Some((key, job)),
            Err(e) => self.error = Some(e),
        }
    }
}

/// Features, map and metrics for a request (runs on a background thread): the engine's
/// pipeline with the CLI's defaults, so `transferlab similarity` with the same data,
/// layer, model and seed reports the same numbers and points.
pub fn analyse(req: &MapRequest, key: AnalysisKey) -> Result<Analysis, String> {
    let started = std::time::Instant::now();
    let (features, layer_name) = features(req)?;
    let classes = &req.pair.classes;
    let mut opts = SimilarityOptions {
        permutations: 200,
        seed: req.seed,
        tsne: key.tsne,
        ..SimilarityOptions::default()
    };
    let mut report_result = features.report(classes, &opts);
    let mut map_note = None;
    if opts.tsne
        && let Err(e) = &report_result
    {
        // t-SNE has its own limits (enough points for its perplexity): keep the metrics
        // and fall back to PCA, saying why.
        map_note = Some(format!(
            "t-SNE is not possible here ({}); the map shows PCA.",
            message(e)
        ));
        opts.tsne = false;
        report_result = features.report(classes, &opts);
    }
    let projection = if opts.tsne { "t-SNE" } else { "PCA" };
    // As many clusters as the source has classes (label-free for the target): do the
    // target's images fall into that many groups on their own?
    let count = match classes.len() {
        k if k >= 2 => ClusterCount::Fixed(k),
        _ => ClusterCount::Auto,
    };
    let clusters = features
        .cluster_target(count, req.seed)
        .map_err(|e| message(&e));
    let spreading = features
        .spread_labels(classes.len())
        .map_err(|e| message(&e));
    let place = |embedding: &Embedding| -> Vec<MapPoint> {
        let mut points = features.points(&req.pair, embedding);
        if let Ok(c) = &clusters {
            label_clusters(&mut points, embedding, c);
        }
        points
            .iter()
            .zip(&embedding.points)
            .map(|(p, e)| MapPoint {
                row: e.index,
                ..MapPoint::from(p)
            })
            .collect()
    };
    let (map, metrics, metrics_note) = match report_result {
        Ok(r) => {
            let map = FeatureMap::new(place(&r.embedding), classes.len(), layer_name, projection);
            let metrics = Metrics {
                mmd2: r.mmd2,
                mmd_p_value: r.mmd_p_value,
                mmd_permutations: r.mmd_permutations,
                a_distance: r.a_distance,
                a_distance_se: r.a_distance_detail.standard_error,
                held_out_error: r.a_distance_detail.held_out_error,
                coral_distance: r.coral_distance,
                per_class: r
                    .per_class
                    .map(|pc| {
                        pc.classes
                            .into_iter()
                            .map(|c| (c.class, c.mean_distance))
                            .collect()
                    })
                    .unwrap_or_default(),
                samples: (r.n_source, r.n_target),
                dim: r.dim,
            };
            (map, Some(metrics), map_note)
        }
        Err(e) => {
            // The map alone is still worth showing.
            let embedding = features
                .map(EmbeddingMethod::Pca, req.seed)
                .map_err(|e| message(&e))?;
            let map = FeatureMap::new(place(&embedding), classes.len(), layer_name, "PCA");
            (
                map,
                None,
                Some(format!("No similarity metrics: {}", message(&e))),
            )
        }
    };
    let pretrained = matches!(req.model, ModelSource::Untrained { .. })
        && key.backbone.is_some_and(|b| b.is_pretrained());
    let imagenet =
        pretrained.then(|| target_imagenet_distance(&req.pair, req.seed).map_err(|e| message(&e)));
    Ok(Analysis {
        key,
        map,
        metrics,
        metrics_note,
        imagenet,
        clusters,
        spreading,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The advisor's recommendation for the measured metrics and the labelled target images
/// the next run will use.
pub fn recommend(
    metrics: &Metrics,
    labelled_per_class: usize,
    classes: usize,
    stages: usize,
) -> Recommendation {
    recommendation(
        advise(
            labelled_per_class,
            classes,
            metrics.a_distance,
            metrics.mmd_p_value,
        ),
        stages,
    )
}

/// The advisor's recommendation in the app's terms.
fn recommendation(a: crate::analysis::Advice, stages: usize) -> Recommendation {
    let method_name = a.recommended_method.as_str().to_string();
    Recommendation {
        case: format!(
            "({}) {}",
            format!("{:?}", a.case).to_lowercase(),
            a.case_title
        ),
        method: MethodKind::from_name(&method_name),
        method_name,
        freeze: a.freeze.stages(stages),
        freeze_words: a.recommended_freeze,
        reason: a.reason,
    }
}

/// Draw the similarity view; `stages` are the Setup network's stage names.
pub fn similarity_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    state: &mut SimilarityState,
    stages: &[String],
) {
    let look = ctx.look;
    let Some(pair) = ctx.pair.clone() else {
        ui.label("Load data first (Data view).");
        return;
    };
    controls_ui(ui, ctx, state, stages);
    if let Some(e) = &state.error {
        super::widgets::error_box_ui(
            ui,
            look,
            "The analysis failed",
            &format!("{e} — try raw pixels, another layer, or more points per domain."),
        );
    }
    let Some(a) = &state.analysis else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("measuring the two domains…");
        });
        return;
    };
    ui.horizontal(|ui| {
        ui.label(format!(
            "Features: {} · {} map · {} + {} samples · {:.1} s",
            a.map.layer_name,
            a.map.projection,
            a.map.points.iter().filter(|p| !p.target).count(),
            a.map.points.iter().filter(|p| p.target).count(),
            a.seconds
        ));
        if state.is_busy() {
            ui.spinner();
            ui.weak("updating…");
        }
    });
    metric_cards_ui(ui, a, look);
    ui.add_space(6.0);
    let side_w = (ui.available_width() * 0.34).clamp(260.0, 480.0);
    let (mut left, mut right) = super::widgets::split_right(ui, side_w);
    // Below the map: one line, or the spreading's controls and their line.
    let below = match ctx.settings.map_colour {
        ColourBy::Spread => 80.0,
        _ => 30.0,
    };
    let h = (left.available_height() - below).max(220.0);
    let plot = MapPlot {
        id: "similarity-map",
        map: &a.map,
        pair: &pair,
        pair_id: ctx.pair_id,
        colour_by: ctx.settings.map_colour,
        height: h,
        spread: a
            .spreading
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|s| (s, state.spread_step)),
    };
    map_ui(&mut left, &plot, ctx.thumbs, look);
    if ctx.settings.map_colour == ColourBy::Cluster {
        clusters_line_ui(&mut left, &a.clusters);
    } else if ctx.settings.map_colour == ColourBy::Spread {
        let (step, playing) = spread_controls_ui(
            &mut left,
            &a.spreading,
            state.spread_step,
            state.spread_playing,
        );
        state.spread_step = step;
        state.spread_playing = playing;
    } else {
        left.weak(
            "Each dot is an image (hover for the image and its file). Overlapping colours: similar domains.",
        );
    }
    let labelled_per_class = ctx.settings.config.target_labels;
    egui::ScrollArea::vertical()
        .id_salt("advisor")
        .auto_shrink([false, false])
        .show(&mut right, |ui| {
            advisor_ui(
                ui,
                a,
                &pair,
                labelled_per_class,
                stages.len(),
                look,
                ctx.commands,
            );
            // Above the per-class list, so it shows without scrolling.
            ui.add_space(6.0);
            super::rank::rank_ui(ui, ctx, &mut state.rank);
            ui.add_space(6.0);
            per_class_ui(ui, a);
        });
}

fn controls_ui(
    ui: &mut egui::Ui,
    ctx: &mut ViewContext<'_>,
    state: &mut SimilarityState,
    stages: &[String],
) {
    let runs = ctx.runs;
    let settings = &mut *ctx.settings;
    let (layer, per_domain, colour_by) = (
        &mut settings.map_layer,
        &mut settings.map_points,
        &mut settings.map_colour,
    );
    ui.horizontal_wrapped(|ui| {
        let l = ui.label("Features from");
        let layer_text = |l: Layer| match l {
            Layer::Pixels => "raw pixels".to_string(),
            Layer::Stage(k) => format!(
                "stage {} ({})",
                k + 1,
                stages.get(k).map(String::as_str).unwrap_or("?")
            ),
        };
        egui::ComboBox::from_id_salt("layer")
            .selected_text(layer_text(*layer))
            .show_ui(ui, |ui| {
                ui.selectable_value(layer, Layer::Pixels, "raw pixels");
                for k in 0..stages.len() {
                    ui.selectable_value(layer, Layer::Stage(k), layer_text(Layer::Stage(k)));
                }
            })
            .response
            .labelled_by(l.id);
        if let Layer::Stage(k) = *layer {
            if k >= stages.len() && !stages.is_empty() {
                *layer = Layer::Stage(stages.len() - 1);
            }
            let l = ui.label("of");
            let net_text = |n: NetworkChoice| match n {
                NetworkChoice::Untrained => "an untrained network".to_string(),
                NetworkChoice::Run(id) => runs
                    .get(id)
                    .map(|r| format!("the model of run {}", r.label()))
                    .unwrap_or_else(|| format!("run {id}")),
            };
            egui::ComboBox::from_id_salt("network")
                .selected_text(net_text(state.network))
                .show_ui(ui, |ui| {
                    ui.selectable_value(
                        &mut state.network,
                        NetworkChoice::Untrained,
                        net_text(NetworkChoice::Untrained),
                    );
                    for r in runs.records.iter().filter(|r| r.has_pair_model()) {
                        ui.selectable_value(
                            &mut state.network,
                            NetworkChoice::Run(r.id),
                            net_text(NetworkChoice::Run(r.id)),
                        );
                    }
                })
                .response
                .labelled_by(l.id);
        }
        ui.separator();
        let l = ui.label("Points per domain");
        ui.add(egui::DragValue::new(per_domain).range(MAP_POINTS).speed(10))
            .labelled_by(l.id);
        ui.separator();
        ui.label("Colour by");
        ui.selectable_value(colour_by, ColourBy::Domain, "domain");
        ui.selectable_value(colour_by, ColourBy::Class, "class");
        ui.selectable_value(colour_by, ColourBy::Cluster, "target clusters")
            .on_hover_text("Group the target's images by k-means on these features, without any label: unsupervised transfer. Scored against the target's class folders when it has them.");
        ui.selectable_value(colour_by, ColourBy::Spread, "labels spreading")
            .on_hover_text("Label propagation, step by step: the source's labels travel along a graph joining each image to its nearest neighbours in both domains (relation-based transfer).");
        ui.separator();
        ui.label("Map");
        ui.selectable_value(&mut state.tsne, false, "PCA")
            .on_hover_text("Linear projection on the two directions of largest spread: fast, distances mean something.");
        ui.selectable_value(&mut state.tsne, true, "t-SNE")
            .on_hover_text("Keeps each point's neighbours together: shows clusters well, but distances between clusters and their sizes mean little. A few seconds.");
    });
}

/// The spreading's step slider, play button and what has arrived, under the map; returns
/// the step to show next and whether (since when) it plays.
fn spread_controls_ui(
    ui: &mut egui::Ui,
    spreading: &Result<Option<LabelSpreading>, String>,
    step: usize,
    playing: Option<f64>,
) -> (usize, Option<f64>) {
    let s = match spreading {
        Ok(Some(s)) => s,
        Ok(None) => {
            ui.weak("The source has no labels to spread.");
            return (0, None);
        }
        Err(e) => {
            ui.weak(format!("The labels could not be spread: {e}"));
            return (0, None);
        }
    };
    let last = s.steps.len().saturating_sub(1);
    let mut step = step.min(last);
    let now = ui.input(|i| i.time);
    let mut playing = playing;
    if let Some(since) = playing {
        let due = ((now - since) / SPREAD_STEP_SECONDS) as usize;
        step = due.min(last);
        if step == last {
            playing = None;
        } else {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_secs_f64(
                    SPREAD_STEP_SECONDS / 4.0,
                ));
        }
    }
    ui.horizontal(|ui| {
        let l = ui.label("Step");
        if ui
            .add(egui::Slider::new(&mut step, 0..=last))
            .labelled_by(l.id)
            .on_hover_text("Each step, every image takes on the labels of its nearest neighbours: labels travel one edge of the graph per step.")
            .changed()
        {
            playing = None;
        }
        let play = if playing.is_some() { "Pause" } else { "Play" };
        if ui.button(play).clicked() {
            playing = match playing {
                Some(_) => None,
                // From the start again when it had reached the end.
                None if step == last => Some(now),
                None => Some(now - step as f64 * SPREAD_STEP_SECONDS),
            };
            if playing.is_some() && step == last {
                step = 0;
            }
        }
    });
    let reached = s.reached.get(step).copied().unwrap_or(0.0);
    let right = s
        .accuracy
        .as_ref()
        .and_then(|a| a.get(step))
        .map(|a| {
            format!(
                ", {:.0}% of the target labelled right (the class folders, never used to spread)",
                a * 100.0
            )
        })
        .unwrap_or_default();
    ui.weak(format!(
        "Label propagation: the source's labels spread along each image's nearest neighbours (lines: the strongest edges). Step {step} of {last}: labels reached {:.0}% of the target{right}.",
        reached * 100.0
    ));
    (step, playing)
}

/// What the target's clustering found, in one line under the map.
fn clusters_line_ui(ui: &mut egui::Ui, clusters: &Result<Clustering, String>) {
    match clusters {
        Ok(c) => {
            let score = match c.adjusted_rand_index {
                Some(a) => format!(
                    " Against the target's class folders (never used to cluster): adjusted Rand index {a:.2} (1 = the folders exactly, 0 = chance)."
                ),
                None => " The target has no class folders to score them against.".into(),
            };
            ui.weak(format!(
                "k-means found {} clusters in the target (one per source class; silhouette {:.2}), sizes {}.{score}",
                c.k,
                c.silhouette,
                c.sizes
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        Err(e) => {
            ui.weak(format!("The target could not be clustered: {e}"));
        }
    }
}

/// A figure with how sure it is and what it means.
struct Card {
    title: &'static str,
    value: String,
    sure: String,
    meaning: &'static str,
}

fn card_ui(ui: &mut egui::Ui, card: &Card, width: f32) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.vertical(|ui| {
            ui.set_width(width);
            ui.label(RichText::new(card.title).strong());
            ui.label(RichText::new(&card.value).heading().strong());
            ui.weak(&card.sure);
            ui.label(RichText::new(card.meaning).small());
        });
    });
}

fn metric_cards_ui(ui: &mut egui::Ui, a: &Analysis, look: Look) {
    if let Some(note) = &a.metrics_note {
        ui.colored_label(look.warn(), note);
    }
    let Some(m) = &a.metrics else {
        return;
    };
    let w = ((ui.available_width() - 60.0) / 3.0).max(160.0);
    ui.horizontal(|ui| {
        // With N permutations the smallest p-value a test can give is 1/(N+1).
        let floor = 1.0 / (m.mmd_permutations as f64 + 1.0);
        let p = if m.mmd_p_value <= floor * 1.0001 {
            format!("p ≤ {floor:.3}, the smallest possible")
        } else {
            format!("p = {:.3}", m.mmd_p_value)
        };
        let cards = [
            Card {
                title: "MMD²",
                value: format!("{:.4}", m.mmd2),
                sure: format!("{p} ({} permutations)", m.mmd_permutations),
                meaning: "Distance between the two feature distributions; a small p says the difference is real.",
            },
            Card {
                title: "Proxy A-distance",
                value: format!("{:.2}", m.a_distance),
                sure: format!(
                    "± {:.2} · classifier error {:.0}%",
                    m.a_distance_se,
                    m.held_out_error * 100.0
                ),
                meaning: "0 = a classifier cannot tell the domains apart, 2 = it always can.",
            },
            Card {
                title: "CORAL distance",
                value: format!("{:.4}", m.coral_distance),
                sure: format!("{} features", m.dim),
                meaning: "How differently the features vary together (second-order statistics).",
            },
        ];
        for card in &cards {
            card_ui(ui, card, w);
        }
    });
}

fn advisor_ui(
    ui: &mut egui::Ui,
    a: &Analysis,
    pair: &DomainPair,
    labelled_per_class: usize,
    stages: usize,
    look: Look,
    commands: &mut Vec<AppCommand>,
) {
    ui.heading("Advisor");
    let Some(m) = &a.metrics else {
        ui.weak("The advisor needs the similarity metrics.");
        return;
    };
    let labelled = if pair.target_labelled() {
        labelled_per_class
    } else {
        0
    };
    let pretrained = a.key.backbone.filter(|b| b.is_pretrained());
    let r = match (&a.imagenet, pretrained) {
        (Some(Ok(d)), Some(b)) => {
            ui.label(format!(
                "Starting from {}: its ImageNet classifier recognises the target's images with a mean top-1 probability of {:.2}, so the target is {:.2} from ImageNet (similar below {:.2}).",
                b.info().title,
                d.confidence,
                d.distance,
                crate::analysis::advisor::SIMILAR_IMAGENET_DISTANCE
            ));
            let train_labels = crate::train::similarity::labelled_per_class(pair, labelled);
            recommendation(
                advise_pretrained(train_labels, d.distance, b.name()),
                stages,
            )
        }
        (Some(Err(e)), _) => {
            ui.colored_label(look.warn(), format!("No ImageNet distance: {e}"));
            recommend(m, labelled, pair.classes.len(), stages)
        }
        _ => recommend(m, labelled, pair.classes.len(), stages),
    };
    ui.label(RichText::new(format!("Case {}", r.case)).strong());
    ui.label(&r.reason);
    ui.add_space(4.0);
    ui.label(format!("Method: {}", r.method_name));
    ui.label(format!("Freeze: {}", r.freeze_words));
    ui.weak(format!(
        "Based on {labelled} labelled target image(s) per class (set in Setup)."
    ));
    match r.method {
        Some(method) => {
            if ui
                .button(RichText::new("Apply this recommendation").strong())
                .on_hover_text("Sets the method and the freezing depth in Setup")
                .clicked()
            {
                commands.push(AppCommand::ApplyAdvice {
                    method,
                    freeze: r.freeze,
                    target_labels: None,
                });
            }
        }
        None => {
            ui.colored_label(
                look.warn(),
                format!("{} is not available in this build.", r.method_name),
            );
        }
    }
}

fn per_class_ui(ui: &mut egui::Ui, a: &Analysis) {
    let Some(m) = &a.metrics else { return };
    if m.per_class.is_empty() {
        return;
    }
    ui.separator();
    ui.label(RichText::new("Per class: distance of the class's source and target means").strong());
    let max = m
        .per_class
        .iter()
        .map(|(_, d)| *d)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    egui::Grid::new("per-class").num_columns(3).show(ui, |ui| {
        for (name, d) in &m.per_class {
            ui.label(name);
            let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 10.0), egui::Sense::hover());
            let mut fill = rect;
            fill.set_width(rect.width() * (*d / max) as f32);
            ui.painter()
                .rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
            ui.painter()
                .rect_filled(fill, 2.0, ui.visuals().selection.bg_fill);
            ui.label(format!("{d:.3}"));
            ui.end_row();
        }
    });
}
