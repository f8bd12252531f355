//! Measuring how far apart two domains are, on raw pixels or on a network stage's features
//! (a random-initialised backbone or a saved/imported model), mapping them to 2-D, and
//! advising on how to transfer. One pipeline for both front ends: `transferlab similarity`
//! ([`measure`]) and the GUI's analysis and live maps ([`feature_model_at`],
//! [`pair_features`]) read the same seeded subsample of the same features, so the same
//! data and seed give the same numbers and points. This is the glue between domains and
//! models (Candle) and the plain-matrix analysis in `crate::analysis`.

use super::config::DataSource;
use super::events::RunReport;
use super::experiment::RunError;
use super::imagenet_distance::{ImagenetDistance, imagenet_distance};
use super::settings::{Invalid, Setting};
use crate::analysis::advisor::{
    Advice, NegativeTransferWarning, RunOutcome, advise, advise_pretrained, negative_transfer,
};
use crate::analysis::cluster::{ClusterCount, Clustering, cluster};
use crate::analysis::embedding::{EmbeddingMethod, EmbeddingOptions, embed_domains};
use crate::analysis::{
    Domain as Side, Embedding, Features, SimilarityOptions, SimilarityReport, similarity_report,
};
use crate::data::split::rng_for;
use crate::data::{Domain, DomainPair};
use crate::device::error_message;
use crate::model::{BackboneKind, Network, NetworkSpec, Normalisation, load_init, read_meta};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the features come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSource {
    /// A saved or imported model; None = a random-initialised default backbone.
    pub init: Option<PathBuf>,
    /// Stage name, or "pixels" (default: pixels without a model, the last stage with one).
    pub layer: Option<String>,
    pub backbone: Option<BackboneKind>,
}

/// What to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarityRequest {
    pub data: DataSource,
    pub features: FeatureSource,
    /// At most this many samples per domain (seeded subsample).
    pub max_per_domain: usize,
    pub options: SimilarityOptions,
    /// Labelled target images per class available for training (for the advisor).
    pub target_labels: usize,
    /// Earlier runs' reports, checked for negative transfer.
    pub runs: Vec<PathBuf>,
    /// Also cluster the target's features (k-means), with this many clusters.
    #[serde(default)]
    pub clusters: Option<ClusterCount>,
    /// Also spread the source's labels to the target over a nearest-neighbour graph of the
    /// same features, keeping every step (`--spread`).
    #[serde(default)]
    pub spread: bool,
}

/// The source's labels spreading to the target over the k-nearest-neighbour graph of both
/// domains' features, step by step (label propagation as [`crate::method::label_propagation`]
/// trains with it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelSpreading {
    /// The target sample (index in its domain) of each target row.
    pub target_index: Vec<usize>,
    /// Per step (0: before the first): each target row's class, or null where no label
    /// has arrived yet.
    pub steps: Vec<Vec<Option<u32>>>,
    /// Per step: the share of target rows a label reached.
    pub reached: Vec<f64>,
    /// Per step, when the target has labels: the share of target rows whose arrived label is
    /// right (unreached rows count as wrong). Evaluation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Vec<f64>>,
    /// Each node's strongest edge, as (node, other): nodes are the source rows, then the
    /// target rows.
    pub edges: Vec<(usize, usize)>,
    /// Number of source rows.
    pub source_rows: usize,
}

/// A point of the 2-D map with the file it shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    pub x: f32,
    pub y: f32,
    pub domain: Side,
    /// Index in its domain.
    pub index: usize,
    pub class: Option<u32>,
    pub file: String,
    /// The target point's cluster, when the target was clustered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<u32>,
}

/// Everything `similarity` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarityOutput {
    /// What the features are, e.g. "pixels" or "small-cnn stage conv2 (random weights)".
    pub features: String,
    pub classes: Vec<String>,
    #[serde(flatten)]
    pub report: SimilarityReport,
    /// The map's points with their files (replaces `embedding.points`).
    pub points: Vec<MapPoint>,
    pub advice: Advice,
    /// With a pretrained starting point (`--backbone efficientnet-lite0`): how far the
    /// target is from ImageNet, which the advice's "similar" is read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imagenet: Option<ImagenetDistance>,
    pub negative_transfer: Vec<NegativeTransferWarning>,
    /// The target's clusters (`--clusters`): k-means on the same features; the points'
    /// `cluster` fields say which target image went where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Clustering>,
    /// The source's labels spreading to the target (`--spread`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_spreading: Option<LabelSpreading>,
}

