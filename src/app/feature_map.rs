//! The feature map: both domains' features (raw pixels or a network stage's output) on a
//! subsample, projected to 2-D, and its scatter plot coloured by domain or by class.
//! Computed on a background thread; drawn by the data, similarity and training views.

use super::theme::Look;
use super::thumbs::{SampleKey, Thumbnails, thumb_ui};
use crate::analysis::{Features, pca_2d};
use crate::data::DomainPair;
use crate::model::{BackboneKind, Network, NetworkSpec, Normalisation, load_init, read_meta};
use candle_core::{Device, Tensor};
use egui_plot::{Legend, Plot, PlotPoint, Points};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Which features a map is drawn from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layer {
    /// The images' pixel values themselves.
    #[default]
    Pixels,
    /// The output of backbone stage `k` (0-based).
    Stage(usize),
}

/// Where a stage's weights come from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// A freshly initialised network (random features).
    Untrained {
        backbone: Option<BackboneKind>,
        seed: u64,
    },
    /// A saved checkpoint (a run's model).
    Checkpoint(PathBuf),
}

/// How the points are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColourBy {
    #[default]
    Domain,
    Class,
}

/// What to compute.
#[derive(Clone)]
pub struct MapRequest {
    pub pair: Arc<DomainPair>,
    pub layer: Layer,
    pub model: ModelSource,
    /// Samples per domain, at most.
    pub per_domain: usize,
}

/// One point of the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapPoint {
    pub pos: [f64; 2],
    pub target: bool,
    pub class: Option<u32>,
    /// Index of the sample in its domain.
    pub index: usize,
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
    pub seconds: f64,
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
        for p in &self.points {
            let pp = PlotPoint::new(p.pos[0], p.pos[1]);
            by_domain[p.target as usize].push(pp);
            let g = p.class.map(|c| c as usize).filter(|&c| c < classes);
            by_class[g.unwrap_or(classes)].push(pp);
        }
        self.by_domain = by_domain;
        self.by_class = by_class;
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

/// Evenly spaced indices of up to `m` of `n` samples (deterministic).
pub fn subsample(n: usize, m: usize) -> Vec<usize> {
    if n <= m {
        return (0..n).collect();
    }
    (0..m).map(|i| i * n / m).collect()
}

/// Up to `m` of `n` indices drawn without replacement by a fixed seed (the same draw every
/// time, so maps of successive epochs show the same samples), in increasing order. Evenly
/// spaced picks would alias with the class order of generated data.
pub fn random_subsample(n: usize, m: usize, target: bool) -> Vec<usize> {
    use rand::seq::SliceRandom;
    if n <= m {
        return (0..n).collect();
    }
    let mut idx: Vec<usize> = (0..n).collect();
    let purpose = if target { "map-target" } else { "map-source" };
    idx.shuffle(&mut crate::data::split::rng_for(7, purpose));
    idx.truncate(m);
    idx.sort_unstable();
    idx
}

/// Stage names of the network a request's features come from (for the layer picker).
pub fn stage_names(pair: &DomainPair, model: &ModelSource) -> Result<Vec<String>, String> {
    let net = build_network(pair, model)?;
    Ok(net.stages().iter().map(|s| s.name.clone()).collect())
}

fn build_network(pair: &DomainPair, model: &ModelSource) -> Result<Network, String> {
    match model {
        ModelSource::Untrained { backbone, seed } => {
            let shape = pair.source.shape;
            let spec = NetworkSpec {
                backbone: backbone.unwrap_or_else(|| BackboneKind::default_for(shape)),
                input: shape,
                num_classes: pair.classes.len().max(2),
                bottleneck: None,
            };
            let norm = Normalisation::from_data(&pair.source.x, shape);
            Network::new(spec, norm, &Device::Cpu, *seed).map_err(|e| e.to_string())
        }
        ModelSource::Checkpoint(path) => {
            let meta = read_meta(path).map_err(|e| e.to_string())?;
            if meta.input != pair.source.shape {
                return Err(format!(
                    "the model expects {} input but the data is {}",
                    meta.input.describe(),
                    pair.source.shape.describe()
                ));
            }
            let spec = NetworkSpec {
                backbone: meta.backbone,
                input: meta.input,
                num_classes: meta.class_names.len().max(1),
                bottleneck: meta.bottleneck,
            };
            let net = Network::new(spec, meta.normalisation.clone(), &Device::Cpu, 0)
                .map_err(|e| e.to_string())?;
            load_init(&net, path, true).map_err(|e| e.to_string())?;
            Ok(net)
        }
    }
}

