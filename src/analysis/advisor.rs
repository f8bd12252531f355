//! The transfer advisor: from the amount of labelled target data and how similar
//! the domains are, which of the four fine-tuning cases applies and what to do
//! (what to freeze, which method); and, after runs, which transfers did worse than
//! not transferring (negative transfer).
//!
//! The four cases (DESIGN.md):
//! - (a) small target, similar domains → keep the backbone frozen and train a
//!   linear classifier on its features (a linear probe);
//! - (b) large target, similar domains → fine-tune everything;
//! - (c) small target, different domains → only the early (generic) stages
//!   transfer: freeze them and retrain the rest; with few or no target labels,
//!   adapt without labels (DAN, whatever the shift size; see below);
//! - (d) large target, different domains → fine-tune everything (or retrain).
//!
//! Thresholds, and why:
//! - *small* = fewer than 100 labelled target images per class. Around that size,
//!   fine-tuning a whole deep network overfits while a linear classifier on fixed
//!   features does not (the usual rule of thumb from the fine-tuning literature).
//! - *few labels* = fewer than 10 per class: too few to fine-tune even the upper
//!   stages reliably, so an unsupervised adaptation method is recommended.
//! - *similar* = proxy A-distance below 1.0, i.e. a linear domain classifier still
//!   errs on more than 25 % of the samples (balanced); or an MMD permutation test
//!   that finds no significant difference (p ≥ 0.05).
//! - *large shift* = A-distance of 1.5 or more (the domain classifier errs on less
//!   than 12.5 %): the domains are nearly separable. DAN is still recommended there:
//!   on `bench-methods`' four digit shifts (docs/methods.md) it gained +15.5 points
//!   over source-only on average (+0.0 to +48.5) against DANN's +7.0 (+0.5 to +14.0),
//!   with a smaller seed-to-seed spread (mean standard deviation 2.0 against 3.3
//!   points); DANN was ahead only on mnist-m (+3.8 against +0.0). The reason names
//!   the shift size.
//! - with a pretrained network as the starting point (EfficientNet-Lite0's ImageNet
//!   weights), the notes' cases are read literally: *small* = fewer than 100 labelled
//!   images per class to train on, *similar* = the target's ImageNet distance (1 − the
//!   mean top-1 probability the network's own ImageNet classifier gives the target's
//!   images, `train::imagenet_distance`) below `SIMILAR_IMAGENET_DISTANCE`; (a) → frozen features
//!   and a linear classifier, (b) → fine-tune all, (c) → features of the early stages only
//!   (freeze them, retrain the rest), (d) → fine-tune all. The threshold, 0.6 (a mean
//!   top-1 probability above 0.4), sits between what was measured on CC0 photos at 224 px
//!   (0.33–0.48) and on Fashion-MNIST (0.71), MNIST-M and digits (0.78)
//!   (docs/pretrained.md).
//! - negative transfer = a run more than 1 percentage point (0.01 accuracy) below
//!   its baseline, which keeps run-to-run noise from raising warnings.

use serde::{Deserialize, Serialize};

/// Fewer labelled target samples per class than this is a "small" target.
pub const SMALL_TARGET_PER_CLASS: usize = 100;
/// Fewer labelled target samples per class than this calls for unsupervised adaptation.
pub const FEW_LABELS_PER_CLASS: usize = 10;
/// A-distance below this means similar domains.
pub const SIMILAR_A_DISTANCE: f64 = 1.0;
/// A-distance at or above this is a large shift.
pub const LARGE_SHIFT_A_DISTANCE: f64 = 1.5;
/// MMD p-values at or above this mean "no detectable difference".
pub const MMD_SIGNIFICANCE: f64 = 0.05;
/// ImageNet distance (nats per channel) below which a target is similar to ImageNet.
pub const SIMILAR_IMAGENET_DISTANCE: f64 = 0.6;
/// Accuracy shortfall (as a fraction) tolerated before flagging negative transfer.
pub const NEGATIVE_TRANSFER_TOLERANCE: f64 = 0.01;

/// The fine-tuning cases of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FineTuneCase {
    /// Small target, similar domains.
    A,
    /// Large target, similar domains.
    B,
    /// Small target, different domains.
    C,
    /// Large target, different domains.
    D,
}