/// Target images measured for the ImageNet distance (a seeded subsample).
pub const IMAGENET_DISTANCE_IMAGES: usize = 64;

/// Labelled images per class a run starting from a pretrained model learns from: the
/// source's smallest class plus the labelled target images handed to training.
pub fn labelled_per_class(pair: &DomainPair, target_labels: usize) -> usize {
    let source = pair
        .source
        .class_counts()
        .into_iter()
        .filter(|&c| c > 0)
        .min()
        .unwrap_or(0);
    source
        + if pair.target_labelled() {
            target_labels
        } else {
            0
        }
}

/// The target's ImageNet distance, on a seeded subsample of `IMAGENET_DISTANCE_IMAGES`.
pub fn target_imagenet_distance(
    pair: &DomainPair,
    seed: u64,
) -> Result<ImagenetDistance, RunError> {
    let idx = subsample(
        pair.target.len(),
        IMAGENET_DISTANCE_IMAGES,
        seed,
        "imagenet-distance",
    );
    imagenet_distance(&pair.target, &idx)
}

/// The notes' cases a–d for starting from the pretrained `backbone`: the target's ImageNet
/// distance (on a seeded subsample) and the advice it gives with `target_labels`.
pub fn pretrained_advice(
    pair: &DomainPair,
    backbone: BackboneKind,
    target_labels: usize,
    seed: u64,
) -> Result<(ImagenetDistance, Advice), RunError> {
    let d = target_imagenet_distance(pair, seed)?;
    let advice = advise_pretrained(
        labelled_per_class(pair, target_labels),
        d.distance,
        backbone.name(),
    );
    Ok((d, advice))
}

/// Seeded subsample of at most `max` indices of a domain, in index order.
pub fn subsample(n: usize, max: usize, seed: u64, purpose: &str) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if n > max {
        idx.shuffle(&mut rng_for(seed, purpose));
        idx.truncate(max);
        idx.sort_unstable();
    }
    idx
}

/// Which features to read: the raw values, or a backbone stage's output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layer {
    /// The samples' values themselves (pixels).
    #[default]
    Pixels,
    /// The output of backbone stage `k` (0-based); past the last stage means the last.
    Stage(usize),
}

/// Where a feature network's weights come from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// A freshly initialised network (random weights from the seed).
    Untrained { backbone: Option<BackboneKind> },
    /// A saved checkpoint (a run's model, or an imported file).
    Checkpoint(PathBuf),
}

/// A network to read features from, and which stage.
pub struct FeatureModel {
    pub net: Network,
    pub stage: usize,
    /// The stage's name, e.g. `conv2`.
    pub stage_name: String,
    /// True for a checkpoint's weights, false for random ones.
    pub trained: bool,
    /// E.g. "small-cnn stage conv2 (random weights)".
    pub description: String,
}

/// The network `model` describes, for data shaped like `pair` (random weights from `seed`
/// where a checkpoint does not set them).
fn feature_network(
    pair: &DomainPair,
    model: &ModelSource,
    seed: u64,
) -> Result<(Network, BackboneKind), RunError> {
    let shape = pair.source.shape;
    let (init, backbone) = match model {
        ModelSource::Untrained { backbone } => (None, *backbone),
        ModelSource::Checkpoint(path) => (Some(path.as_path()), None),
    };
    let meta = init.map(read_meta).transpose()?;
    let backbone = meta
        .as_ref()
        .map(|m| m.backbone)
        .or(backbone)
        .unwrap_or(BackboneKind::default_for(shape));
    let normalisation = meta
        .as_ref()
        .map(|m| m.normalisation.clone())
        .unwrap_or_else(|| Normalisation::from_data(&pair.source.x, shape));
    if let Some(m) = &meta
        && m.input != shape
    {
        return Err(RunError::Invalid(Invalid::text(format!(
            "the model expects {} input but the data was loaded as {}",
            m.input.describe(),
            shape.describe()
        ))));
    }
    let spec = NetworkSpec {
        backbone,
        input: shape,
        num_classes: meta
            .as_ref()
            .map(|m| m.class_names.len().max(1))
            .unwrap_or(pair.classes.len().max(1)),
        bottleneck: meta.as_ref().and_then(|m| m.bottleneck),
    };
    let net = Network::new(spec, normalisation, &Device::Cpu, seed)
        .map_err(|e| RunError::Setup(error_message(&e)))?;
    if let Some(path) = init {
        load_init(&net, path, true)?;
    }
    Ok((net, backbone))
}

