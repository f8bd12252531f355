//! What a recorded figure is: its key, its name for people, its unit, which way is better
//! and its chance level. Methods declare the figures they record in their descriptor, runs
//! add their own; the CLI, the app's curves and the exports read them. A leaf module: it
//! imports nothing from the crate, so every layer can use it.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// How a figure is measured, and so how it is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// 0..1, shown as a percentage.
    Fraction,
    /// A cross-entropy in nats.
    Nats,
    /// A plain number (a distance, a weight).
    Plain,
}

/// What a recorded figure is: the key it has in `history[].metrics` (or
/// `source_accuracy` / `target_accuracy`), its name for people, its unit, which way is
/// better, and its chance level if it has one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: Cow<'static, str>,
    pub label: Cow<'static, str>,
    pub unit: Unit,
    /// None when neither direction is better in itself (a domain classifier's accuracy).
    pub higher_is_better: Option<bool>,
    /// The value a guess would get (an accuracy among k classes: 1/k).
    pub chance: Option<f64>,
}

/// Key of the source (held-out) accuracy among a run's metric descriptors.
pub const SOURCE_ACCURACY: &str = "source_accuracy";
/// Key of the target accuracy among a run's metric descriptors.
pub const TARGET_ACCURACY: &str = "target_accuracy";

impl Metric {
    /// A figure of `unit` with no preferred direction and no chance level.
    pub const fn new(key: &'static str, label: &'static str, unit: Unit) -> Self {
        Self {
            key: Cow::Borrowed(key),
            label: Cow::Borrowed(label),
            unit,
            higher_is_better: None,
            chance: None,
        }
    }

    /// An accuracy (higher is better).
    pub const fn accuracy(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, Unit::Fraction).higher_is_better(true)
    }

    pub const fn higher_is_better(mut self, higher: bool) -> Self {
        self.higher_is_better = Some(higher);
        self
    }

    pub const fn with_chance(mut self, chance: f64) -> Self {
        self.chance = Some(chance);
        self
    }

    /// The same figure under another name.
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = Cow::Owned(label.into());
        self
    }

    /// The accuracies every run records, under their usual names.
    pub fn standard() -> Vec<Metric> {
        vec![
            Self::accuracy(SOURCE_ACCURACY, "source accuracy"),
            Self::accuracy(TARGET_ACCURACY, "target accuracy"),
        ]
    }

    /// A value as people read it: a percentage for fractions, four decimals otherwise.
    pub fn format(&self, value: f64) -> String {
        match self.unit {
            Unit::Fraction => format!("{:.1}%", value * 100.0),
            Unit::Nats | Unit::Plain => format!("{value:.4}"),
        }
    }
}

/// The descriptor of `key` among `metrics`, or a plain one named by its key when the run
/// did not describe it (a report from an older version).
pub fn describe(metrics: &[Metric], key: &str) -> Metric {
    metrics
        .iter()
        .find(|m| m.key == key)
        .cloned()
        .unwrap_or_else(|| Metric {
            key: Cow::Owned(key.to_string()),
            label: Cow::Owned(key.to_string()),
            unit: Unit::Plain,
            higher_is_better: None,
            chance: None,
        })
}

/// `key value` pairs of a map of figures, each value with `digits` decimals, for one line
/// of text (the CLI's progress lines, the app's hover texts).
pub fn key_values(
    figures: &std::collections::BTreeMap<String, f64>,
    digits: usize,
    separator: &str,
) -> String {
    figures
        .iter()
        .map(|(k, v)| format!("{k} {v:.digits$}"))
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_show_as_percentages_and_unknown_keys_get_a_plain_descriptor() {
        let acc = Metric::accuracy("domain_acc", "domain classifier accuracy").with_chance(0.5);
        assert_eq!(acc.format(0.5123), "51.2%");
        assert_eq!(describe(std::slice::from_ref(&acc), "domain_acc"), acc);
        let unknown = describe(&[acc], "mmd2");
        assert_eq!(
            (unknown.label.as_ref(), unknown.unit),
            ("mmd2", Unit::Plain)
        );
        assert_eq!(unknown.format(0.25), "0.2500");
    }
}
