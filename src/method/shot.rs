//! SHOT, information maximisation + self-training (Liang et al., 2020, "Do We Really Need
//! to Access the Source Data?"). Two things make a classifier fit an unlabeled target:
//!
//! - **Information maximisation**: each target prediction should be confident (low
//!   per-sample entropy) while the predictions of a batch together cover every class (high
//!   entropy of the batch-mean prediction, the *diversity* term that stops everything
//!   collapsing onto one class). IM = mean H(p_i) − H(mean p_i).
//! - **Self-training on centroid pseudo-labels**: at the start of each epoch the whole
//!   unlabeled target goes through the network once; each class gets a centroid in feature
//!   space (the features weighted by the predicted probabilities), every image the label of
//!   its nearest centroid by cosine distance, and once more with the centroids of those
//!   labels. These labels are more accurate than the classifier's own argmax because they
//!   use the target's cluster structure; the epoch trains on them with cross-entropy.
//!
//! Here the labelled source stays in the loss (the runner's setting); the paper's
//! source-free case is the same loss without the source term.
//!
//! Loss: cross-entropy(source) + ramp(p) · (λ · IM + β · cross-entropy(target, pseudo-labels)).

use super::{EpochMeans, Method, MethodSettings, TargetPass, TrainBatch, joint_forward, ramp};
use crate::model::Network;
use candle_core::{D, Result, Tensor};

/// Default weight of the information-maximisation term.
pub const DEFAULT_LAMBDA: f64 = 1.0;
/// Default weight of the pseudo-label cross-entropy: the paper's 0.3 trusts the labels of
/// a well-trained source model; from a network still learning the source, 0.1 was better
/// on the benchmark's shifts.
pub const DEFAULT_BETA: f64 = 0.1;

/// SHOT's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "shot",
    family: super::Family::SelfTraining,
    summary: "SHOT: make target predictions confident and diverse (information maximisation) and train on pseudo-labels from class centroids, recomputed each epoch.",
    hyperparameters: &[
        super::Hyperparameter::lambda(DEFAULT_LAMBDA).labelled(
            "λ (information maximisation)",
            "Weight of the information-maximisation term (confident, diverse target predictions).",
        ),
        super::Hyperparameter::new(
            "beta",
            "β (pseudo-labels)",
            "Weight of the cross-entropy on the target's centroid pseudo-labels.",
            DEFAULT_BETA,
            (0.0, 10.0),
        ),
        super::Hyperparameter::switch(
            "propagate",
            "Pseudo-labels by label propagation",
            "On (1): the pseudo-labels come from labels spread over a nearest-neighbour graph of the labelled and target images (relation-based, as label-propagation makes them) instead of SHOT's class centroids.",
            false,
        ),
    ],
    metrics: &[
        super::Metric::new("entropy", "target entropy", super::Unit::Nats).higher_is_better(false),
        super::Metric::new("diversity", "prediction diversity", super::Unit::Nats)
            .higher_is_better(true),
        super::Metric::accuracy(super::PSEUDO_ACCURACY, "pseudo-label accuracy"),
    ],
    build: Some(|settings, _net| Ok(Box::new(Shot::new(settings)))),
    ..super::ADAPTATION_BASE
};

/// SHOT with the labelled source in the loss.
pub struct Shot {
    lambda: f64,
    beta: f64,
    /// Pseudo-labels by label propagation instead of centroids.
    propagate: bool,
    /// Pseudo-label of each target sample by its index in the domain (`u32::MAX`: none).
    pseudo: Vec<u32>,
    /// The pseudo-labels of this epoch, as (target index, class).
    labelled: Vec<(usize, u32)>,
    means: EpochMeans,
}

impl Shot {
    pub fn new(settings: &MethodSettings) -> Self {
        Self {
            lambda: settings.lambda,
            beta: settings.param("beta").unwrap_or(DEFAULT_BETA),
            propagate: settings.param("propagate").unwrap_or(0.0) >= 0.5,
            pseudo: Vec::new(),
            labelled: Vec::new(),
            means: EpochMeans::default(),
        }
    }

