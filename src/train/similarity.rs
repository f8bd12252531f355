//! `transferlab similarity`: measure how far apart two domains are, on raw pixels or on a
//! network stage's features (a random-initialised backbone or a saved/imported model), map
//! them to 2-D, and advise on how to transfer. This is the glue between domains and models
//! (Candle) and the plain-matrix analysis in `crate::analysis`.

use super::config::DataSource;
use super::events::RunReport;
use super::experiment::RunError;
use crate::analysis::advisor::{
    Advice, NegativeTransferWarning, RunOutcome, advise, negative_transfer,
};
use crate::analysis::{
    Domain as Side, Features, SimilarityOptions, SimilarityReport, similarity_report,
};
use crate::data::split::rng_for;
use crate::data::{Domain, DomainPair};
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
    pub negative_transfer: Vec<NegativeTransferWarning>,
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

/// A network to read features from, and which stage (None = pixels).
pub struct FeatureModel {
    pub net: Network,
    pub stage: usize,
    pub description: String,
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
    let shape = pair.source.shape;
    let meta = source.init.as_deref().map(read_meta).transpose()?;
    let backbone = meta
        .as_ref()
        .map(|m| m.backbone)
        .or(source.backbone)
        .unwrap_or(BackboneKind::default_for(shape));
    let normalisation = meta
        .as_ref()
        .map(|m| m.normalisation.clone())
        .unwrap_or_else(|| Normalisation::from_data(&pair.source.x, shape));
    if let Some(m) = &meta
        && m.input != shape
    {
        return Err(RunError::Invalid(format!(
            "the model expects {} input but the data was loaded as {}",
            m.input.describe(),
            shape.describe()
        )));
    }
    let spec = NetworkSpec {
        backbone,
        input: shape,
        num_classes: meta
            .as_ref()
            .map(|m| m.class_names.len().max(1))
            .unwrap_or(pair.classes.len()),
        bottleneck: meta.as_ref().and_then(|m| m.bottleneck),
    };
    let net = Network::new(spec, normalisation, &Device::Cpu, seed)
        .map_err(|e| RunError::Setup(e.to_string()))?;
    if let Some(path) = &source.init {
        load_init(&net, path, true)?;
    }
    let names: Vec<String> = net.stages().iter().map(|s| s.name.clone()).collect();
    let stage = match &source.layer {
        Some(l) => names.iter().position(|n| n == l).ok_or_else(|| {
            RunError::Invalid(format!(
                "--layer {l} is not a stage of {}; stages: pixels, {}",
                backbone.name(),
                names.join(", ")
            ))
        })?,
        None => names.len() - 1,
    };
    let weights = if source.init.is_some() {
        "saved weights"
    } else if backbone.is_pretrained() {
        "ImageNet weights"
    } else {
        "random weights"
    };
    Ok(Some(FeatureModel {
        description: format!("{} stage {} ({weights})", backbone.name(), names[stage]),
        net,
        stage,
    }))
}

/// Features of the samples `idx` of a domain: raw values, or a stage's flattened output.
pub fn domain_features(
    domain: &Domain,
    idx: &[usize],
    model: Option<&FeatureModel>,
) -> Result<Features, RunError> {
    let sub = domain.subset(idx);
    let fail = |e: candle_core::Error| RunError::Setup(format!("feature extraction failed: {e}"));
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
    Features::new(data, idx.len(), d).map_err(|e| RunError::Invalid(e.to_string()))
}

/// Read earlier run reports and flag negative transfer among them.
pub fn check_runs(paths: &[PathBuf]) -> Result<Vec<NegativeTransferWarning>, RunError> {
    let mut outcomes = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| {
            RunError::Invalid(format!("cannot read the run report ({e}): {}", p.display()))
        })?;
        let r: RunReport = serde_json::from_str(&text)
            .map_err(|e| RunError::Invalid(format!("not a run report ({e}): {}", p.display())))?;
        if let Some(acc) = r.final_metrics.target_accuracy {
            outcomes.push(RunOutcome {
                label: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                method: r.method.clone(),
                target_accuracy: acc,
                used_target_labels: r.config.target_labels > 0,
            });
        }
    }
    Ok(negative_transfer(&outcomes))
}

/// Measure a loaded pair.
pub fn measure(pair: &DomainPair, req: &SimilarityRequest) -> Result<SimilarityOutput, RunError> {
    let seed = req.options.seed;
    let model = feature_model(pair, &req.features, seed)?;
    let s_idx = subsample(
        pair.source.len(),
        req.max_per_domain,
        seed,
        "similarity-source",
    );
    let t_idx = subsample(
        pair.target.len(),
        req.max_per_domain,
        seed,
        "similarity-target",
    );
    let fs = domain_features(&pair.source, &s_idx, model.as_ref())?;
    let ft = domain_features(&pair.target, &t_idx, model.as_ref())?;
    let labels = |d: &Domain, idx: &[usize]| {
        d.labels
            .as_ref()
            .map(|l| idx.iter().map(|&i| l[i]).collect::<Vec<u32>>())
    };
    let (sl, tl) = (labels(&pair.source, &s_idx), labels(&pair.target, &t_idx));
    let report = similarity_report(
        &fs,
        &ft,
        sl.as_deref(),
        tl.as_deref(),
        &pair.classes,
        &req.options,
    )
    .map_err(|e| RunError::Invalid(e.to_string()))?;
    let points = report
        .embedding
        .points
        .iter()
        .map(|p| {
            let (d, idx) = match p.domain {
                Side::Source => (&pair.source, &s_idx),
                Side::Target => (&pair.target, &t_idx),
            };
            let index = idx[p.index];
            MapPoint {
                x: p.x,
                y: p.y,
                domain: p.domain,
                index,
                class: p.class,
                file: d.files[index].clone(),
            }
        })
        .collect();
    let advice = advise(
        req.target_labels,
        pair.classes.len(),
        report.a_distance,
        report.mmd_p_value,
    );
    Ok(SimilarityOutput {
        features: model
            .map(|m| m.description)
            .unwrap_or_else(|| "pixels".into()),
        classes: pair.classes.clone(),
        report,
        points,
        advice,
        negative_transfer: check_runs(&req.runs)?,
    })
}
