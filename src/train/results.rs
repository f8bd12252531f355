//! The typed parts of a run's report beyond its loss and accuracies: which phase an epoch
//! belongs to, a multitask epoch's per-task figures, the descriptors of the figures a run
//! records (name, unit, direction, chance level), and each kind of run's extra results.
//! The CLI, the app's curves and tables, and the exports read these types; nothing parses
//! results back out of JSON by key.

pub use crate::metric::{Metric, SOURCE_ACCURACY, TARGET_ACCURACY, Unit, describe};
use serde::{Deserialize, Serialize};

/// Which part of a run an epoch belongs to (ordinary runs have none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Hop `n` (1-based) of a stepping-stone path.
    Hop(usize),
    /// Direct transfer on the same epoch budget, run after the hops for comparison.
    Direct,
}

impl Phase {
    /// "hop 2", "direct".
    pub fn describe(self) -> String {
        match self {
            Phase::Hop(n) => format!("hop {n}"),
            Phase::Direct => "direct".into(),
        }
    }
}

/// One task's held-out accuracy after an epoch of a multitask run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskAccuracy {
    pub task: String,
    /// The joint network's head for this task.
    pub joint: Option<f64>,
    /// The same trunk trained on this task alone.
    pub alone: Option<f64>,
}

/// Results of a kind of run beyond its history, by kind (`"kind"` in the JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunExtra {
    Multitask(MultitaskResults),
    ZeroShot(ZeroShotResults),
    SteppingStones(SteppingResults),
    /// A transfer method's own results (e.g. instance weighting's per-file weights), as
    /// the method wrote them.
    #[serde(untagged)]
    Method(serde_json::Value),
}

/// A multitask run: each task trained jointly against alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultitaskResults {
    pub tasks: Vec<TaskOutcome>,
    /// Mean over the tasks of the joint accuracies.
    pub joint_mean: Option<f64>,
    pub alone_mean: Option<f64>,
}

/// One task of a multitask run, at its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub name: String,
    pub classes: Vec<String>,
    pub weight: f64,
    /// Held-out accuracy of the joint network's head for this task.
    pub joint_accuracy: Option<f64>,
    /// Held-out accuracy of the same trunk trained on this task alone.
    pub alone_accuracy: Option<f64>,
    pub labelled_train: usize,
    pub labelled_eval: usize,
}

/// A zero-shot run: classes named by attributes, some never seen in training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZeroShotResults {
    pub attributes: Vec<String>,
    pub classes: Vec<String>,
    /// Each class's attribute row, in `classes` order.
    pub signatures: Vec<Vec<f32>>,
    pub seen: Vec<String>,
    pub unseen: Vec<String>,
    /// Accuracy of a guess among the unseen classes.
    pub chance: f64,
    /// Held-out images of seen classes, named among the seen classes.
    pub seen_accuracy: Option<f64>,
    /// Images of unseen classes, named among the unseen classes.
    pub unseen_accuracy: Option<f64>,
    /// Generalised zero-shot: unseen images named among all classes.
    pub unseen_accuracy_all_classes: Option<f64>,
    pub attribute_accuracy: Vec<AttributeAccuracy>,
    pub unseen_class_accuracy: Vec<ClassAccuracy>,
    pub predictions: Vec<ZeroShotPrediction>,
}

/// How often an attribute's predicted side is right on unseen images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeAccuracy {
    pub attribute: String,
    pub accuracy: f64,
}

/// An unseen class's accuracy over its images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    pub class: String,
    pub accuracy: f64,
    pub images: usize,
}

/// One evaluated image of a zero-shot run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZeroShotPrediction {
    pub file: String,
    pub class: String,
    pub predicted: String,
    pub unseen: bool,
    /// Predicted probability of each attribute.
    pub attributes: Vec<f32>,
}

/// A stepping-stone run: the hops, and direct transfer on the same budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteppingResults {
    pub hops: Vec<HopOutcome>,
    /// Share of each intermediate domain kept as pseudo-labels (the most confident).
    pub pseudo_keep: f64,
    pub stepping_target_accuracy: Option<f64>,
    pub direct_target_accuracy: Option<f64>,
    pub direct_epochs: usize,
    /// Stepping minus direct target accuracy.
    pub gain: Option<f64>,
    /// The direct run's epochs (the app also shows them live, as phase `direct`).
    pub direct_history: Option<Vec<super::EpochRecord>>,
    /// The method's own results from the last hop.
    pub method_extra: Option<serde_json::Value>,
}

/// One hop of a stepping-stone path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HopOutcome {
    pub from: String,
    pub to: String,
    pub epochs: usize,
    /// Accuracy on the hop's destination (when it has labels).
    pub accuracy: Option<f64>,
    /// Pseudo-labelled images handed to the next hop (None for the last hop).
    pub pseudo_labels: Option<usize>,
    /// Accuracy of those pseudo-labels (when the domain has true labels).
    pub pseudo_label_accuracy: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_keep_their_kind_and_a_method_extra_stays_as_written() {
        let m = RunExtra::Multitask(MultitaskResults {
            tasks: vec![],
            joint_mean: Some(0.5),
            alone_mean: None,
        });
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["kind"], "multitask");
        assert_eq!(serde_json::from_value::<RunExtra>(v).unwrap(), m);
        let raw = serde_json::json!({"instance_weights": [{"file": "a.png", "weight": 1.5}]});
        let back: RunExtra = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(back, RunExtra::Method(raw.clone()));
        assert_eq!(serde_json::to_value(&back).unwrap(), raw);
    }

    #[test]
    fn phases_read_as_words() {
        assert_eq!(
            serde_json::to_value(Phase::Hop(2)).unwrap(),
            serde_json::json!({"hop": 2})
        );
        assert_eq!(serde_json::to_value(Phase::Direct).unwrap(), "direct");
        assert_eq!(Phase::Hop(2).describe(), "hop 2");
    }
}
