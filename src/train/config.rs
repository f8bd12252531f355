//! What a run is: data, backbone, method, freezing depth and hyperparameters.

use crate::device::DeviceChoice;
use crate::method::MethodKind;
use crate::model::BackboneKind;
use crate::model::checkpoint::sidecar_path;
use crate::model::predict::PredictModel;
use crate::output::{Input, Output};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the two domains come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// A built-in generated pair.
    Demo { name: String },
    /// Two folders (the target may be flat = unlabeled).
    Folders { source: PathBuf, target: PathBuf },
    /// One folder of images (multitask with a labels CSV, zero-shot with class folders).
    Folder { folder: PathBuf },
}

impl Default for DataSource {
    fn default() -> Self {
        DataSource::Demo {
            name: crate::data::DEMOS[0].name.into(),
        }
    }
}

impl DataSource {
    /// Short description for reports.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Demo { name } => format!("demo {name}"),
            DataSource::Folders { source, target } => {
                format!("{} → {}", source.display(), target.display())
            }
            DataSource::Folder { folder } => folder.display().to_string(),
        }
    }
}

/// Everything that defines a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExperimentConfig {
    pub data: DataSource,
    pub method: MethodKind,
    /// None: the default for the data (MLP for points, small CNN for images) or the `init` model's.
    pub backbone: Option<BackboneKind>,
    /// Number of backbone stages to freeze.
    pub freeze: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Labelled target images per class handed to training.
    pub target_labels: usize,
    /// Adaptation weight; None: the method's default.
    pub lambda: Option<f64>,
    /// The method's other hyperparameters by key (`--param KEY=VALUE`); missing ones take
    /// the method's defaults.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: std::collections::BTreeMap<String, f64>,
    /// Width of the adaptation (bottleneck) layer; None: the method's default, 0: none.
    pub bottleneck: Option<usize>,
    /// Fraction of the source held out for source accuracy.
    pub val_fraction: f64,
    pub device: DeviceChoice,
    /// Start from this checkpoint (task A → task B).
    pub init: Option<PathBuf>,
    /// Keep the epoch a label-free criterion scores best instead of the last (`--select-by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select_by: Option<super::selection::SelectBy>,
    /// The teacher of the distillation methods: a saved model or the built-in ImageNet one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teacher: Option<PredictModel>,
    /// Save the trained model here (weights + JSON sidecar).
    pub save: Option<PathBuf>,
    /// Multitask: CSV of file → one label per task.
    pub labels: Option<PathBuf>,
    /// Multitask: weight of each task's loss (empty: all 1).
    pub task_weights: Vec<f64>,
    /// Zero-shot: CSV of class → attribute values.
    pub attributes: Option<PathBuf>,
    /// Zero-shot: the classes held out of training (empty: the demo's default).
    pub unseen: Vec<String>,
    /// Stepping stones: intermediate domains between source and target, in order.
    pub via: Vec<PathBuf>,
    /// Stepping stones through the demo's built-in intermediate domains.
    pub stepping_stones: bool,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            data: DataSource::default(),
            method: MethodKind::SourceOnly,
            backbone: None,
            freeze: 0,
            epochs: 5,
            batch_size: 64,
            learning_rate: 1e-3,
            seed: 1,
            target_labels: 0,
            lambda: None,
            params: Default::default(),
            bottleneck: None,
            val_fraction: 0.2,
            device: DeviceChoice::Auto,
            init: None,
            select_by: None,
            teacher: None,
            save: None,
            labels: None,
            task_weights: Vec::new(),
            attributes: None,
            unseen: Vec::new(),
            via: Vec::new(),
            stepping_stones: false,
        }
    }
}

impl ExperimentConfig {
    /// The files and folders the run reads, named as the user gave them.
    pub fn inputs(&self) -> Vec<Input> {
        let mut v = Vec::new();
        match &self.data {
            DataSource::Demo { .. } => {}
            DataSource::Folders { source, target } => {
                v.push(Input::new("the source folder", source));
                v.push(Input::new("the target folder", target));
            }
            DataSource::Folder { folder } => v.push(Input::new("the source folder", folder)),
        }
        if let Some(p) = &self.init {
            v.push(Input::new("the starting model", p));
            v.push(Input::new("the starting model's sidecar", sidecar_path(p)));
        }
        if let Some(PredictModel::Checkpoint(p)) = &self.teacher {
            v.push(Input::new("the teacher model", p));
            v.push(Input::new("the teacher model's sidecar", sidecar_path(p)));
        }
        if let Some(p) = &self.labels {
            v.push(Input::new("the labels CSV", p));
        }
        if let Some(p) = &self.attributes {
            v.push(Input::new("the attributes CSV", p));
        }
        for p in &self.via {
            v.push(Input::new("a stepping-stone folder", p));
        }
        v
    }

    /// The files the run itself writes (the saved model and its sidecar).
    pub fn outputs(&self) -> Vec<Output> {
        match &self.save {
            Some(p) => vec![
                Output::new("the saved model", p),
                Output::new("the saved model's sidecar", sidecar_path(p)),
            ],
            None => Vec::new(),
        }
    }
}
