//! The feature map: both domains' features (raw pixels or a network stage's output) on a
//! subsample, projected to 2-D, and its scatter plot coloured by domain or by class.
//! The features come from the engine (`train::similarity`, the same pipeline as the CLI's
//! `similarity`); computed on a background thread; drawn by the data, similarity and
//! training views.

use super::theme::Look;
use super::thumbs::{SampleKey, Thumbnails, thumb_ui};
use crate::analysis::Domain as Side;
use crate::analysis::embedding::EmbeddingMethod;
use crate::data::DomainPair;
use crate::train::RunError;
use crate::train::similarity::{
    FeatureModel, LabelSpreading, MapPoint as EnginePoint, PairFeatures, feature_model_at,
    pair_features,
};
use egui_plot::{Legend, Plot, PlotPoint, Points};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use crate::train::similarity::{Layer, ModelSource};

/// How the points are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColourBy {
    #[default]
    Domain,
    Class,
    /// The target's k-means clusters (source points grey); by domain where the map has none.
    Cluster,
    /// The source's labels spreading to the target over the nearest-neighbour graph, at one
    /// step (the Similarity view); by domain where the map has no spreading.
    Spread,
}

/// What to compute.
#[derive(Clone)]
pub struct MapRequest {
    pub pair: Arc<DomainPair>,
    pub layer: Layer,
    pub model: ModelSource,
    /// Samples per domain, at most.
    pub per_domain: usize,
    /// Seeds the subsample, an untrained network's weights and the projection (the CLI's
    /// `--seed`, the Setup view's Seed).
    pub seed: u64,
}

/// One point of the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapPoint {
    pub pos: [f64; 2],
    pub target: bool,
    pub class: Option<u32>,
    /// Index of the sample in its domain.
    pub index: usize,
    /// A target point's k-means cluster, when the target was clustered.
    pub cluster: Option<u32>,
    /// The point's row among its domain's feature rows (the graph's node order).
    pub row: usize,
}

impl From<&EnginePoint> for MapPoint {
    fn from(p: &EnginePoint) -> Self {
        MapPoint {
            pos: [p.x as f64, p.y as f64],
            target: p.domain == Side::Target,
            class: p.class,
            index: p.index,
            cluster: p.cluster,
            row: 0,
        }
    }
}

/// A 2-D map of both domains.
#[derive(Clone, Debug, Default)]
pub struct FeatureMap {
    pub points: Vec<MapPoint>,
    /// E.g. "raw pixels" or "stage conv2 of the run's model".
    pub layer_name: String,
    /// E.g. "PCA".
    pub projection: String,
    /// Plot points grouped by domain (source, target), ready to draw.
    by_domain: [Vec<PlotPoint>; 2],
    /// Plot points grouped by class; the last group holds unlabeled points.
    by_class: Vec<Vec<PlotPoint>>,
    /// Target points grouped by cluster (empty when the target was not clustered).
    by_cluster: Vec<Vec<PlotPoint>>,
}

impl FeatureMap {
    /// Build from projected points.
    pub fn new(
        points: Vec<MapPoint>,
        classes: usize,
        layer_name: String,
        projection: &str,
    ) -> Self {
        let mut map = FeatureMap {
            points,
            layer_name,
            projection: projection.into(),
            ..Default::default()
        };
        map.regroup(classes);
        map
    }

    fn regroup(&mut self, classes: usize) {
        let mut by_domain: [Vec<PlotPoint>; 2] = Default::default();
        let mut by_class = vec![Vec::new(); classes + 1];
        let clusters = self
            .points
            .iter()
            .filter_map(|p| p.cluster)
            .max()
            .map_or(0, |m| m as usize + 1);
        let mut by_cluster = vec![Vec::new(); clusters];
        for p in &self.points {
            let pp = PlotPoint::new(p.pos[0], p.pos[1]);
            by_domain[p.target as usize].push(pp);
            let g = p.class.map(|c| c as usize).filter(|&c| c < classes);
            by_class[g.unwrap_or(classes)].push(pp);
            if let Some(c) = p.cluster {
                by_cluster[c as usize].push(pp);
            }
        }
        self.by_domain = by_domain;
        self.by_class = by_class;
        self.by_cluster = by_cluster;
    }

