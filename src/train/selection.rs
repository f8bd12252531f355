//! Choosing which epoch's weights a run keeps without looking at target labels
//! (`--select-by`): each epoch is scored by a label-free criterion — the held-out source
//! accuracy, or one of the label-free estimates of the target ([`LabelFree`]: ATC, DEV,
//! IWCV, SND, entropy) — and the best epoch's weights are restored at the end. When the
//! target has labels the report also says which epoch the oracle (the true target
//! accuracy) would have kept, so a class sees how good the choice was.

use crate::analysis::label_free::LabelFree;
use serde::{Deserialize, Serialize};

/// A label-free criterion for the epoch to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum SelectBy {
    /// Accuracy on the held-out source images.
    SourceVal,
    /// Average thresholded confidence (the ATC estimate of the target accuracy).
    Atc,
    /// Deep embedded validation (1 − DEV risk).
    Dev,
    /// Importance-weighted validation (1 − IWCV risk).
    Iwcv,
    /// Soft neighbourhood density of the target predictions.
    Snd,
    /// Mean entropy of the target predictions (lower is better).
    Entropy,
}

impl SelectBy {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            SelectBy::SourceVal => "source-val",
            SelectBy::Atc => "atc",
            SelectBy::Dev => "dev",
            SelectBy::Iwcv => "iwcv",
            SelectBy::Snd => "snd",
            SelectBy::Entropy => "entropy",
        }
    }

    /// True when the criterion needs the label-free estimates (a pass over the target).
    pub fn needs_estimates(self) -> bool {
        self != SelectBy::SourceVal
    }

    /// An epoch's score, higher is better (the entropy negated); None when the criterion
    /// cannot be measured (no held-out source, no estimate).
    pub fn score(self, source_accuracy: Option<f64>, estimates: Option<&LabelFree>) -> Option<f64> {
        let accuracy = estimates.and_then(|e| e.accuracy);
        match self {
            SelectBy::SourceVal => source_accuracy,
            SelectBy::Atc => accuracy.map(|a| a.atc),
            SelectBy::Dev => accuracy.map(|a| a.dev),
            SelectBy::Iwcv => accuracy.map(|a| a.iwcv),
            SelectBy::Snd => estimates.map(|e| e.snd),
            SelectBy::Entropy => estimates.map(|e| -e.entropy),
        }
        .filter(|v| v.is_finite())
    }
}

/// Which epoch a run kept, by which criterion, and what the oracle would have kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub criterion: SelectBy,
    /// The epoch whose weights were kept (1-based).
    pub chosen_epoch: usize,
    /// Each epoch's score (higher is better; the entropy negated), null where it could not
    /// be measured.
    pub scores: Vec<Option<f64>>,
    /// With target labels: the epoch of the best target accuracy, and both accuracies.
    pub oracle_epoch: Option<usize>,
    pub chosen_target_accuracy: Option<f64>,
    pub oracle_target_accuracy: Option<f64>,
}

impl Selection {
    /// The choice from each epoch's `scores` and target accuracies (the first best epoch
    /// on a tie); None when no epoch could be scored.
    pub fn choose(
        criterion: SelectBy,
        scores: Vec<Option<f64>>,
        target_accuracy: &[Option<f64>],
    ) -> Option<Self> {
        let best = |v: &[Option<f64>]| -> Option<usize> {
            v.iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s)))
                .fold(None, |b: Option<(usize, f64)>, (i, s)| match b {
                    Some((_, bs)) if bs >= s => b,
                    _ => Some((i, s)),
                })
                .map(|(i, _)| i)
        };
        let chosen = best(&scores)?;
        let oracle = best(target_accuracy);
        Some(Self {
            criterion,
            chosen_epoch: chosen + 1,
            scores,
            oracle_epoch: oracle.map(|o| o + 1),
            chosen_target_accuracy: target_accuracy.get(chosen).copied().flatten(),
            oracle_target_accuracy: oracle.and_then(|o| target_accuracy[o]),
        })
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("n/a".into(), |a| format!("{:.1}%", 100.0 * a));
        let oracle = match self.oracle_epoch {
            Some(e) if e == self.chosen_epoch => {
                " — the epoch the target labels would have chosen too".to_string()
            }
            Some(e) => format!(
                "; the target labels would have kept epoch {e} ({} against {})",
                pct(self.oracle_target_accuracy),
                pct(self.chosen_target_accuracy)
            ),
            None => String::new(),
        };
        format!(
            "kept epoch {} of {}, chosen by {} without target labels{oracle}",
            self.chosen_epoch,
            self.scores.len(),
            self.criterion.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_scored_epoch_is_kept_and_compared_with_the_oracle() {
        let s = Selection::choose(
            SelectBy::SourceVal,
            vec![Some(0.8), Some(0.95), None, Some(0.9)],
            &[Some(0.5), Some(0.6), Some(0.7), Some(0.65)],
        )
        .unwrap();
        assert_eq!(s.chosen_epoch, 2);
        assert_eq!(s.oracle_epoch, Some(3));
        assert_eq!(s.chosen_target_accuracy, Some(0.6));
        assert_eq!(s.oracle_target_accuracy, Some(0.7));
        assert!(
            s.summary().contains("would have kept epoch 3"),
            "{}",
            s.summary()
        );
        // The first of equal scores; nothing scored, no choice.
        let tie = Selection::choose(SelectBy::Snd, vec![Some(1.0), Some(1.0)], &[None, None]);
        assert_eq!(tie.unwrap().chosen_epoch, 1);
        assert!(Selection::choose(SelectBy::Dev, vec![None], &[None]).is_none());
    }

    #[test]
    fn lower_entropy_scores_higher() {
        let e = |entropy| LabelFree {
            snd: 0.0,
            entropy,
            accuracy: None,
        };
        let low = SelectBy::Entropy.score(None, Some(&e(0.1))).unwrap();
        let high = SelectBy::Entropy.score(None, Some(&e(1.0))).unwrap();
        assert!(low > high);
        assert_eq!(SelectBy::Dev.score(Some(0.9), Some(&e(0.1))), None);
    }
}
