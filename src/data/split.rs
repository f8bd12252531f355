//! Splits (source train/validation, labelled target for training, target evaluation) and
//! seeded shuffled batches. All randomness comes from a seeded ChaCha generator, so the
//! same seed gives the same split and the same batch order on every machine.

use super::DomainPair;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Which samples play which part in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Source samples used for training.
    pub source_train: Vec<usize>,
    /// Source samples held out to measure source accuracy.
    pub source_val: Vec<usize>,
    /// Labelled target samples handed to training (`--target-labels K`).
    pub target_train: Vec<usize>,
    /// Target samples used to measure target accuracy (all labelled ones not trained on).
    pub target_eval: Vec<usize>,
    /// Every target sample, labels hidden: what unsupervised adaptation may look at.
    pub target_unlabeled: Vec<usize>,
}

/// A seeded generator for a named purpose, so adding one use of randomness does not shift another.
pub fn rng_for(seed: u64, purpose: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h)
}

fn by_class(labels: &[u32], n_classes: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        out[l as usize].push(i);
    }
    out
}

/// Split a pair: a stratified `val_fraction` of the source is held out (at least one image
/// per class when the class has two or more), and `target_labels_per_class` labelled target
/// images per class go to training.
pub fn split_indices(
    pair: &DomainPair,
    val_fraction: f64,
    target_labels_per_class: usize,
    seed: u64,
) -> (Split, Vec<String>) {
    let mut warnings = Vec::new();
    let mut split = Split::default();
    let n_classes = pair.classes.len();
    let mut rng = rng_for(seed, "split-source");
    let slabels = pair.source.labels.as_deref().unwrap_or(&[]);
    for mut members in by_class(slabels, n_classes) {
        members.shuffle(&mut rng);
        let mut n_val = (members.len() as f64 * val_fraction).round() as usize;
        if val_fraction > 0.0 && n_val == 0 && members.len() >= 2 {
            n_val = 1;
        }
        split.source_val.extend_from_slice(&members[..n_val]);
        split.source_train.extend_from_slice(&members[n_val..]);
    }
    split.source_train.sort_unstable();
    split.source_val.sort_unstable();
    split.target_unlabeled = (0..pair.target.len()).collect();
    if let Some(tlabels) = pair.target.labels.as_deref() {
        let mut rng = rng_for(seed, "split-target");
        for (ci, mut members) in by_class(tlabels, n_classes).into_iter().enumerate() {
            members.shuffle(&mut rng);
            let k = target_labels_per_class.min(members.len());
            if target_labels_per_class > 0 && !members.is_empty() && k == members.len() {
                warnings.push(format!(
                    "target class '{}' has only {} image(s): all go to training, none is left to evaluate it",
                    pair.classes[ci],
                    members.len()
                ));
            }
            split.target_train.extend_from_slice(&members[..k]);
            split.target_eval.extend_from_slice(&members[k..]);
        }
        split.target_train.sort_unstable();
        split.target_eval.sort_unstable();
    }
    (split, warnings)
}

/// Seeded shuffled batches over a set of indices; a new order every epoch.
#[derive(Clone, Debug)]
pub struct Batcher {
    indices: Vec<usize>,
    batch_size: usize,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    pos: usize,
}

impl Batcher {
    /// A batcher over `indices` with its own named random stream.
    pub fn new(indices: Vec<usize>, batch_size: usize, seed: u64, purpose: &str) -> Self {
        Self {
            indices,
            batch_size: batch_size.max(1),
            rng: rng_for(seed, purpose),
            order: Vec::new(),
            pos: usize::MAX,
        }
    }

    /// Number of full-or-partial batches in one pass.
    pub fn batches_per_epoch(&self) -> usize {
        self.indices.len().div_ceil(self.batch_size)
    }

    /// Start a new pass in a fresh random order.
    pub fn reshuffle(&mut self) {
        self.order = self.indices.clone();
        self.order.shuffle(&mut self.rng);
        self.pos = 0;
    }

    /// The next batch of the current pass, or `None` at its end.
    pub fn next_batch(&mut self) -> Option<Vec<usize>> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let b = self.order[self.pos..end].to_vec();
        self.pos = end;
        Some(b)
    }

    /// The next batch, starting a new pass when one runs out (for a second, cycling stream).
    pub fn next_cycling(&mut self) -> Vec<usize> {
        match self.next_batch() {
            Some(b) => b,
            None => {
                self.reshuffle();
                self.next_batch().unwrap_or_default()
            }
        }
    }
}
