//! What a method declares about itself, so the CLI, the app's method list and settings
//! panel, validation and the advisor all read one place: its family and summary, the data
//! it needs, the adaptation layer it adds, its hyperparameters, and how to build it.

use super::{Family, LabelledData, Method, MethodSettings};
use crate::metric::Metric;
use crate::model::Network;

/// A method's tunable number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyperparameter {
    /// Key in reports and in `--param KEY=VALUE`.
    pub key: &'static str,
    /// Its own command-line flag, if it has one (λ has `--lambda`).
    pub flag: Option<&'static str>,
    /// Name in the app's settings panel.
    pub label: &'static str,
    /// One sentence: what it changes.
    pub help: &'static str,
    pub default: f64,
    /// Valid range, both ends included.
    pub min: f64,
    pub max: f64,
    /// Whether the app's control steps on a log scale.
    pub logarithmic: bool,
    /// An on/off setting (0 or 1), a checkbox in the app.
    pub switch: bool,
}

impl Hyperparameter {
    /// A hyperparameter set with `--param KEY=VALUE`, stepped linearly in the app.
    pub const fn new(
        key: &'static str,
        label: &'static str,
        help: &'static str,
        default: f64,
        (min, max): (f64, f64),
    ) -> Self {
        Self {
            key,
            flag: None,
            label,
            help,
            default,
            min,
            max,
            logarithmic: false,
            switch: false,
        }
    }

    /// An on/off setting (0 = off, 1 = on), a checkbox in the app.
    pub const fn switch(
        key: &'static str,
        label: &'static str,
        help: &'static str,
        on: bool,
    ) -> Self {
        let mut h = Self::new(key, label, help, if on { 1.0 } else { 0.0 }, (0.0, 1.0));
        h.switch = true;
        h
    }

    /// The same, stepped on a log scale in the app.
    pub const fn logarithmic(mut self) -> Self {
        self.logarithmic = true;
        self
    }

    /// The weight of a method's adaptation term (`--lambda`), with its default.
    pub const fn lambda(default: f64) -> Self {
        let mut h = Self::new(
            "lambda",
            "λ (adaptation weight)",
            "Weight of the adaptation term against the classification loss.",
            default,
            (1e-4, 1e4),
        )
        .logarithmic();
        h.flag = Some("--lambda");
        h
    }

    /// The same with another name and help in the app (what λ weighs, for one method).
    pub const fn labelled(mut self, label: &'static str, help: &'static str) -> Self {
        self.label = label;
        self.help = help;
        self
    }

    /// Check a value; the error says the range.
    pub fn check(&self, value: f64) -> Result<(), String> {
        if value.is_finite() && (self.min..=self.max).contains(&value) {
            Ok(())
        } else if self.min > 0.0 && (value.is_nan() || value <= 0.0) {
            Err(format!("must be a positive number, got {value}"))
        } else {
            Err(format!(
                "must be between {} and {}, got {value}",
                self.min, self.max
            ))
        }
    }
}

/// Builds a method; its own layers (if any) are created in the network's variables.
pub type BuildMethod = fn(&MethodSettings, &Network) -> candle_core::Result<Box<dyn Method>>;

/// Everything the program knows about a method.
#[derive(Clone, Copy)]
pub struct MethodInfo {
    /// Command-line name.
    pub name: &'static str,
    pub family: Family,
    /// One sentence saying what the method does.
    pub summary: &'static str,
    /// The labelled images it learns from.
    pub labelled: LabelledData,
    /// Whether it also looks at unlabeled target batches.
    pub uses_unlabeled_target: bool,
    /// Width of the adaptation layer it adds between backbone and head, if any.
    pub bottleneck: Option<usize>,
    /// Whether it learns from a teacher model (`--teacher`).
    pub teacher: bool,
    /// Whether the learning rate follows [`super::annealed_lr`] over the run.
    pub anneal_lr: bool,
    pub hyperparameters: &'static [Hyperparameter],
    /// The figures it records each epoch (`history[].metrics`).
    pub metrics: &'static [Metric],
    /// None for the methods that run through `crate::tasks` (multitask, zero-shot).
    pub build: Option<BuildMethod>,
}

impl MethodInfo {
    /// The hyperparameter named `key`.
    pub fn hyperparameter(&self, key: &str) -> Option<&'static Hyperparameter> {
        self.hyperparameters.iter().find(|h| h.key == key)
    }
}
