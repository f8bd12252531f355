//! Transfer methods, one file each, all behind the [`Method`] trait: given the network and
//! a batch, a method returns the loss to minimise. What data a method trains on (source,
//! labelled target, unlabeled target) is declared by its [`MethodKind`], so the runner can
//! check it before training starts.

pub mod coral;
pub mod dan;
pub mod dann;
pub mod ddc;
pub mod descriptor;
pub mod distill;
pub mod domain_classifier;
pub mod feature_penalty;
pub mod instance_weighting;
pub mod label_propagation;
pub mod mcc;
pub mod mmd;
pub mod relation_distill;
pub mod rotation;
pub mod shot;
pub mod supervised;
pub mod teacher;

pub use crate::metric::{Metric, Unit};
use crate::model::{Forward, Network};
use candle_core::{DType, Result, Tensor};
pub use descriptor::{Hyperparameter, MethodInfo};
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
    /// Self-training: learn from the network's own predictions on the target.
    SelfTraining,
    /// Relation-based: transfer the relations between samples (a graph over both domains).
    Relation,
    /// Unsupervised: learn from images with no label in either domain.
    Unsupervised,
    /// Transfer between tasks rather than domains: multitask learning, zero-shot learning.
    Task,
}

/// Every method, by its command-line name.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
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
    /// Deep Domain Confusion: an adaptation layer and a single-kernel MMD² between domains.
    Ddc,
    /// Deep Adaptation Network: multi-kernel MMD² on the adaptation layer.
    Dan,
    /// Deep CORAL: match the second-order statistics (covariances) of the two domains.
    Coral,
    /// Domain-adversarial training through a gradient reversal layer.
    Dann,
    /// Source samples re-weighted by the density ratio p_t/p_s from a domain classifier.
    InstanceWeighting,
    /// SHOT: confident, diverse target predictions and centroid pseudo-labels.
    Shot,
    /// Minimum class confusion on the target predictions.
    Mcc,
    /// Labels spread from the source to the target over a nearest-neighbour graph.
    LabelPropagation,
    /// A teacher model hands the student the relations between samples (SP, RKD).
    RelationDistill,
    /// Knowledge distillation of a teacher's outputs (the same classes).
    Distill,
    /// Self-supervised pretraining: predict each image's rotation, no class label used.
    RotationPretrain,
    /// One trunk, one head per task (`--labels CSV`), against each task trained alone.
    Multitask,
    /// Learn attributes on the seen classes, name unseen classes by their signature.
    ZeroShot,
}

/// Which labelled images a method trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelledData {
    Source,
    SourceAndTarget,
    Target,
    /// None: the method learns from the source images without their labels (and reports
    /// no class accuracy).
    None,
}

impl MethodKind {
    /// The methods that adapt to an unlabeled target, in menu order.
    pub const ADAPTATION: [MethodKind; 8] = [
        MethodKind::Ddc,
        MethodKind::Dan,
        MethodKind::Coral,
        MethodKind::Dann,
        MethodKind::InstanceWeighting,
        MethodKind::Shot,
        MethodKind::Mcc,
        MethodKind::LabelPropagation,
    ];

    /// All methods, in menu order: the baselines, the adaptation methods, the methods
    /// across tasks.
    pub const ALL: [MethodKind; 16] = {
        let mut all = [MethodKind::SourceOnly; 16];
        all[1] = MethodKind::TargetOnly;
        all[2] = MethodKind::FineTune;
        let mut i = 0;
        while i < Self::ADAPTATION.len() {
            all[3 + i] = Self::ADAPTATION[i];
            i += 1;
        }
        all[3 + Self::ADAPTATION.len()] = MethodKind::RelationDistill;
        all[4 + Self::ADAPTATION.len()] = MethodKind::Distill;
        all[5 + Self::ADAPTATION.len()] = MethodKind::RotationPretrain;
        all[6 + Self::ADAPTATION.len()] = MethodKind::Multitask;
        all[7 + Self::ADAPTATION.len()] = MethodKind::ZeroShot;
        all
    };