/// The feature model for `layer` of `model` (None = raw values).
pub fn feature_model_at(
    pair: &DomainPair,
    model: &ModelSource,
    layer: Layer,
    seed: u64,
) -> Result<Option<FeatureModel>, RunError> {
    let Layer::Stage(k) = layer else {
        return Ok(None);
    };
    let (net, backbone) = feature_network(pair, model, seed)?;
    let stage = k.min(net.stages().len().saturating_sub(1));
    Ok(Some(describe(net, backbone, stage, model)))
}

fn describe(
    net: Network,
    backbone: BackboneKind,
    stage: usize,
    model: &ModelSource,
) -> FeatureModel {
    let stage_name = net
        .stages()
        .get(stage)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let trained = matches!(model, ModelSource::Checkpoint(_));
    let weights = if trained {
        "saved weights"
    } else if backbone.is_pretrained() {
        "ImageNet weights"
    } else {
        "random weights"
    };
    FeatureModel {
        description: format!("{} stage {stage_name} ({weights})", backbone.name()),
        stage_name,
        trained,
        net,
        stage,
    }
}

/// Build the feature model a request asks for (None = raw pixels).
pub fn feature_model(
    pair: &DomainPair,
    source: &FeatureSource,
    seed: u64,
) -> Result<Option<FeatureModel>, RunError> {
    let wants_pixels = source.layer.as_deref() == Some("pixels");
    if wants_pixels
        || (source.init.is_none() && source.layer.is_none() && source.backbone.is_none())
    {
        return Ok(None);
    }
    let model = match &source.init {
        Some(path) => ModelSource::Checkpoint(path.clone()),
        None => ModelSource::Untrained {
            backbone: source.backbone,
        },
    };
    let (net, backbone) = feature_network(pair, &model, seed)?;
    let names: Vec<String> = net.stages().iter().map(|s| s.name.clone()).collect();
    let stage = match &source.layer {
        Some(l) => names.iter().position(|n| n == l).ok_or_else(|| {
            RunError::Invalid(Invalid::setting(
                Setting::Layer,
                format!(
                    " {l} is not a stage of {}; stages: pixels, {}",
                    backbone.name(),
                    names.join(", ")
                ),
            ))
        })?,
        None => names.len() - 1,
    };
    Ok(Some(describe(net, backbone, stage, &model)))
}

/// Features of the samples `idx` of a domain: raw values, or a stage's flattened output.
pub fn domain_features(
    domain: &Domain,
    idx: &[usize],
    model: Option<&FeatureModel>,
) -> Result<Features, RunError> {
    let sub = domain.subset(idx);
    let fail = |e: candle_core::Error| {
        RunError::Setup(format!("feature extraction failed: {}", error_message(&e)))
    };
    let (data, d) = match model {
        None => (sub.x, sub.shape.len()),
        Some(m) => {
            let mut out = Vec::new();
            let mut d = 0;
            let row = sub.shape.len();
            for start in (0..sub.len()).step_by(256) {
                let end = (start + 256).min(sub.len());
                let x = Tensor::from_slice(
                    &sub.x[start * row..end * row],
                    sub.shape.batch_dims(end - start).as_slice(),
                    &Device::Cpu,
                )
                .map_err(fail)?;
                let f = m.net.stage_output(&x, m.stage).map_err(fail)?;
                d = f.dim(1).map_err(fail)?;
                out.extend(
                    f.flatten_all()
                        .map_err(fail)?
                        .to_vec1::<f32>()
                        .map_err(fail)?,
                );
            }
            (out, d)
        }
    };
    Features::new(data, idx.len(), d).map_err(|e| RunError::Invalid(Invalid::text(e.to_string())))
}