    /// Flip axes so that this map is oriented like `prev` (same samples), so that maps of
    /// successive epochs do not jump around when PCA picks the opposite sign.
    pub fn align_to(&mut self, prev: &FeatureMap) {
        if prev.points.len() != self.points.len() {
            return;
        }
        for axis in 0..2 {
            let dot: f64 = self
                .points
                .iter()
                .zip(&prev.points)
                .map(|(a, b)| a.pos[axis] * b.pos[axis])
                .sum();
            if dot < 0.0 {
                for p in &mut self.points {
                    p.pos[axis] = -p.pos[axis];
                }
            }
        }
        let classes = self.by_class.len().saturating_sub(1);
        self.regroup(classes);
    }
}

/// What a map's features are, in the app's words: "raw pixels" or "stage 'conv2' of an
/// untrained network".
pub fn layer_words(model: Option<&FeatureModel>) -> String {
    match model {
        None => "raw pixels".into(),
        Some(m) => {
            let whose = if m.trained {
                "the trained model"
            } else {
                "an untrained network"
            };
            format!("stage '{}' of {whose}", m.stage_name)
        }
    }
}

/// The engine's features for a request (the same rows `transferlab similarity` reads for
/// the same data, layer, model and seed), with their description.
pub fn features(req: &MapRequest) -> Result<(PairFeatures, String), String> {
    let pair = &req.pair;
    let model = feature_model_at(pair, &req.model, req.layer, req.seed).map_err(|e| message(&e))?;
    let features =
        pair_features(pair, model.as_ref(), req.per_domain, req.seed).map_err(|e| message(&e))?;
    if features.source.n + features.target.n < 3 {
        return Err("too few samples to draw a map (need at least 3)".into());
    }
    Ok((features, layer_words(model.as_ref())))
}

/// An engine error as the app shows it: its message, never a backtrace.
pub fn message(e: &RunError) -> String {
    crate::device::without_backtrace(&e.to_string())
}

/// Compute a map: features, then a 2-D PCA.
pub fn compute_map(req: &MapRequest) -> Result<FeatureMap, String> {
    let (features, layer_name) = features(req)?;
    let embedding = features
        .map(EmbeddingMethod::Pca, req.seed)
        .map_err(|e| message(&e))?;
    let points = features
        .points(&req.pair, &embedding)
        .iter()
        .map(MapPoint::from)
        .collect();
    Ok(FeatureMap::new(
        points,
        req.pair.classes.len(),
        layer_name,
        "PCA",
    ))
}

/// A map to draw, and the data its points stand for.
pub struct MapPlot<'a> {
    /// The plot's id (unique in the window).
    pub id: &'a str,
    pub map: &'a FeatureMap,
    pub pair: &'a DomainPair,
    pub pair_id: u64,
    pub colour_by: ColourBy,
    pub height: f32,
    /// With [`ColourBy::Spread`]: the spreading and the step to show.
    pub spread: Option<(&'a LabelSpreading, usize)>,
}

/// Most graph edges drawn on a map (each target node's strongest, the first ones).
const MAX_EDGES: usize = 400;

/// The map coloured by the labels spreading at `step`: source points by class, target points
/// by the label that reached them (grey: none yet), and the graph's strongest edges.
fn spread_plot(
    plot: &mut egui_plot::PlotUi<'_>,
    map: &FeatureMap,
    pair: &DomainPair,
    (spreading, step): (&LabelSpreading, usize),
    radius: f32,
    look: Look,
) {
    let labels = &spreading.steps[step.min(spreading.steps.len() - 1)];
    let mut position: [Vec<Option<[f64; 2]>>; 2] =
        [vec![None; spreading.source_rows], vec![None; labels.len()]];
    for p in &map.points {
        if let Some(slot) = position[p.target as usize].get_mut(p.row) {
            *slot = Some(p.pos);
        }
    }
    let node = |i: usize| -> Option<[f64; 2]> {
        match i.checked_sub(spreading.source_rows) {
            None => position[0][i],
            Some(t) => position[1].get(t).copied().flatten(),
        }
    };
    let edge_colour = egui::Color32::from_gray(140).gamma_multiply(0.35);
    for &(a, b) in spreading
        .edges
        .iter()
        .filter(|(a, _)| *a >= spreading.source_rows)
        .take(MAX_EDGES)
    {
        if let (Some(pa), Some(pb)) = (node(a), node(b)) {
            plot.line(
                egui_plot::Line::new("graph edges", vec![pa, pb])
                    .color(edge_colour)
                    .width(1.0),
            );
        }
    }
    let classes = pair.classes.len();
    let mut source = vec![Vec::new(); classes];
    let mut target = vec![Vec::new(); classes + 1];
    for p in &map.points {
        let pp = p.pos;
        if p.target {
            let l = labels.get(p.row).copied().flatten().map(|c| c as usize);
            target[l.filter(|&c| c < classes).unwrap_or(classes)].push(pp);
        } else if let Some(c) = p.class.map(|c| c as usize).filter(|&c| c < classes) {
            source[c].push(pp);
        }
    }
    plot.points(
        Points::new("target: no label yet", std::mem::take(&mut target[classes]))
            .color(egui::Color32::GRAY)
            .radius(radius)
            .filled(false),
    );
    for c in 0..classes {
        let name = pair.classes[c].clone();
        // Unnamed: the legend shows each class once, in the reached targets' full colour.
        plot.points(
            Points::new("", std::mem::take(&mut source[c]))
                .color(look.class(c).gamma_multiply(0.45))
                .radius(radius * 0.8)
                .filled(true),
        );
        plot.points(
            Points::new(name, std::mem::take(&mut target[c]))
                .color(look.class(c))
                .radius(radius * 1.2)
                .filled(true),
        );
    }
}