impl FineTuneCase {
    /// A short title, e.g. "small target, similar domains".
    pub fn title(self) -> &'static str {
        match self {
            Self::A => "small target, similar domains",
            Self::B => "large target, similar domains",
            Self::C => "small target, different domains",
            Self::D => "large target, different domains",
        }
    }

    /// The case of a small or large target, similar to ImageNet or not.
    pub fn of(small: bool, similar: bool) -> Self {
        match (small, similar) {
            (true, true) => Self::A,
            (false, true) => Self::B,
            (true, false) => Self::C,
            (false, false) => Self::D,
        }
    }

    /// How much of the pretrained backbone to freeze.
    pub fn freeze(self) -> FreezeAdvice {
        match self {
            Self::A => FreezeAdvice::All,
            Self::C => FreezeAdvice::Early,
            Self::B | Self::D => FreezeAdvice::None,
        }
    }

    /// What to do, and why, for the pretrained network `model`.
    pub fn advice(self, model: &str) -> String {
        let text = match self {
            Self::A => {
                "keep every stage of {model} frozen and train a linear classifier on its features: they already describe such images, and a few labels cannot fine-tune millions of weights without overfitting"
            }
            Self::B => {
                "fine-tune all of {model}, starting from its ImageNet weights: there are enough labels to adjust every stage"
            }
            Self::C => {
                "use the features of {model}'s early stages only (edges, textures: generic), frozen, and retrain the later stages, which are specific to ImageNet's classes"
            }
            Self::D => {
                "fine-tune all of {model}: there are enough labels to move every stage away from ImageNet, and its weights are still a better start than random ones"
            }
        };
        text.replace("{model}", model)
    }
}

/// How much of the backbone to freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezeAdvice {
    /// Every backbone stage: a frozen feature extractor plus a new classifier.
    All,
    /// The early stages only; the later ones are retrained.
    Early,
    /// Nothing: fine-tune everything.
    None,
}

impl FreezeAdvice {
    /// How this advice reads to a user.
    pub fn description(self) -> &'static str {
        match self {
            Self::All => "all backbone stages (linear probe)",
            Self::Early => "early stages only (retrain the later stages and the head)",
            Self::None => "none (fine-tune everything)",
        }
    }

    /// The freezing depth for a backbone of `stages` stages: all of them, none, or
    /// the first half (at least one, never all).
    pub fn stages(self, stages: usize) -> usize {
        match self {
            Self::All => stages,
            Self::None => 0,
            Self::Early => (stages / 2).max(1).min(stages.saturating_sub(1)),
        }
    }
}

/// The transfer methods the workbench knows, by their command-line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMethod {
    /// Start from the source model and train on target labels.
    FineTune,
    /// Use the source model as it is.
    SourceOnly,
    /// Deep adaptation network (multi-kernel MMD).
    Dan,
    /// Deep domain confusion (MMD on an adaptation layer).
    Ddc,
    /// Deep CORAL (covariance alignment).
    Coral,
    /// Domain-adversarial training.
    Dann,
    /// Source samples re-weighted by how target-like they are.
    InstanceWeighting,
    /// Source labels spread to the target over a nearest-neighbour graph.
    LabelPropagation,
    /// Train on the target alone (the no-transfer baseline).
    TargetOnly,
}

impl TransferMethod {
    /// All methods.
    pub const ALL: [TransferMethod; 9] = [
        Self::FineTune,
        Self::SourceOnly,
        Self::Dan,
        Self::Ddc,
        Self::Coral,
        Self::Dann,
        Self::InstanceWeighting,
        Self::LabelPropagation,
        Self::TargetOnly,
    ];

    /// The method's name, e.g. "fine-tune".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FineTune => "fine-tune",
            Self::SourceOnly => "source-only",
            Self::Dan => "dan",
            Self::Ddc => "ddc",
            Self::Coral => "coral",
            Self::Dann => "dann",
            Self::InstanceWeighting => "instance-weighting",
            Self::LabelPropagation => "label-propagation",
            Self::TargetOnly => "target-only",
        }
    }

    /// Parses a name, ignoring case and accepting `_` or spaces for `-`.
    pub fn parse(name: &str) -> Option<Self> {
        let norm: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '_' | ' ' => '-',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Self::ALL.into_iter().find(|m| m.as_str() == norm)
    }
}

