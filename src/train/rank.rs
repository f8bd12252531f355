//! "Which source?": rank candidate sources and models for one target.
//!
//! - A **source folder** is ranked by how far its images lie from the target's in one
//!   fixed feature space shared by every candidate (the shipped ImageNet network's pooled
//!   features, or raw pixels): MMD² (the ranking measure, lower is closer), with the
//!   A-distance and CORAL beside it. No label of either domain is needed.
//! - A **model** (a saved checkpoint, or the shipped ImageNet network) is ranked by
//!   LogME on its features of K labelled target images per class, with LEEP and H-score
//!   beside it (see [`crate::analysis::transferability`]). No training.
//!
//! Folders and models are ranked separately (`by` says on what); the two scales do not
//! compare. The CLI's `transferlab rank` and the app's "Which source?" panel call [`rank`].

use super::config::DataSource;
use super::experiment::RunError;
use super::load::{ShapeHint, load_pair};
use super::settings::Invalid;
use super::similarity::{FeatureSource, feature_model, pair_features};
use crate::analysis::transferability::transferability;
use crate::analysis::{Features, SimilarityOptions};
use crate::data::folder::scan_folder;
use crate::data::split::rng_for;
use crate::model::BackboneKind;
use crate::model::predict::{PredictModel, Predictor};
use candle_core::Device;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The feature space source folders are compared in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RankFeatures {
    /// The shipped ImageNet EfficientNet-Lite0's pooled features.
    #[default]
    Imagenet,
    /// Raw pixel values.
    Pixels,
}

/// A candidate to rank.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Candidate {
    /// A folder of class subfolders (or flat) to train on.
    Folder(PathBuf),
    /// A saved checkpoint to start from.
    Model(PathBuf),
    /// The shipped ImageNet EfficientNet-Lite0.
    Imagenet,
}

impl Candidate {
    /// The name a candidate is listed under.
    pub fn name(&self) -> String {
        match self {
            Candidate::Folder(p) | Candidate::Model(p) => p.display().to_string(),
            Candidate::Imagenet => "ImageNet EfficientNet-Lite0 (built in)".into(),
        }
    }

    fn is_model(&self) -> bool {
        !matches!(self, Candidate::Folder(_))
    }
}

/// What to rank.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankRequest {
    pub target: PathBuf,
    pub candidates: Vec<Candidate>,
    /// Labelled target images per class for the model scores (0: models cannot be ranked).
    pub target_labels: usize,
    pub features: RankFeatures,
    /// Images per domain the folder distances use (seeded subsample).
    pub max_per_domain: usize,
    pub seed: u64,
}

/// One ranked candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub name: String,
    /// "folder" or "model".
    pub kind: String,
    /// Higher is better: −MMD² for a folder, LogME for a model.
    pub score: f64,
    /// 1 = best, among the candidates of the same kind.
    pub rank: usize,
    /// The measure `score` is: "mmd2" or "logme".
    pub by: String,
    /// Every measure, by key (mmd2, a_distance, coral; logme, leep, h_score).
    pub measures: BTreeMap<String, f64>,
}

/// The ranking, best first within each kind (folders, then models).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RankReport {
    pub target: String,
    pub candidates: Vec<Ranked>,
    /// What each figure was computed on.
    pub notes: Vec<String>,
}

