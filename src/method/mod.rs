//! Transfer methods, one file each, all behind the [`Method`] trait: given the network and
//! a batch, a method returns the loss to minimise. What data a method trains on (source,
//! labelled target, unlabeled target) is declared by its [`MethodKind`], so the runner can
//! check it before training starts.

pub mod supervised;

use crate::model::Network;
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// The transfer taxonomy a method belongs to (how the GUI groups them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    /// No transfer: a reference point.
    Baseline,
    /// Parameter/model-based: reuse and fine-tune weights.
    Parameter,
    /// Feature-based: align the feature distributions.
    Feature,
    /// Adversarial: a domain classifier the features learn to fool.
    Adversarial,
    /// Instance-based: re-weight source samples.
    Instance,
}

/// Every method, by its command-line name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum MethodKind {
    /// Train on the source, evaluate on the target.
    #[default]
    SourceOnly,
    /// Start from `--init` and train on all labelled data (source + labelled target).
    FineTune,
    /// Train on the labelled target images only (`--target-labels K`).
    TargetOnly,
}

/// Which labelled images a method trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelledData {
    Source,
    SourceAndTarget,
    Target,
}

impl MethodKind {
    /// All methods, in menu order.
    pub const ALL: [MethodKind; 3] = [
        MethodKind::SourceOnly,
        MethodKind::TargetOnly,
        MethodKind::FineTune,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            MethodKind::SourceOnly => "source-only",
            MethodKind::FineTune => "fine-tune",
            MethodKind::TargetOnly => "target-only",
        }
    }

    /// Parse a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The taxonomy group.
    pub fn family(self) -> Family {
        match self {
            MethodKind::SourceOnly | MethodKind::TargetOnly => Family::Baseline,
            MethodKind::FineTune => Family::Parameter,
        }
    }

    /// One sentence saying what the method does.
    pub fn summary(self) -> &'static str {
        match self {
            MethodKind::SourceOnly => {
                "Train on the labelled source only and test on the target: how far plain training gets."
            }
            MethodKind::TargetOnly => {
                "Train on the few labelled target images only: the no-transfer baseline that reveals negative transfer."
            }
            MethodKind::FineTune => {
                "Reuse a trained network (--init), freeze its first stages and train the rest on every labelled image."
            }
        }
    }

    /// The labelled images the method learns from.
    pub fn labelled_data(self) -> LabelledData {
        match self {
            MethodKind::SourceOnly => LabelledData::Source,
            MethodKind::FineTune => LabelledData::SourceAndTarget,
            MethodKind::TargetOnly => LabelledData::Target,
        }
    }

    /// True when the method also looks at unlabeled target batches.
    pub fn uses_unlabeled_target(self) -> bool {
        false
    }

    /// The default adaptation weight λ, for methods that have one.
    pub fn default_lambda(self) -> Option<f64> {
        None
    }

    /// Width of the adaptation (bottleneck) layer the method adds, if any.
    pub fn bottleneck(self) -> Option<usize> {
        None
    }
}

/// Settings shared by the methods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSettings {
    /// Weight of the adaptation loss.
    pub lambda: f64,
    /// Total optimisation steps of the run (for schedules such as DANN's λ ramp).
    pub total_steps: usize,
    pub seed: u64,
}

/// One training step's inputs.
pub struct TrainBatch {
    /// Labelled inputs.
    pub x: Tensor,
    /// Their labels (u32).
    pub y: Tensor,
    /// Per labelled sample: true when it is a labelled target image.
    pub from_target: Vec<bool>,
    /// Per labelled sample: its index in its domain.
    pub sample_ids: Vec<usize>,
    /// An unlabeled target batch, for methods that use one.
    pub target_x: Option<Tensor>,
}

/// A transfer method.
pub trait Method: Send {
    /// Which method this is.
    fn kind(&self) -> MethodKind;

    /// The loss of one step; `progress` runs from 0 to 1 over the whole run.
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor>;

    /// Method-specific figures for the epoch that just ended (e.g. MMD²); resets them.
    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// Extra results for the run's JSON (e.g. per-file weights).
    fn report_extra(&self) -> Option<serde_json::Value> {
        None
    }
}

/// Build a method; its own layers (if any) are created in `net`'s variables.
pub fn build_method(
    kind: MethodKind,
    _settings: &MethodSettings,
    _net: &Network,
) -> Result<Box<dyn Method>> {
    Ok(match kind {
        MethodKind::SourceOnly | MethodKind::FineTune | MethodKind::TargetOnly => {
            Box::new(supervised::Supervised::new(kind))
        }
    })
}
