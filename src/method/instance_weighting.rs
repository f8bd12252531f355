//! Instance-based transfer: each labelled source image is weighted by how target-like it
//! is, the density ratio w(x) = p_t(x)/p_s(x), so that training favours the part of the
//! source that resembles the target.
//!
//! The ratio comes from a domain classifier on the (detached) backbone features, trained
//! alongside: with n source and m target rows in its batch, p_t/p_s = e^z · n/m for its
//! logit z. Real shifts leave little overlap between the domains, and raw ratios then put
//! nearly all the weight on a handful of images, so the ratio is made robust in three ways:
//! its logarithm is clipped to ±ln 10; it is flattened, w = (p_t/p_s)^γ with γ = λ·ramp(p)
//! (0 at the start, when the classifier knows nothing; the default λ = 0.5 takes the square
//! root of the ratio, a standard bias-variance trade-off); and the weights, normalised to
//! mean 1 in each batch, are capped at 5 and normalised again. The features are not trained
//! to fool the classifier, and the learning rate is the plain one: only the weights change
//! what the network learns. Labelled target images (`--target-labels`) weigh 1.
//!
//! Loss: Σ w_i · CE_i / N + domain BCE (which trains only the domain classifier).

use super::domain_classifier::{DomainClassifier, accuracy, bce_with_logits, domain_logits};
use super::{
    EpochMeans, Method, MethodSettings, TrainBatch, cross_entropy_per_sample, joint_forward, ramp,
};
use crate::model::Network;
use candle_core::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Default exponent of the density ratio (its square root).
pub const DEFAULT_LAMBDA: f64 = 0.5;

/// InstanceWeighting's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "instance-weighting",
    family: super::Family::Instance,
    summary: "Weight each source image by how target-like it looks (p_t/p_s from a domain classifier), so training favours the source that resembles the target.",
    bottleneck: None,
    hyperparameters: &[super::Hyperparameter::lambda(DEFAULT_LAMBDA)],
    metrics: &[
        super::domain_classifier::DOMAIN_ACCURACY,
        super::Metric::new("weight_std", "spread of the weights", super::Unit::Plain),
        super::Metric::new("weight_min", "smallest weight", super::Unit::Plain),
        super::Metric::new("weight_max", "largest weight", super::Unit::Plain),
    ],
    build: Some(|settings, net| Ok(Box::new(InstanceWeighting::new(settings, net)?))),
    anneal_lr: false,
    ..super::ADAPTATION_BASE
};

/// Largest density ratio (and 1/smallest) taken from the domain classifier.
pub const RATIO_CLIP: f64 = 10.0;

/// Largest weight after normalisation to mean 1.
pub const MAX_WEIGHT: f64 = 5.0;

/// Variable prefix of the domain classifier.
pub const PREFIX: &str = "iw";

/// Density-ratio re-weighting of the source.
pub struct InstanceWeighting {
    lambda: f64,
    classifier: DomainClassifier,
    means: EpochMeans,
    /// This epoch's weights: (source sample ids, their weights on the device).
    pending: Vec<(Vec<usize>, Tensor)>,
    /// Latest weight of each source sample (NaN: not seen yet).
    latest: Vec<f32>,
    files: Vec<String>,
}

impl InstanceWeighting {
    /// Instance weighting with its domain classifier created in `net` (under `iw.`).
    pub fn new(settings: &MethodSettings, net: &Network) -> Result<Self> {
        Ok(Self {
            lambda: settings.lambda,
            classifier: DomainClassifier::new(
                net,
                PREFIX,
                net.feature_dim(),
                settings.seed,
                super::domain_classifier::SPEED,
            )?,
            means: EpochMeans::default(),
            pending: Vec::new(),
            latest: vec![f32::NAN; settings.source_files.len()],
            files: settings.source_files.clone(),
        })
    }

    /// Normalised weights of the source rows from their domain logits (detached).
    fn weights(&self, source_logits: &Tensor, n: usize, m: usize, progress: f64) -> Result<Tensor> {
        let clip = RATIO_CLIP.ln() as f32;
        let log_ratio =
            (source_logits.detach() + (n as f64 / m as f64).ln())?.clamp(-clip, clip)?;
        let w = (log_ratio * (self.lambda * ramp(progress)))?.exp()?;
        let w = w
            .broadcast_div(&w.mean_keepdim(0)?)?
            .clamp(0f32, MAX_WEIGHT as f32)?;
        w.broadcast_div(&w.mean_keepdim(0)?)
    }