/// Rank every candidate of `req` for its target; `progress` hears each candidate's name as
/// its turn comes.
pub fn rank(req: &RankRequest, progress: &mut dyn FnMut(&str)) -> Result<RankReport, RunError> {
    if req.candidates.is_empty() {
        return Err(RunError::Invalid(Invalid::text(
            "nothing to rank: give at least one candidate source folder or model",
        )));
    }
    if req.target_labels == 0 && req.candidates.iter().any(Candidate::is_model) {
        return Err(RunError::Invalid(Invalid::text(
            "models are ranked by LogME, LEEP and H-score on a few labelled target images: \
             give --target-labels K (e.g. 10)",
        )));
    }
    let mut report = RankReport {
        target: req.target.display().to_string(),
        ..Default::default()
    };
    for c in &req.candidates {
        progress(&c.name());
        let (by, score, measures) = match c {
            Candidate::Folder(path) => folder_measures(req, path)?,
            Candidate::Model(path) => model_measures(req, &PredictModel::Checkpoint(path.clone()))?,
            Candidate::Imagenet => model_measures(req, &PredictModel::Imagenet)?,
        };
        report.candidates.push(Ranked {
            name: c.name(),
            kind: if c.is_model() { "model" } else { "folder" }.into(),
            score,
            rank: 0,
            by: by.into(),
            measures,
        });
    }
    for kind in ["folder", "model"] {
        let mut of_kind: Vec<&mut Ranked> = report
            .candidates
            .iter_mut()
            .filter(|r| r.kind == kind)
            .collect();
        of_kind.sort_by(|a, b| b.score.total_cmp(&a.score));
        for (i, r) in of_kind.into_iter().enumerate() {
            r.rank = i + 1;
        }
    }
    report
        .candidates
        .sort_by_key(|c| (c.kind != "folder", c.rank));
    if req.candidates.iter().any(|c| !c.is_model()) {
        report.notes.push(format!(
            "folders: distances to the target on {}, at most {} images per domain (seed {}); score = −MMD²",
            match req.features {
                RankFeatures::Imagenet => "the built-in ImageNet network's pooled features",
                RankFeatures::Pixels => "raw pixels",
            },
            req.max_per_domain,
            req.seed
        ));
    }
    if req.candidates.iter().any(Candidate::is_model) {
        report.notes.push(format!(
            "models: scores on {} labelled target images per class (seed {}), each model's own input size; score = LogME",
            req.target_labels, req.seed
        ));
    }
    Ok(report)
}

type Measured = (&'static str, f64, BTreeMap<String, f64>);

fn folder_measures(req: &RankRequest, source: &std::path::Path) -> Result<Measured, RunError> {
    let data = DataSource::Folders {
        source: source.to_path_buf(),
        target: req.target.clone(),
    };
    let backbone = match req.features {
        RankFeatures::Imagenet => Some(BackboneKind::EfficientnetLite0),
        RankFeatures::Pixels => None,
    };
    // Pixels are compared at the small CNN's size; the ImageNet network at its smallest
    // good size for quick features.
    let size = match req.features {
        RankFeatures::Imagenet => Some(crate::model::efficientnet::FEATURE_SIDE),
        RankFeatures::Pixels => None,
    };
    let hint = ShapeHint::for_run(backbone, None, size, None)?;
    let pair = load_pair(&data, hint, &mut |_, _| {})?;
    let features = FeatureSource {
        backbone,
        layer: backbone.is_none().then(|| "pixels".to_string()),
        init: None,
    };
    let model = feature_model(&pair, &features, req.seed)?;
    let pf = pair_features(&pair, model.as_ref(), req.max_per_domain, req.seed)?;
    let options = SimilarityOptions {
        permutations: 0,
        seed: req.seed,
        ..Default::default()
    };
    let sim = pf.report(&pair.classes, &options)?;
    let measures = BTreeMap::from([
        ("mmd2".to_string(), sim.mmd2),
        ("a_distance".to_string(), sim.a_distance),
        ("coral".to_string(), sim.coral_distance),
    ]);
    Ok(("mmd2", -sim.mmd2, measures))
}

fn model_measures(req: &RankRequest, model: &PredictModel) -> Result<Measured, RunError> {
    let scan = scan_folder("target", &req.target)?;
    if scan.classes.len() < 2 {
        return Err(RunError::Invalid(Invalid::text(format!(
            "ranking models needs a labelled target (class subfolders) with at least 2 classes: {} has {}",
            req.target.display(),
            scan.classes.len()
        ))));
    }
    let mut rng = rng_for(req.seed, "rank-target-labels");
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (c, (_, class_files)) in scan.classes.iter().enumerate() {
        let mut picked = class_files.clone();
        picked.shuffle(&mut rng);
        picked.truncate(req.target_labels);
        labels.extend(std::iter::repeat_n(c as u32, picked.len()));
        files.extend(picked);
    }
    let predictor = Predictor::open(model, &Device::Cpu)?;
    let (features, probs) = predictor
        .features_of_files(&files)
        .map_err(|e| RunError::Setup(format!("could not read the target images: {e}")))?;
    let features = Features::from_rows(&features)
        .map_err(|e| RunError::Invalid(Invalid::text(e.to_string())))?;
    let t = transferability(&features, &labels, Some(&probs))
        .map_err(|e| RunError::Invalid(Invalid::text(e.to_string())))?;
    let mut measures = BTreeMap::from([
        ("logme".to_string(), t.logme),
        ("h_score".to_string(), t.h_score),
    ]);
    if let Some(leep) = t.leep {
        measures.insert("leep".into(), leep);
    }
    Ok(("logme", t.logme, measures))
}