    /// Everything known about the method (the registry: one line per method).
    pub fn info(self) -> &'static MethodInfo {
        match self {
            MethodKind::SourceOnly => &supervised::SOURCE_ONLY,
            MethodKind::FineTune => &supervised::FINE_TUNE,
            MethodKind::TargetOnly => &supervised::TARGET_ONLY,
            MethodKind::Ddc => &ddc::INFO,
            MethodKind::Dan => &dan::INFO,
            MethodKind::Coral => &coral::INFO,
            MethodKind::Dann => &dann::INFO,
            MethodKind::InstanceWeighting => &instance_weighting::INFO,
            MethodKind::Shot => &shot::INFO,
            MethodKind::Mcc => &mcc::INFO,
            MethodKind::LabelPropagation => &label_propagation::INFO,
            MethodKind::RelationDistill => &relation_distill::INFO,
            MethodKind::Distill => &distill::INFO,
            MethodKind::RotationPretrain => &rotation::INFO,
            MethodKind::Multitask => &MULTITASK,
            MethodKind::ZeroShot => &ZERO_SHOT,
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Parse a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The taxonomy group.
    pub fn family(self) -> Family {
        self.info().family
    }

    /// One sentence saying what the method does.
    pub fn summary(self) -> &'static str {
        self.info().summary
    }

    /// True for the methods that learn across tasks (multitask, zero-shot) rather than
    /// from a source domain to a target domain.
    pub fn is_task_method(self) -> bool {
        self.family() == Family::Task
    }

    /// The labelled images the method learns from.
    pub fn labelled_data(self) -> LabelledData {
        self.info().labelled
    }

    /// True when the method also looks at unlabeled target batches.
    pub fn uses_unlabeled_target(self) -> bool {
        self.info().uses_unlabeled_target
    }

    /// True when the method learns from a teacher model (`--teacher`).
    pub fn needs_teacher(self) -> bool {
        self.info().teacher
    }

    /// The default adaptation weight λ, for methods that have one.
    pub fn default_lambda(self) -> Option<f64> {
        self.info().hyperparameter("lambda").map(|h| h.default)
    }

    /// Factor on the configured learning rate at `progress` (0 to 1): [`annealed_lr`] for
    /// the methods whose descriptor asks for it, else 1.
    pub fn lr_scale(self, progress: f64) -> f64 {
        if self.info().anneal_lr {
            annealed_lr(progress)
        } else {
            1.0
        }
    }

    /// Width of the adaptation (bottleneck) layer the method adds, if any.
    pub fn bottleneck(self) -> Option<usize> {
        self.info().bottleneck
    }
}

/// Multitask learning (runs through `crate::tasks::multitask`).
const MULTITASK: MethodInfo = MethodInfo {
    name: "multitask",
    family: Family::Task,
    summary: "Train one trunk with a head per task (from a labels CSV) on the summed losses, side by side with each task trained alone.",
    ..PLAIN_BASE
};

/// Zero-shot learning by attributes (runs through `crate::tasks::zeroshot`).
const ZERO_SHOT: MethodInfo = MethodInfo {
    name: "zero-shot",
    family: Family::Task,
    summary: "Learn to predict class attributes (from an attributes CSV) on the seen classes, then name unseen classes by the closest attribute signature.",
    ..PLAIN_BASE
};

/// Width of the adaptation layer of the feature-based and adversarial methods.
pub const DEFAULT_BOTTLENECK: usize = 256;

/// What the adaptation methods share, for their descriptors to start from
/// (`MethodInfo { name, .., ..ADAPTATION_BASE }`): they learn from the labelled source and any
/// labelled target images (`--target-labels K`), look at unlabeled target batches and add
/// an adaptation layer.
pub const ADAPTATION_BASE: MethodInfo = MethodInfo {
    name: "",
    family: Family::Feature,
    summary: "",
    labelled: LabelledData::SourceAndTarget,
    uses_unlabeled_target: true,
    bottleneck: Some(DEFAULT_BOTTLENECK),
    anneal_lr: true,
    teacher: false,
    hyperparameters: &[],
    metrics: &[],
    build: None,
};

/// What the plain methods share (no unlabeled target, no adaptation layer, no
/// hyperparameter), for their descriptors to start from.
pub const PLAIN_BASE: MethodInfo = MethodInfo {
    name: "",
    family: Family::Baseline,
    summary: "",
    labelled: LabelledData::Source,
    uses_unlabeled_target: false,
    bottleneck: None,
    anneal_lr: false,
    teacher: false,
    hyperparameters: &[],
    metrics: &[],
    build: None,
};

/// Settings shared by the methods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSettings {
    /// Weight of the adaptation loss.
    pub lambda: f64,
    /// Every hyperparameter of the method by key, defaults filled in.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, f64>,
    /// Total optimisation steps of the run (for schedules such as DANN's λ ramp).
    pub total_steps: usize,
    pub seed: u64,
    /// File of each source sample (for per-file results such as instance weights).
    #[serde(skip)]
    pub source_files: Vec<String>,
    /// The teacher's outputs on every image, for the methods that learn from one.
    #[serde(skip)]
    pub teacher: Option<std::sync::Arc<teacher::TeacherOutputs>>,
}