    /// The pseudo-labels of the rows of a target batch, when every row has one.
    fn batch_labels(
        &self,
        batch: &TrainBatch,
        device: &candle_core::Device,
    ) -> Result<Option<Tensor>> {
        let labels: Option<Vec<u32>> = batch
            .target_ids
            .iter()
            .map(|&i| self.pseudo.get(i).copied().filter(|&l| l != u32::MAX))
            .collect();
        match labels {
            Some(l) if !l.is_empty() => {
                let n = l.len();
                Tensor::from_vec(l, n, device).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// Mean per-sample entropy of the softmax of `logits` (N×C) and the entropy of the mean
/// prediction: (confidence term to minimise, diversity term to maximise), scalar tensors.
pub fn entropy_and_diversity(logits: &Tensor) -> Result<(Tensor, Tensor)> {
    let p = candle_nn::ops::softmax(logits, D::Minus1)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let entropy = (&p * &logp)?.sum(D::Minus1)?.mean_all()?.neg()?;
    let mean = p.mean(0)?;
    let diversity = (&mean * (&mean + 1e-6)?.log()?)?.sum_all()?.neg()?;
    Ok((entropy, diversity))
}

/// SHOT's centroid labelling of `features` (N×d) given the network's `probs` (N×C):
/// probability-weighted centroids, nearest by cosine distance, then once more with the
/// centroids of those labels. Classes no sample predicts get no centroid.
pub fn centroid_labels(features: &[Vec<f32>], probs: &[Vec<f32>]) -> Vec<u32> {
    let Some(k) = probs.first().map(Vec::len) else {
        return Vec::new();
    };
    // Features with a constant 1 appended (as the paper does), scaled to unit length.
    let feats: Vec<Vec<f32>> = features
        .iter()
        .map(|f| {
            let mut v: Vec<f32> = f.iter().copied().chain([1.0]).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect();
    let d = feats.first().map_or(0, Vec::len);
    let present: Vec<bool> = {
        let mut seen = vec![false; k];
        probs
            .iter()
            .for_each(|p| seen[super::top_class(p).0 as usize] = true);
        seen
    };
    // Centroids from per-sample class weights, then each sample's nearest present class.
    let relabel = |weight: &dyn Fn(usize, usize) -> f32| -> Vec<u32> {
        let mut centroids = vec![vec![0f32; d]; k];
        for (i, f) in feats.iter().enumerate() {
            for (c, centroid) in centroids.iter_mut().enumerate() {
                let w = weight(i, c);
                if w != 0.0 {
                    centroid.iter_mut().zip(f).for_each(|(a, x)| *a += w * x);
                }
            }
        }
        for c in &mut centroids {
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            c.iter_mut().for_each(|x| *x /= norm);
        }
        feats
            .iter()
            .map(|f| {
                let cosine = |c: &Vec<f32>| c.iter().zip(f).map(|(a, b)| a * b).sum::<f32>();
                (0..k)
                    .filter(|&c| present[c])
                    .max_by(|&a, &b| cosine(&centroids[a]).total_cmp(&cosine(&centroids[b])))
                    .unwrap_or(0) as u32
            })
            .collect()
    };
    let first = relabel(&|i, c| probs[i][c]);
    relabel(&|i, c| if first[i] as usize == c { 1.0 } else { 0.0 })
}

impl Method for Shot {
    fn labels_target(&self) -> bool {
        true
    }

    fn needs_labelled_pass(&self) -> bool {
        self.propagate
    }

    fn begin_epoch(&mut self, pass: &TargetPass) -> Result<()> {
        if pass.ids.is_empty() {
            return Ok(());
        }
        let features = pass.out.features.to_vec2::<f32>()?;
        let labels = match (&pass.labelled, self.propagate) {
            (Some(labelled), true) => {
                let classes = pass.out.logits.dim(1)?;
                super::label_propagation::propagate(
                    &labelled.out.features.to_vec2::<f32>()?,
                    &labelled.labels,
                    &features,
                    classes,
                    super::label_propagation::DEFAULT_ALPHA,
                    pass.out.features.device(),
                )?
                .labels
                .into_iter()
                .map(|l| l.map_or(u32::MAX, |(c, _)| c))
                .collect()
            }
            _ => {
                let probs =
                    candle_nn::ops::softmax(&pass.out.logits, D::Minus1)?.to_vec2::<f32>()?;
                centroid_labels(&features, &probs)
            }
        };
        let len = pass.ids.iter().max().map_or(0, |m| m + 1);
        self.pseudo = vec![u32::MAX; len];
        self.labelled = pass
            .ids
            .iter()
            .copied()
            .zip(labels)
            .filter(|&(_, l)| l != u32::MAX)
            .collect();
        for &(i, l) in &self.labelled {
            self.pseudo[i] = l;
        }
        Ok(())
    }

    fn pseudo_labels(&self) -> Option<&[(usize, u32)]> {
        (!self.labelled.is_empty()).then_some(&self.labelled[..])
    }

    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &batch.y)?;
        let (entropy, diversity) = entropy_and_diversity(&out.target.logits)?;
        self.means.add("entropy", &entropy)?;
        self.means.add("diversity", &diversity)?;
        let mut adapt = ((entropy - diversity)? * self.lambda)?;
        if self.beta > 0.0
            && let Some(pseudo) = self.batch_labels(batch, out.target.logits.device())?
        {
            let self_training = candle_nn::loss::cross_entropy(&out.target.logits, &pseudo)?;
            adapt = (adapt + (self_training * self.beta)?)?;
        }
        ce + (adapt * ramp(progress))?
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        self.means.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn centroids_relabel_a_sample_the_classifier_got_wrong() {
        // Two tight clusters; the classifier calls the third point of cluster A class 1.
        let rows = |v: &[f32]| v.chunks(2).map(<[f32]>::to_vec).collect::<Vec<_>>();
        let features = rows(&[1.0, 0.0, 0.9, 0.1, 0.95, 0.05, 0.0, 1.0, 0.1, 0.9]);
        let probs = rows(&[0.9, 0.1, 0.8, 0.2, 0.4, 0.6, 0.1, 0.9, 0.2, 0.8]);
        assert_eq!(centroid_labels(&features, &probs), vec![0, 0, 0, 1, 1]);
    }

    #[test]
    fn confident_diverse_predictions_score_better_than_collapsed_ones() {
        let t = |v: &[f32]| Tensor::from_slice(v, (2, 2), &Device::Cpu).unwrap();
        let im = |logits: &Tensor| {
            let (e, d) = entropy_and_diversity(logits).unwrap();
            (e - d).unwrap().to_scalar::<f32>().unwrap()
        };
        let diverse = im(&t(&[8.0, 0.0, 0.0, 8.0]));
        let collapsed = im(&t(&[8.0, 0.0, 8.0, 0.0]));
        let unsure = im(&t(&[0.0, 0.0, 0.0, 0.0]));
        assert!(
            diverse < collapsed && diverse < unsure,
            "{diverse} {collapsed} {unsure}"
        );
        assert!(
            diverse < -0.6,
            "ln 2 of diversity, almost no entropy: {diverse}"
        );
    }
}