/// Draw a map. Hovering a point shows its thumbnail (images) and file.
pub fn map_ui(ui: &mut egui::Ui, plot: &MapPlot<'_>, thumbs: &mut Thumbnails, look: Look) {
    let MapPlot {
        id,
        map,
        pair,
        pair_id,
        colour_by,
        height,
        spread,
    } = *plot;
    let radius = look.marker_radius();
    let response = Plot::new(id)
        .height(height)
        .data_aspect(1.0)
        .legend(Legend::default())
        .show_axes(false)
        .show_grid(false)
        .allow_scroll(false)
        .show(ui, |plot| match (colour_by, spread) {
            (ColourBy::Spread, Some(spread)) => spread_plot(plot, map, pair, spread, radius, look),
            (ColourBy::Cluster, _) if !map.by_cluster.is_empty() => {
                plot.points(
                    Points::new("source", map.by_domain[0].as_slice())
                        .color(egui::Color32::from_gray(150).gamma_multiply(0.5))
                        .radius(radius)
                        .filled(true),
                );
                for (c, pts) in map.by_cluster.iter().enumerate() {
                    plot.points(
                        Points::new(format!("cluster {}", c + 1), pts.as_slice())
                            .color(look.class(c))
                            .radius(radius)
                            .filled(true),
                    );
                }
            }
            (ColourBy::Domain | ColourBy::Cluster | ColourBy::Spread, _) => {
                for (target, name) in [(false, "source"), (true, "target")] {
                    plot.points(
                        Points::new(name, map.by_domain[target as usize].as_slice())
                            .color(look.domain(target))
                            .radius(radius)
                            .filled(true),
                    );
                }
            }
            (ColourBy::Class, _) => {
                let k = map.by_class.len().saturating_sub(1);
                for (c, pts) in map.by_class.iter().enumerate() {
                    if pts.is_empty() {
                        continue;
                    }
                    let (name, colour) = if c < k {
                        (
                            pair.classes.get(c).cloned().unwrap_or_default(),
                            look.class(c),
                        )
                    } else {
                        ("unlabelled".to_string(), egui::Color32::GRAY)
                    };
                    plot.points(
                        Points::new(name, pts.as_slice())
                            .color(colour)
                            .radius(radius)
                            .filled(true),
                    );
                }
            }
        });
    let Some(pointer) = response.response.hover_pos() else {
        return;
    };
    let t = &response.transform;
    let nearest = map
        .points
        .iter()
        .map(|p| {
            let s = t.position_from_point(&PlotPoint::new(p.pos[0], p.pos[1]));
            (p, s.distance(pointer))
        })
        .filter(|(_, d)| *d < 8.0)
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((p, _)) = nearest {
        let domain = if p.target { &pair.target } else { &pair.source };
        let key = SampleKey {
            pair_id,
            target: p.target,
            index: p.index,
        };
        let tex = thumbs.get(ui.ctx(), domain, key);
        response.response.on_hover_ui_at_pointer(|ui| {
            if tex.is_some() {
                thumb_ui(ui, tex.as_ref(), 96.0);
            }
            let class = p
                .class
                .and_then(|c| pair.classes.get(c as usize))
                .map(|c| format!("class {c}"))
                .unwrap_or_else(|| "unlabelled".into());
            let cluster = p
                .cluster
                .map(|c| format!(" · cluster {}", c + 1))
                .unwrap_or_default();
            ui.label(format!(
                "{} · {class}{cluster}",
                if p.target { "target" } else { "source" }
            ));
            if let Some(f) = domain.files.get(p.index) {
                ui.label(egui::RichText::new(f).small());
            }
        });
    }
}