impl MethodSettings {
    /// The value of hyperparameter `key` (its default when it was not set).
    pub fn param(&self, key: &str) -> Option<f64> {
        self.params.get(key).copied()
    }
}

/// One training step's inputs.
pub struct TrainBatch {
    /// Labelled inputs.
    pub x: Tensor,
    /// Their labels (u32).
    pub y: Tensor,
    /// Per labelled sample: true when it is a labelled target image (the runner puts the
    /// source rows first).
    pub from_target: Vec<bool>,
    /// Per labelled sample: its index in its domain.
    pub sample_ids: Vec<usize>,
    /// An unlabeled target batch, for methods that use one.
    pub target_x: Option<Tensor>,
    /// Index in the target domain of each row of `target_x`.
    pub target_ids: Vec<usize>,
}

/// Key of the pseudo-label accuracy a self-training method's epochs carry. The method
/// never sees target labels: the runner scores its pseudo-labels against them, for
/// display only, when the target has labels.
pub const PSEUDO_ACCURACY: &str = "pseudo_accuracy";

/// The whole unlabeled target stream through the network in eval mode, given at the start
/// of each epoch to the methods that label it themselves ([`Method::labels_target`]).
pub struct TargetPass {
    /// Index in the target domain of each row.
    pub ids: Vec<usize>,
    pub out: Forward,
    /// The labelled training images through the network the same way, for the methods
    /// that ask ([`Method::needs_labelled_pass`]).
    pub labelled: Option<LabelledPass>,
}

/// Labelled training images (source first, then any labelled target) through the network
/// in eval mode: up to [`label_propagation::MAX_LABELLED`] of them, evenly spaced.
pub struct LabelledPass {
    /// The class of each row.
    pub labels: Vec<u32>,
    /// Each row's domain (true: target) and index in it.
    pub ids: Vec<(bool, usize)>,
    pub out: Forward,
}

/// A transfer method.
pub trait Method: Send {
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

    /// True when the method labels the unlabeled target itself before each epoch (the
    /// runner then passes it a [`TargetPass`] through [`Method::begin_epoch`]).
    fn labels_target(&self) -> bool {
        false
    }

    /// True when [`Method::begin_epoch`] also needs the labelled images' pass
    /// ([`TargetPass::labelled`]).
    fn needs_labelled_pass(&self) -> bool {
        false
    }

    /// Called before each epoch's first step when [`Method::labels_target`] is true.
    fn begin_epoch(&mut self, _pass: &TargetPass) -> Result<()> {
        Ok(())
    }

    /// Called once after the last epoch when [`Method::labels_target`] is true, with the
    /// trained network's pass (for a method's before/after figures).
    fn end_run(&mut self, _pass: &TargetPass) -> Result<()> {
        Ok(())
    }

    /// The pseudo-labels the method trains on this epoch, as (target index, class).
    fn pseudo_labels(&self) -> Option<&[(usize, u32)]> {
        None
    }
}

/// Build a method; its own layers (if any) are created in `net`'s variables.
pub fn build_method(
    kind: MethodKind,
    settings: &MethodSettings,
    net: &Network,
) -> Result<Box<dyn Method>> {
    match kind.info().build {
        Some(build) => build(settings, net),
        None => candle_core::bail!(
            "{} is not a domain-transfer method: it runs through transferlab::tasks",
            kind.name()
        ),
    }
}

/// The usual warm-up of an adaptation weight, 2/(1+exp(−10p))−1: 0 at the start of the run,
/// 0.76 at 20 %, 0.96 at 40 % (Ganin & Lempitsky's schedule). Early features are
/// meaningless, so aligning them at full strength only adds noise.
pub fn ramp(progress: f64) -> f64 {
    2.0 / (1.0 + (-10.0 * progress.clamp(0.0, 1.0)).exp()) - 1.0
}

/// The learning-rate annealing of the adaptation papers, 1/(1+10p)^0.75 (from 1 down to
/// 0.17). An adaptation loss keeps pushing after the source is fitted, and Adam's steps do
/// not shrink with the gradient, so without annealing the features keep moving at full
/// speed and an adversarial game never settles.
pub fn annealed_lr(progress: f64) -> f64 {
    (1.0 + 10.0 * progress.clamp(0.0, 1.0)).powf(-0.75)
}

/// A labelled batch and an unlabeled target batch, through the network in one pass.
pub struct JointForward {
    /// Class scores of the labelled rows (source first, then labelled target).
    pub logits: Tensor,
    /// Backbone features, head features (the adaptation layer's output when there is
    /// one) and class scores of the labelled source rows; `None` when the batch holds no
    /// source row.
    pub source: Option<Forward>,
    /// The same of the unlabeled target batch.
    pub target: Forward,
    /// Number of labelled source rows.
    pub n_source: usize,
}