    fn record(&mut self, ids: &[usize], weights: Vec<f32>) {
        for (&i, w) in ids.iter().zip(weights) {
            if let Some(slot) = self.latest.get_mut(i) {
                *slot = w;
            }
        }
    }

    fn flush(&mut self) -> Vec<f32> {
        let mut all = Vec::new();
        for (ids, w) in std::mem::take(&mut self.pending) {
            if let Ok(w) = w.to_vec1::<f32>() {
                all.extend_from_slice(&w);
                self.record(&ids, w);
            }
        }
        all
    }
}

impl Method for InstanceWeighting {
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = cross_entropy_per_sample(&out.logits, &batch.y)?;
        let Some(fs) = out.source.as_ref().map(|s| &s.backbone_features) else {
            return ce.mean_all();
        };
        let n = out.n_source;
        let m = out.target.backbone_features.dim(0)?;
        let (logits, labels) = domain_logits(
            &self.classifier,
            &fs.detach(),
            &out.target.backbone_features.detach(),
        )?;
        let domain_loss = bce_with_logits(&logits, &labels)?;
        self.means.add("domain_acc", &accuracy(&logits, &labels)?)?;
        let w_source = self.weights(&logits.narrow(0, 0, n)?, n, m, progress)?;
        let rows = out.logits.dim(0)?;
        let w = if rows > n {
            Tensor::cat(
                &[
                    &w_source,
                    &Tensor::ones(rows - n, DType::F32, w_source.device())?,
                ],
                0,
            )?
        } else {
            w_source.clone()
        };
        // The runner puts source rows first, so the first n ids are the source samples'.
        let ids: Vec<usize> = batch
            .sample_ids
            .iter()
            .zip(&batch.from_target)
            .filter(|(_, t)| !**t)
            .map(|(&i, _)| i)
            .collect();
        self.pending.push((ids, w_source));
        (ce * w)?.mean_all()? + domain_loss
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        let all = self.flush();
        let mut out = self.means.take();
        if !all.is_empty() {
            let n = all.len() as f64;
            let mean = all.iter().map(|&w| w as f64).sum::<f64>() / n;
            let var = all.iter().map(|&w| (w as f64 - mean).powi(2)).sum::<f64>() / n;
            let min = all.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            let max = all.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            out.push(("weight_std".to_string(), var.sqrt()));
            out.push(("weight_min".to_string(), min));
            out.push(("weight_max".to_string(), max));
        }
        out
    }

    fn report_extra(&self) -> Option<serde_json::Value> {
        let mut latest = self.latest.clone();
        for (ids, w) in &self.pending {
            if let Ok(w) = w.to_vec1::<f32>() {
                for (&i, w) in ids.iter().zip(w) {
                    if let Some(slot) = latest.get_mut(i) {
                        *slot = w;
                    }
                }
            }
        }
        let weights: Vec<InstanceWeight> = latest
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_finite())
            .map(|(i, &w)| InstanceWeight {
                index: i,
                file: self.files.get(i).cloned().unwrap_or_default(),
                weight: w as f64,
            })
            .collect();
        serde_json::to_value(InstanceWeights {
            instance_weights: weights,
        })
        .ok()
    }
}

/// A source image's last weight (`extra.instance_weights[]` of the report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceWeight {
    /// Index in the source domain.
    pub index: usize,
    pub file: String,
    pub weight: f64,
}

/// The method's extra results.
#[derive(Serialize, Deserialize)]
struct InstanceWeights {
    instance_weights: Vec<InstanceWeight>,
}

/// The per-image weights in a method's extra results (none when they are not this
/// method's).
pub fn weights_in(extra: &serde_json::Value) -> Vec<InstanceWeight> {
    serde_json::from_value::<InstanceWeights>(extra.clone())
        .map(|w| w.instance_weights)
        .unwrap_or_default()
}