/// Both domains' features on a seeded subsample, with the labels and files they stand for.
pub struct PairFeatures {
    pub source: Features,
    pub target: Features,
    /// The samples of each domain the rows are (indices into the domain).
    pub source_idx: Vec<usize>,
    pub target_idx: Vec<usize>,
    pub source_labels: Option<Vec<u32>>,
    pub target_labels: Option<Vec<u32>>,
}

/// Subsample both domains (at most `max_per_domain` each, seeded) and read their features.
/// The CLI's `similarity`, the GUI's analysis and its live maps all go through here, so
/// the same data, features and seed give the same rows.
pub fn pair_features(
    pair: &DomainPair,
    model: Option<&FeatureModel>,
    max_per_domain: usize,
    seed: u64,
) -> Result<PairFeatures, RunError> {
    let s_idx = subsample(pair.source.len(), max_per_domain, seed, "similarity-source");
    let t_idx = subsample(pair.target.len(), max_per_domain, seed, "similarity-target");
    let labels = |d: &Domain, idx: &[usize]| {
        d.labels
            .as_ref()
            .map(|l| idx.iter().map(|&i| l[i]).collect::<Vec<u32>>())
    };
    Ok(PairFeatures {
        source: domain_features(&pair.source, &s_idx, model)?,
        target: domain_features(&pair.target, &t_idx, model)?,
        source_labels: labels(&pair.source, &s_idx),
        target_labels: labels(&pair.target, &t_idx),
        source_idx: s_idx,
        target_idx: t_idx,
    })
}

impl PairFeatures {
    /// Every similarity metric and the 2-D map.
    pub fn report(
        &self,
        classes: &[String],
        options: &SimilarityOptions,
    ) -> Result<SimilarityReport, RunError> {
        similarity_report(
            &self.source,
            &self.target,
            self.source_labels.as_deref(),
            self.target_labels.as_deref(),
            classes,
            options,
        )
        .map_err(|e| RunError::Invalid(Invalid::text(e.to_string())))
    }

    /// The 2-D map alone (no metrics), e.g. after each epoch of a run.
    pub fn map(&self, method: EmbeddingMethod, seed: u64) -> Result<Embedding, RunError> {
        embed_domains(
            &self.source,
            &self.target,
            self.source_labels.as_deref(),
            self.target_labels.as_deref(),
            &EmbeddingOptions {
                method,
                seed,
                max_points_per_domain: self.source.n.max(self.target.n).max(1),
                ..EmbeddingOptions::default()
            },
        )
        .map_err(|e| RunError::Invalid(Invalid::text(e.to_string())))
    }

    /// The target's rows clustered by k-means (scored against the target's class folders
    /// when it has them; the clustering never sees them).
    pub fn cluster_target(&self, count: ClusterCount, seed: u64) -> Result<Clustering, RunError> {
        cluster(&self.target, count, self.target_labels.as_deref(), seed)
            .map_err(|e| RunError::Invalid(Invalid::text(format!("clustering the target: {e}"))))
    }

    /// The source's labels spread to the target over the graph of these features, every
    /// step kept; None when the source has no labels.
    pub fn spread_labels(&self, classes: usize) -> Result<Option<LabelSpreading>, RunError> {
        use crate::method::label_propagation::{DEFAULT_ALPHA, spread_steps};
        let Some(labels) = &self.source_labels else {
            return Ok(None);
        };
        let rows = |f: &Features| f.rows().map(<[f32]>::to_vec).collect::<Vec<_>>();
        let spreading = spread_steps(
            &rows(&self.source),
            labels,
            &rows(&self.target),
            classes,
            DEFAULT_ALPHA,
            &candle_core::Device::Cpu,
        )
        .map_err(|e| RunError::Invalid(Invalid::text(format!("spreading the labels: {e}"))))?;
        let Some(sp) = spreading else {
            return Ok(None);
        };
        let n = self.target.n.max(1) as f64;
        let reached = sp
            .steps
            .iter()
            .map(|s| s.iter().filter(|l| l.is_some()).count() as f64 / n)
            .collect();
        let accuracy = self.target_labels.as_ref().map(|truth| {
            sp.steps
                .iter()
                .map(|s| {
                    let right = s
                        .iter()
                        .zip(truth)
                        .filter(|(l, t)| **l == Some(**t))
                        .count();
                    right as f64 / n
                })
                .collect()
        });
        Ok(Some(LabelSpreading {
            target_index: self.target_idx.clone(),
            steps: sp.steps,
            reached,
            accuracy,
            edges: sp.edges,
            source_rows: sp.labelled,
        }))
    }