/// Run the labelled batch and the unlabeled target batch through `net` together (one pass,
/// so batch-norm layers see both domains, as in the reference implementations), and split
/// the outputs again.
pub fn joint_forward(net: &Network, batch: &TrainBatch) -> Result<JointForward> {
    let Some(tx) = &batch.target_x else {
        candle_core::bail!("this method needs an unlabeled target batch");
    };
    let n = batch.x.dim(0)?;
    let m = tx.dim(0)?;
    let out = net.forward_t(&Tensor::cat(&[&batch.x, tx], 0)?, true)?;
    let n_source = batch.from_target.iter().filter(|t| !**t).count();
    // Rows `keep` of every output.
    let rows = |keep: &dyn Fn(&Tensor) -> Result<Tensor>| -> Result<Forward> {
        Ok(Forward {
            backbone_features: keep(&out.backbone_features)?,
            features: keep(&out.features)?,
            logits: keep(&out.logits)?,
        })
    };
    let source = if n_source == 0 {
        None
    } else if batch.from_target.iter().take(n_source).all(|t| !t) {
        Some(rows(&|t| t.narrow(0, 0, n_source))?)
    } else {
        let idx: Vec<u32> = (0..n as u32)
            .filter(|&i| !batch.from_target[i as usize])
            .collect();
        let idx = Tensor::from_vec(idx, n_source, out.logits.device())?;
        Some(rows(&|t| t.index_select(&idx, 0))?)
    };
    Ok(JointForward {
        logits: out.logits.narrow(0, 0, n)?,
        source,
        target: rows(&|t| t.narrow(0, n, m))?,
        n_source,
    })
}

/// Seeded initial values for a method's own variables (names starting with `prefix`),
/// drawn the way the network's are (He-uniform weights, zero biases, LeCun bound for
/// names in `output_prefixes`), from streams named after each variable. The network's own
/// variables, possibly loaded from `--init`, are left alone.
pub fn init_method_vars(
    net: &Network,
    prefix: &str,
    output_prefixes: &[&str],
    seed: u64,
) -> Result<()> {
    crate::model::layers::seeded_init_under(&net.varmap, prefix, seed, output_prefixes)
}

/// A running mean of scalar tensors kept on the device and read once per epoch, so that
/// recording a metric costs no transfer per batch.
#[derive(Default)]
pub struct DeviceMean {
    sum: Option<Tensor>,
    count: usize,
}

impl DeviceMean {
    /// Add one value (a scalar tensor; its graph is dropped).
    pub fn add(&mut self, value: &Tensor) -> Result<()> {
        let v = value.detach().to_dtype(DType::F32)?;
        self.sum = Some(match self.sum.take() {
            Some(s) => (s + v)?,
            None => v,
        });
        self.count += 1;
        Ok(())
    }

    /// The mean since the last call (None when nothing was added), and reset.
    pub fn take(&mut self) -> Option<f64> {
        let sum = self.sum.take()?;
        let n = std::mem::take(&mut self.count);
        let v = sum.to_scalar::<f32>().ok()? as f64;
        Some(v / n.max(1) as f64)
    }
}

/// A method's per-epoch figures: one [`DeviceMean`] per key, in the order first added.
#[derive(Default)]
pub struct EpochMeans(Vec<(&'static str, DeviceMean)>);

impl EpochMeans {
    /// Add one value (a scalar tensor) to the figure `key`.
    pub fn add(&mut self, key: &'static str, value: &Tensor) -> Result<()> {
        if let Some((_, mean)) = self.0.iter_mut().find(|(k, _)| *k == key) {
            return mean.add(value);
        }
        let mut mean = DeviceMean::default();
        mean.add(value)?;
        self.0.push((key, mean));
        Ok(())
    }

    /// Each figure's mean since the last call (those that got values), and reset.
    pub fn take(&mut self) -> Vec<(String, f64)> {
        self.0
            .iter_mut()
            .filter_map(|(k, m)| m.take().map(|v| (k.to_string(), v)))
            .collect()
    }
}

/// The most probable class of a probability row (the first on a tie), and its probability.
pub fn top_class(p: &[f32]) -> (u32, f32) {
    p.iter().enumerate().fold(
        (0, f32::MIN),
        |b, (i, &v)| if v > b.1 { (i as u32, v) } else { b },
    )
}

/// Per-sample cross-entropy of `logits` (N×C) against u32 labels `y` (N): a vector of N.
pub fn cross_entropy_per_sample(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, candle_core::D::Minus1)?;
    logp.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?.neg()
}