/// The numbers the advisor compared against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Fewer labelled target samples per class than this is "small".
    pub small_target_per_class: usize,
    /// Fewer than this per class calls for unsupervised adaptation.
    pub few_labels_per_class: usize,
    /// A-distance below this is "similar".
    pub similar_a_distance: f64,
    /// A-distance at or above this is a "large shift".
    pub large_shift_a_distance: f64,
    /// MMD p-value at or above this is "no detectable difference".
    pub mmd_significance: f64,
    /// ImageNet distance below this is "similar to what the pretrained model saw".
    #[serde(default = "similar_imagenet_distance")]
    pub similar_imagenet_distance: f64,
}

fn similar_imagenet_distance() -> f64 {
    SIMILAR_IMAGENET_DISTANCE
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            small_target_per_class: SMALL_TARGET_PER_CLASS,
            few_labels_per_class: FEW_LABELS_PER_CLASS,
            similar_a_distance: SIMILAR_A_DISTANCE,
            large_shift_a_distance: LARGE_SHIFT_A_DISTANCE,
            mmd_significance: MMD_SIGNIFICANCE,
            similar_imagenet_distance: SIMILAR_IMAGENET_DISTANCE,
        }
    }
}

/// What the advisor recommends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    /// Which fine-tuning case applies.
    pub case: FineTuneCase,
    /// The case in words.
    pub case_title: String,
    /// The method to try first.
    pub recommended_method: TransferMethod,
    /// What to freeze, in words.
    pub recommended_freeze: String,
    /// What to freeze, for mapping to a depth (`FreezeAdvice::stages`).
    pub freeze: FreezeAdvice,
    /// Why, in one sentence.
    pub reason: String,
    /// The numbers compared against.
    pub thresholds: Thresholds,
    /// Whether the target counted as small.
    pub small_target: bool,
    /// Whether the domains counted as similar.
    pub similar_domains: bool,
    /// With a pretrained starting point: the target's ImageNet distance that decided
    /// "similar" (absent when the advice compared source and target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imagenet_distance: Option<f64>,
}

/// Advises how to transfer given `labelled_target_per_class` labelled target
/// samples per class (0 when the target is unlabelled), the number of classes, and
/// the measured A-distance and MMD p-value; see the module docs for the rules.
pub fn advise(
    labelled_target_per_class: usize,
    n_classes: usize,
    a_distance: f64,
    mmd_p_value: f64,
) -> Advice {
    let t = Thresholds::default();
    let per_class = if n_classes == 0 {
        0
    } else {
        labelled_target_per_class
    };
    let small = per_class < t.small_target_per_class;
    let few = per_class < t.few_labels_per_class;
    // NaN measurements (not computed) count as "different": the cautious side.
    let similar = a_distance < t.similar_a_distance || mmd_p_value >= t.mmd_significance;
    let large_shift = a_distance.is_nan() || a_distance >= t.large_shift_a_distance;

    let labels = match per_class {
        0 => "no labelled target images".to_string(),
        1 => "1 labelled target image per class".to_string(),
        n => format!("{n} labelled target images per class"),
    };
    let measured = format!("A-distance {a_distance:.2}, MMD p = {mmd_p_value:.3}");
    let (case, method, freeze, reason) = match (small, similar) {
        (true, true) if per_class == 0 => (
            FineTuneCase::A,
            TransferMethod::SourceOnly,
            FreezeAdvice::All,
            format!(
                "The domains are similar ({measured}) and the target has no labels, so the source model should work on the target as it is."
            ),
        ),
        (true, true) => (
            FineTuneCase::A,
            TransferMethod::FineTune,
            FreezeAdvice::All,
            format!(
                "The domains are similar ({measured}) but with {labels} a fine-tuned deep network would overfit, so keep the backbone frozen and train only a linear classifier on its features."
            ),
        ),
        (false, true) => (
            FineTuneCase::B,
            TransferMethod::FineTune,
            FreezeAdvice::None,
            format!(
                "The domains are similar ({measured}) and with {labels} every stage can be fine-tuned without overfitting, starting from the source weights."
            ),
        ),
        (true, false) if few => {
            let method = TransferMethod::LabelPropagation;
            let why = if large_shift {
                "the shift is large, and spreading the source labels over a nearest-neighbour graph of both domains (label propagation) gained the most of every method over the five digit shifts we measured (+21.1 points on average, against +13.6 for DAN and +18.5 for SHOT), and was above training on the source alone on every one of them"
            } else {
                "the shift is moderate, and spreading the source labels over a nearest-neighbour graph of both domains (label propagation) gained the most of every method over the digit shifts we measured, above training on the source alone on every one of them"
            };
            (
                FineTuneCase::C,
                method,
                FreezeAdvice::Early,
                format!(
                    "The domains differ ({measured}) and with {labels} there is too little to retrain on, so keep the early, generic stages frozen and adapt the rest without labels: {why}."
                ),
            )
        }
        (true, false) => (
            FineTuneCase::C,
            TransferMethod::FineTune,
            FreezeAdvice::Early,
            format!(
                "The domains differ ({measured}), so only the early, generic stages are likely to transfer, and with {labels} there is too little to retrain everything: freeze the early stages and fine-tune the rest."
            ),
        ),
        (false, false) => (
            FineTuneCase::D,
            TransferMethod::FineTune,
            FreezeAdvice::None,
            format!(
                "The domains differ ({measured}) but with {labels} every stage can be fine-tuned (or even retrained from scratch), with the source weights as a starting point."
            ),
        ),
    };
    let recommended_freeze = if case == FineTuneCase::D {
        "none (fine-tune everything, or retrain from scratch)".to_string()
    } else {
        freeze.description().to_string()
    };
    Advice {
        case,
        case_title: case.title().to_string(),
        recommended_method: method,
        recommended_freeze,
        freeze,
        reason,
        thresholds: t,
        small_target: small,
        similar_domains: similar,
        imagenet_distance: None,
    }
}