    /// The map's points with the samples and files they stand for.
    pub fn points(&self, pair: &DomainPair, embedding: &Embedding) -> Vec<MapPoint> {
        embedding
            .points
            .iter()
            .map(|p| {
                let (d, idx) = match p.domain {
                    Side::Source => (&pair.source, &self.source_idx),
                    Side::Target => (&pair.target, &self.target_idx),
                };
                let index = idx[p.index];
                MapPoint {
                    x: p.x,
                    y: p.y,
                    domain: p.domain,
                    index,
                    class: p.class,
                    file: d.files[index].clone(),
                    cluster: None,
                }
            })
            .collect()
    }
}

/// Read earlier run reports and flag negative transfer among them.
pub fn check_runs(paths: &[PathBuf]) -> Result<Vec<NegativeTransferWarning>, RunError> {
    let mut outcomes = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| {
            RunError::Invalid(Invalid::text(format!(
                "cannot read the run report ({e}): {}",
                p.display()
            )))
        })?;
        let r: RunReport = serde_json::from_str(&text).map_err(|e| {
            RunError::Invalid(Invalid::text(format!(
                "not a run report ({e}): {}",
                p.display()
            )))
        })?;
        if let Some((acc, estimated)) = r.final_metrics.target_accuracy_or_estimate() {
            outcomes.push(RunOutcome {
                label: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                method: r.method.clone(),
                target_accuracy: acc,
                used_target_labels: r.config.target_labels > 0,
                estimated,
            });
        }
    }
    Ok(negative_transfer(&outcomes))
}

/// Measure a loaded pair.
pub fn measure(pair: &DomainPair, req: &SimilarityRequest) -> Result<SimilarityOutput, RunError> {
    let seed = req.options.seed;
    let model = feature_model(pair, &req.features, seed)?;
    let features = pair_features(pair, model.as_ref(), req.max_per_domain, seed)?;
    let report = features.report(&pair.classes, &req.options)?;
    let mut points = features.points(pair, &report.embedding);
    let clusters = req
        .clusters
        .map(|count| features.cluster_target(count, seed))
        .transpose()?;
    if let Some(c) = &clusters {
        label_clusters(&mut points, &report.embedding, c);
    }
    let label_spreading = match req.spread {
        true => features.spread_labels(pair.classes.len())?,
        false => None,
    };
    let pretrained = req
        .features
        .backbone
        .filter(|b| b.is_pretrained() && req.features.init.is_none());
    let (imagenet, advice) = match pretrained {
        Some(b) => {
            let (d, advice) = pretrained_advice(pair, b, req.target_labels, seed)?;
            (Some(d), advice)
        }
        None => (
            None,
            advise(
                req.target_labels,
                pair.classes.len(),
                report.a_distance,
                report.mmd_p_value,
            ),
        ),
    };
    Ok(SimilarityOutput {
        features: model
            .map(|m| m.description)
            .unwrap_or_else(|| "pixels".into()),
        classes: pair.classes.clone(),
        report,
        points,
        advice,
        imagenet,
        negative_transfer: check_runs(&req.runs)?,
        clusters,
        label_spreading,
    })
}

/// Give each target point of the map its cluster (the embedding's points index the
/// clustered rows).
pub fn label_clusters(points: &mut [MapPoint], embedding: &Embedding, clusters: &Clustering) {
    for (point, e) in points.iter_mut().zip(&embedding.points) {
        if e.domain == Side::Target {
            point.cluster = clusters.assignments.get(e.index).copied();
        }
    }
}