/// Features of the subsample of both domains: (rows, dim, points without positions, layer name).
pub fn features(req: &MapRequest) -> Result<(Vec<f32>, usize, Vec<MapPoint>, String), String> {
    let pair = &req.pair;
    let mut meta = Vec::new();
    for (target, d) in [(false, &pair.source), (true, &pair.target)] {
        for i in random_subsample(d.len(), req.per_domain, target) {
            meta.push(MapPoint {
                pos: [0.0, 0.0],
                target,
                class: d.labels.as_ref().map(|l| l[i]),
                index: i,
            });
        }
    }
    if meta.len() < 3 {
        return Err("too few samples to draw a map (need at least 3)".into());
    }
    let dim_in = pair.source.shape.len();
    let row = |p: &MapPoint| {
        let d = if p.target { &pair.target } else { &pair.source };
        d.sample(p.index)
    };
    match req.layer {
        Layer::Pixels => {
            let mut x = Vec::with_capacity(meta.len() * dim_in);
            for p in &meta {
                x.extend_from_slice(row(p));
            }
            Ok((x, dim_in, meta, "raw pixels".into()))
        }
        Layer::Stage(k) => {
            let net = build_network(pair, &req.model)?;
            // Out of range (e.g. `usize::MAX`) means the last stage.
            let k = k.min(net.stages().len().saturating_sub(1));
            let stage = net
                .stages()
                .get(k)
                .map(|s| s.name.clone())
                .ok_or_else(|| format!("the network has no stage {}", k + 1))?;
            let mut out = Vec::new();
            let mut dim = 0;
            for chunk in meta.chunks(256) {
                let mut x = Vec::with_capacity(chunk.len() * dim_in);
                for p in chunk {
                    x.extend_from_slice(row(p));
                }
                let dims = pair.source.shape.batch_dims(chunk.len());
                let t = Tensor::from_vec(x, dims.as_slice(), &Device::Cpu)
                    .and_then(|t| net.stage_output(&t, k))
                    .and_then(|t| t.to_vec2::<f32>())
                    .map_err(|e| e.to_string())?;
                for r in t {
                    dim = r.len();
                    out.extend(r);
                }
            }
            let whose = match req.model {
                ModelSource::Untrained { .. } => "an untrained network",
                ModelSource::Checkpoint(_) => "the trained model",
            };
            Ok((out, dim, meta, format!("stage '{stage}' of {whose}")))
        }
    }
}

/// Compute a map: features, then a 2-D PCA.
pub fn compute_map(req: &MapRequest) -> Result<FeatureMap, String> {
    let started = std::time::Instant::now();
    let (x, dim, mut points, layer_name) = features(req)?;
    let n = points.len();
    let all = Features::new(x, n, dim).map_err(|e| e.to_string())?;
    let proj = pca_2d(&all).map_err(|e| e.to_string())?;
    for (p, [a, b]) in points.iter_mut().zip(proj) {
        p.pos = [a as f64, b as f64];
    }
    let mut map = FeatureMap::new(points, req.pair.classes.len(), layer_name, "PCA");
    map.seconds = started.elapsed().as_secs_f64();
    Ok(map)
}

/// Draw a map. Hovering a point shows its thumbnail (images) and file.
#[allow(clippy::too_many_arguments)]
pub fn map_ui(
    ui: &mut egui::Ui,
    id: &str,
    map: &FeatureMap,
    pair: &DomainPair,
    pair_id: u64,
    colour_by: ColourBy,
    look: Look,
    thumbs: &mut Thumbnails,
    height: f32,
) {
    let radius = look.marker_radius();
    let response = Plot::new(id)
        .height(height)
        .data_aspect(1.0)
        .legend(Legend::default())
        .show_axes(false)
        .show_grid(false)
        .allow_scroll(false)
        .show(ui, |plot| match colour_by {
            ColourBy::Domain => {
                for (target, name) in [(false, "source"), (true, "target")] {
                    plot.points(
                        Points::new(name, map.by_domain[target as usize].as_slice())
                            .color(look.domain(target))
                            .radius(radius)
                            .filled(true),
                    );
                }
            }
            ColourBy::Class => {
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
            ui.label(format!(
                "{} · {class}",
                if p.target { "target" } else { "source" }
            ));
            if let Some(f) = domain.files.get(p.index) {
                ui.label(egui::RichText::new(f).small());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_subsample_is_fixed_sorted_and_avoids_class_aliasing() {
        let a = random_subsample(1000, 100, false);
        assert_eq!(a, random_subsample(1000, 100, false));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        // Labels cycling 0..10 (as generated demos are ordered): every class is drawn.
        let classes: std::collections::BTreeSet<usize> = a.iter().map(|i| i % 10).collect();
        assert_eq!(classes.len(), 10);
        assert_eq!(random_subsample(5, 100, true), vec![0, 1, 2, 3, 4]);
    }
}