/// Advises how to fine-tune a network pretrained on ImageNet (`model` names it) for a
/// dataset with `labelled_per_class` labelled images per class to train on, whose target
/// is `imagenet_distance` from ImageNet: the notes' four cases, literally.
pub fn advise_pretrained(labelled_per_class: usize, imagenet_distance: f64, model: &str) -> Advice {
    let t = Thresholds::default();
    let small = labelled_per_class < t.small_target_per_class;
    // NaN (not measured) counts as different: the cautious side.
    let similar = imagenet_distance < t.similar_imagenet_distance;
    let size = format!(
        "{} dataset ({labelled_per_class} labelled image(s) per class, {} {})",
        if small { "a small" } else { "a large" },
        if small { "fewer than" } else { "at least" },
        t.small_target_per_class
    );
    let likeness = format!(
        "{} ImageNet (distance {imagenet_distance:.2}, {} {:.2})",
        if similar {
            "similar to"
        } else {
            "different from"
        },
        if similar { "below" } else { "not below" },
        t.similar_imagenet_distance
    );
    let case = FineTuneCase::of(small, similar);
    let (freeze, what) = (case.freeze(), case.advice(model));
    let letter = format!("{case:?}").to_lowercase();
    Advice {
        case,
        case_title: format!(
            "{} dataset, {} ImageNet",
            if small { "small" } else { "large" },
            if similar {
                "similar to"
            } else {
                "different from"
            }
        ),
        recommended_method: TransferMethod::FineTune,
        recommended_freeze: freeze.description().to_string(),
        freeze,
        reason: format!(
            "Case ({letter}) of fine-tuning a pretrained network: {size}, {likeness}, so {what}."
        ),
        thresholds: t,
        small_target: small,
        similar_domains: similar,
        imagenet_distance: Some(imagenet_distance),
    }
}

/// The outcome of one training run, as the negative-transfer check needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The run's name, as the user knows it.
    pub label: String,
    /// The method's name (see `TransferMethod::as_str`).
    pub method: String,
    /// Accuracy on the target test set, as a fraction in [0, 1].
    pub target_accuracy: f64,
    /// Whether the run trained on target labels.
    pub used_target_labels: bool,
    /// True when `target_accuracy` is an estimate made without target labels (an
    /// unlabeled target), not a measurement.
    pub estimated: bool,
}

/// A transfer run that did worse than not transferring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegativeTransferWarning {
    /// The run's name.
    pub label: String,
    /// The run's method.
    pub method: String,
    /// The run's target accuracy.
    pub target_accuracy: f64,
    /// The baseline run it was compared with.
    pub baseline_label: String,
    /// The baseline's method ("target-only" or "source-only").
    pub baseline_method: String,
    /// The baseline's target accuracy.
    pub baseline_accuracy: f64,
    /// How far below the baseline the run is (a fraction).
    pub shortfall: f64,
    /// The warning in one sentence.
    pub message: String,
}

