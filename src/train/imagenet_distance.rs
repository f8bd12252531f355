//! How far a domain is from what the pretrained network was trained on (ImageNet), for
//! the advisor's cases a–d, read from the network itself, on images resized from the size
//! they were loaded at to 224 px (gray repeated to three channels).
//!
//! The figure the advisor uses is the **ImageNet classifier's confidence**: the mean over
//! the target's images of the top-1 probability of the network's own 1000-class head
//! (`distance` = 1 − confidence). Images like the ones it was trained on are recognised
//! with confidence; images unlike anything in ImageNet spread their probability thin. This
//! is the maximum-softmax-probability baseline of out-of-distribution detection (Hendrycks
//! & Gimpel, 2017). It judges each image on its own, so a target of one ImageNet class
//! (only cats) counts as similar, as it should.
//!
//! Reported beside it, not used: the feature statistics. Each batch-norm layer stores the
//! mean and variance of its channels over ImageNet; normalised by those of the head conv
//! (`_bn1`, 1280 channels), ImageNet's own features are N(0, 1) per channel, and a domain
//! whose channels come out as N(m, v) is KL = ½m² (`shift`) + ½(v − 1 − ln v) (`spread`)
//! away. These are what DeepInversion matches and AdaBN swaps, but as a similarity they
//! measure the sample's breadth more than its kind: four crops of two CC0 photos came out
//! farther from ImageNet than generated digits (docs/pretrained.md).

use super::experiment::RunError;
use super::load::convert_domain;
use crate::data::{Domain, SampleShape};
use crate::device::error_message;
use crate::model::efficientnet::{self, DEFAULT_INPUT, bn_statistics};
use candle_core::{Device, Tensor};

/// Images read per forward pass.
const CHUNK: usize = 16;

/// A domain's distance from ImageNet, as the pretrained network sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImagenetDistance {
    /// 1 − `confidence`: what the advisor compares (0 = every image is, to the network,
    /// surely one of ImageNet's classes; near 1 = it recognises nothing).
    pub distance: f64,
    /// Mean over the images of the ImageNet classifier's top-1 probability.
    pub confidence: f64,
    /// ½m² averaged over the head conv's channels (m: the channel's mean in units of
    /// ImageNet's standard deviation, from its batch-norm statistics), in nats.
    pub shift: f64,
    /// ½(v − 1 − ln v) averaged over the channels: how differently the features spread.
    pub spread: f64,
    /// Images measured.
    pub images: usize,
    /// Image side they were measured at.
    pub side: usize,
}

/// One batch-norm layer's ImageNet statistics folded into its conv, and the sums of the
/// normalised outputs seen so far.
struct Probe {
    /// `C_out × C_in × k × k`, scaled by `1/√(σ² + ε)`.
    weight: Tensor,
    /// `μ/√(σ² + ε)`, subtracted after the conv.
    shift: Tensor,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    count: usize,
}

impl Probe {
    fn new(conv: &str, bn: &str) -> candle_core::Result<Self> {
        let (weight, mean, var) = bn_statistics(conv, bn)?;
        let inv_std = (var + efficientnet::BN_EPS)?.sqrt()?.recip()?;
        let c = inv_std.dim(0)?;
        Ok(Self {
            weight: weight.broadcast_mul(&inv_std.reshape((c, 1, 1, 1))?)?,
            shift: (mean * &inv_std)?.reshape((1, c, 1, 1))?,
            sum: vec![0.0; c],
            sum_sq: vec![0.0; c],
            count: 0,
        })
    }

    /// Add a batch of pre-BN conv outputs `(n, C, h, w)`: every position of every image is
    /// one sample of each channel, as in batch-norm.
    fn add(&mut self, y: &Tensor) -> candle_core::Result<()> {
        let z = y.broadcast_sub(&self.shift)?;
        let (n, _, h, w) = z.dims4()?;
        let s1: Vec<f32> = z.sum((0, 2, 3))?.to_vec1()?;
        let s2: Vec<f32> = z.sqr()?.sum((0, 2, 3))?.to_vec1()?;
        for k in 0..self.sum.len() {
            self.sum[k] += s1[k] as f64;
            self.sum_sq[k] += s2[k] as f64;
        }
        self.count += n * h * w;
        Ok(())
    }