/// Flags runs that transferred negatively: a run that used target labels and ended
/// more than `NEGATIVE_TRANSFER_TOLERANCE` below the best target-only run, or a run
/// without target labels that ended that far below the best source-only run.
/// Baseline runs themselves, and runs without a baseline to compare with, are not
/// flagged.
pub fn negative_transfer(runs: &[RunOutcome]) -> Vec<NegativeTransferWarning> {
    let best = |method: TransferMethod| {
        runs.iter()
            .filter(|r| TransferMethod::parse(&r.method) == Some(method))
            .filter(|r| r.target_accuracy.is_finite())
            .max_by(|a, b| a.target_accuracy.total_cmp(&b.target_accuracy))
    };
    let target_only = best(TransferMethod::TargetOnly);
    let source_only = best(TransferMethod::SourceOnly);
    runs.iter()
        .filter_map(|run| {
            let method = TransferMethod::parse(&run.method);
            if matches!(
                method,
                Some(TransferMethod::TargetOnly | TransferMethod::SourceOnly)
            ) {
                return None;
            }
            let baseline = if run.used_target_labels {
                target_only?
            } else {
                source_only?
            };
            let shortfall = baseline.target_accuracy - run.target_accuracy;
            if shortfall.is_nan() || shortfall <= NEGATIVE_TRANSFER_TOLERANCE {
                return None;
            }
            let what = if run.used_target_labels {
                "training on the target alone"
            } else {
                "using the source model without adaptation"
            };
            let evidence = if run.estimated || baseline.estimated {
                " These accuracies are estimated without target labels (ATC on the held-out source): a warning sign, not a measurement."
            } else {
                ""
            };
            let message = format!(
                "Negative transfer: '{}' ({}) reached {:.1}% target accuracy, {:.1} points below '{}' ({}, {:.1}%), so {} did better than this transfer.{evidence}",
                run.label,
                run.method,
                100.0 * run.target_accuracy,
                100.0 * shortfall,
                baseline.label,
                baseline.method,
                100.0 * baseline.target_accuracy,
                what
            );
            Some(NegativeTransferWarning {
                label: run.label.clone(),
                method: run.method.clone(),
                target_accuracy: run.target_accuracy,
                baseline_label: baseline.label.clone(),
                baseline_method: baseline.method.clone(),
                baseline_accuracy: baseline.target_accuracy,
                shortfall,
                message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_case_is_reachable() {
        let a = advise(20, 10, 0.4, 0.3);
        assert_eq!(
            (a.case, a.recommended_method, a.freeze),
            (FineTuneCase::A, TransferMethod::FineTune, FreezeAdvice::All)
        );
        assert_eq!(a.case_title, "small target, similar domains");
        assert_eq!(a.recommended_freeze, "all backbone stages (linear probe)");

        let b = advise(500, 10, 0.6, 0.001);
        assert_eq!((b.case, b.freeze), (FineTuneCase::B, FreezeAdvice::None));

        for (labelled, a_distance, case, freeze) in [
            (50, 1.4, FineTuneCase::C, FreezeAdvice::Early),
            (1000, 1.9, FineTuneCase::D, FreezeAdvice::None),
        ] {
            let a = advise(labelled, 10, a_distance, 0.001);
            let expected = (case, TransferMethod::FineTune, freeze);
            assert_eq!((a.case, a.recommended_method, a.freeze), expected);
        }
        let d = advise(1000, 10, 1.9, 0.001);
        assert!(d.recommended_freeze.contains("retrain"));
    }

    #[test]
    fn unlabelled_targets_get_unsupervised_methods() {
        assert_eq!(
            advise(0, 10, 1.8, 0.001).recommended_method,
            TransferMethod::LabelPropagation
        );
        assert_eq!(
            advise(3, 10, 1.2, 0.001).recommended_method,
            TransferMethod::LabelPropagation
        );
        assert_eq!(
            advise(0, 10, 0.3, 0.5).recommended_method,
            TransferMethod::SourceOnly
        );
        // An insignificant MMD counts as similar even when the A-distance is noisy.
        assert!(advise(0, 10, 1.2, 0.4).similar_domains);
    }

    #[test]
    fn advice_serialises_with_the_documented_keys() {
        let json = serde_json::to_value(advise(0, 5, 1.7, 0.002)).unwrap();
        assert_eq!(json["case"], "c");
        assert_eq!(json["recommended_method"], "label-propagation");
        assert_eq!(json["freeze"], "early");
        assert_eq!(json["thresholds"]["similar_a_distance"], 1.0);
        for key in ["case_title", "recommended_freeze", "reason"] {
            assert!(json[key].as_str().is_some_and(|s| !s.is_empty()));
        }
    }

    #[test]
    fn a_pretrained_start_reads_the_four_cases_from_size_and_imagenet_distance() {
        let cases: Vec<(FineTuneCase, FreezeAdvice)> =
            [(10, 0.1), (500, 0.1), (10, 3.0), (500, 3.0)]
                .iter()
                .map(|&(n, d)| {
                    let a = advise_pretrained(n, d, "efficientnet-lite0");
                    assert_eq!(a.recommended_method, TransferMethod::FineTune);
                    assert_eq!(a.imagenet_distance, Some(d));
                    (a.case, a.freeze)
                })
                .collect();
        assert_eq!(
            cases,
            [
                (FineTuneCase::A, FreezeAdvice::All),
                (FineTuneCase::B, FreezeAdvice::None),
                (FineTuneCase::C, FreezeAdvice::Early),
                (FineTuneCase::D, FreezeAdvice::None),
            ]
        );
        let c = advise_pretrained(10, 3.0, "efficientnet-lite0");
        assert!(c.reason.starts_with("Case (c)"), "{}", c.reason);
        assert!(c.reason.contains("early stages"), "{}", c.reason);
        assert_eq!(c.case_title, "small dataset, different from ImageNet");
        // Not measured counts as different.
        assert_eq!(advise_pretrained(10, f64::NAN, "m").case, FineTuneCase::C);
    }

    #[test]
    fn freeze_advice_maps_to_stage_counts() {
        assert_eq!(FreezeAdvice::All.stages(4), 4);
        assert_eq!(FreezeAdvice::None.stages(4), 0);
        assert_eq!(FreezeAdvice::Early.stages(4), 2);
        assert_eq!(FreezeAdvice::Early.stages(2), 1);
        assert_eq!(FreezeAdvice::Early.stages(1), 0);
    }

    #[test]
    fn method_names_round_trip() {
        for m in TransferMethod::ALL {
            assert_eq!(TransferMethod::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        assert_eq!(
            TransferMethod::parse("Target_Only"),
            Some(TransferMethod::TargetOnly)
        );
        assert_eq!(TransferMethod::parse("resnet"), None);
    }

    fn run(label: &str, method: &str, acc: f64, labels: bool) -> RunOutcome {
        RunOutcome {
            label: label.to_string(),
            method: method.to_string(),
            target_accuracy: acc,
            used_target_labels: labels,
            estimated: false,
        }
    }

    #[test]
    fn negative_transfer_is_flagged() {
        let runs = [
            run("scratch", "target-only", 0.80, true),
            run("source", "source-only", 0.60, false),
            run("ft", "fine-tune", 0.72, true),
            run("dann", "dann", 0.55, false),
        ];
        let warnings = negative_transfer(&runs);
        assert_eq!(warnings.len(), 2);
        assert_eq!(warnings[0].label, "ft");
        assert_eq!(warnings[0].baseline_label, "scratch");
        assert!((warnings[0].shortfall - 0.08).abs() < 1e-12);
        assert!(warnings[0].message.contains("training on the target alone"));
        assert_eq!(warnings[1].baseline_method, "source-only");
    }

    #[test]
    fn helpful_or_unmatched_transfer_is_not_flagged() {
        let runs = [
            run("scratch", "target-only", 0.80, true),
            run("ft", "fine-tune", 0.85, true),
            // Within the 1-point tolerance.
            run("ft2", "fine-tune", 0.795, true),
            // No source-only baseline to compare an unsupervised run with.
            run("dan", "dan", 0.30, false),
        ];
        assert!(negative_transfer(&runs).is_empty());
        assert!(negative_transfer(&[]).is_empty());
    }
}