    fn terms(&self) -> (f64, f64) {
        gaussian_kl_to_standard(&self.sum, &self.sum_sq, self.count)
    }
}

/// The ImageNet distance of the samples `idx` of an image domain.
pub fn imagenet_distance(domain: &Domain, idx: &[usize]) -> Result<ImagenetDistance, RunError> {
    let SampleShape::Image { .. } = domain.shape else {
        return Err(RunError::Setup(
            "the ImageNet distance needs images, not points".into(),
        ));
    };
    if idx.is_empty() {
        return Err(RunError::Setup(
            "the ImageNet distance needs at least one image".into(),
        ));
    }
    let fail = |e: candle_core::Error| {
        RunError::Setup(format!(
            "measuring the ImageNet distance failed: {}",
            error_message(&e)
        ))
    };
    let side = DEFAULT_INPUT;
    let shape = SampleShape::Image {
        channels: 3,
        height: side,
        width: side,
    };
    let net = efficientnet::imagenet_network(side, &Device::Cpu).map_err(fail)?;
    let mut head = Probe::new("_conv_head", "_bn1").map_err(fail)?;
    let mut confidence_sum = 0.0;
    for chunk in idx.chunks(CHUNK) {
        let images = convert_domain(domain.subset(chunk), shape);
        let x =
            Tensor::from_vec(images.x, (chunk.len(), 3, side, side), &Device::Cpu).map_err(fail)?;
        let x = net.normalise(&x).map_err(fail)?;
        let f = net.run_stages(&x, 0, 8, false).map_err(fail)?;
        head.add(&f.conv2d(&head.weight, 0, 1, 1, 1).map_err(fail)?)
            .map_err(fail)?;
        let pooled = net.run_stages(&f, 8, 9, false).map_err(fail)?;
        let logits = net.classify(&pooled).map_err(fail)?;
        let top: Vec<f32> = candle_nn::ops::softmax_last_dim(&logits)
            .and_then(|p| p.max(1))
            .and_then(|p| p.to_vec1())
            .map_err(fail)?;
        confidence_sum += top.iter().map(|&p| p as f64).sum::<f64>();
    }
    let (shift, spread) = head.terms();
    let confidence = confidence_sum / idx.len() as f64;
    Ok(ImagenetDistance {
        distance: 1.0 - confidence,
        confidence,
        shift,
        spread,
        images: idx.len(),
        side,
    })
}

/// KL(N(m, v) ‖ N(0, 1)) split into its mean term ½m² and its spread term
/// ½(v − 1 − ln v), each averaged over channels, from per-channel sums over `count` values.
pub fn gaussian_kl_to_standard(sum: &[f64], sum_sq: &[f64], count: usize) -> (f64, f64) {
    if sum.is_empty() || count == 0 {
        return (f64::NAN, f64::NAN);
    }
    let n = count as f64;
    let (mut shift, mut spread) = (0.0, 0.0);
    for (&s, &s2) in sum.iter().zip(sum_sq) {
        let m = s / n;
        // A floor keeps a channel that never varies finite.
        let v = (s2 / n - m * m).max(1e-6);
        shift += 0.5 * m * m;
        spread += 0.5 * (v - 1.0 - v.ln());
    }
    let c = sum.len() as f64;
    (shift / c, spread / c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_terms_are_zero_for_standard_statistics_and_grow_with_shift_and_spread() {
        // Values −1 and +1: mean 0, variance 1.
        let (m, v) = gaussian_kl_to_standard(&[0.0], &[2.0], 2);
        assert!(m.abs() < 1e-12 && v.abs() < 1e-12);
        // Values 0 and 2: mean 1, variance 1.
        let (m, v) = gaussian_kl_to_standard(&[2.0], &[4.0], 2);
        assert!((m - 0.5).abs() < 1e-12 && v.abs() < 1e-12);
        // Values 1 and 1: mean 1, no spread.
        let (m2, v2) = gaussian_kl_to_standard(&[2.0], &[2.0], 2);
        assert!((m2 - 0.5).abs() < 1e-12 && v2 > 1.0);
    }
}
