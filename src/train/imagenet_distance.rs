//! How far a domain is from what the pretrained network was trained on (ImageNet), for
//! the advisor's cases a–d. The yardstick is the network's own record of ImageNet: each
//! batch-norm layer of EfficientNet-Lite0 stores the mean and variance of each of its
//! channels over ImageNet's training images. Normalised by those statistics, ImageNet's
//! own features have mean 0 and variance 1 in every channel; a domain whose channels come
//! out as N(m, v) is, on average over the channels, KL(N(m, v) ‖ N(0, 1)) =
//! ½(v + m² − 1 − ln v) nats away. The layer read is the head conv's (`_bn1`, 1280
//! channels, the last features before pooling: what a classifier on top sees). The same
//! statistics are what DeepInversion matches to synthesise ImageNet-like images and what
//! AdaBN swaps to adapt to a new domain. Images are resized from the size they were loaded
//! at to 224 px, the size the statistics were recorded at (gray images are repeated to
//! three channels). The stem's statistics (colour, contrast) were tried too and left out:
//! on CC0 photo crops they were as far from ImageNet's as on MNIST-M (docs/pretrained.md).

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
    /// Mean over the head conv's channels of KL(N(m, v) ‖ N(0, 1)), in nats.
    pub distance: f64,
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

    fn distance(&self) -> f64 {
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
    for chunk in idx.chunks(CHUNK) {
        let images = convert_domain(domain.subset(chunk), shape);
        let x = Tensor::from_vec(images.x, (chunk.len(), 3, side, side), &Device::Cpu)
            .map_err(fail)?;
        let x = net.normalise(&x).map_err(fail)?;
        let f = net.run_stages(&x, 0, 8, false).map_err(fail)?;
        head.add(&f.conv2d(&head.weight, 0, 1, 1, 1).map_err(fail)?)
            .map_err(fail)?;
    }
    Ok(ImagenetDistance {
        distance: head.distance(),
        images: idx.len(),
        side,
    })
}

/// Mean over channels of KL(N(m, v) ‖ N(0, 1)) from per-channel sums over `count` values.
pub fn gaussian_kl_to_standard(sum: &[f64], sum_sq: &[f64], count: usize) -> f64 {
    if sum.is_empty() || count == 0 {
        return f64::NAN;
    }
    let n = count as f64;
    let total: f64 = sum
        .iter()
        .zip(sum_sq)
        .map(|(&s, &s2)| {
            let m = s / n;
            // A floor keeps a channel that never varies finite.
            let v = (s2 / n - m * m).max(1e-6);
            0.5 * (v + m * m - 1.0 - v.ln())
        })
        .sum();
    total / sum.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_is_zero_for_standard_statistics_and_grows_with_the_shift() {
        // Values −1 and +1: mean 0, variance 1.
        assert!(gaussian_kl_to_standard(&[0.0], &[2.0], 2).abs() < 1e-12);
        let shifted = gaussian_kl_to_standard(&[2.0], &[4.0], 2); // mean 1, variance 1
        assert!((shifted - 0.5).abs() < 1e-12);
        assert!(gaussian_kl_to_standard(&[4.0], &[10.0], 2) > shifted);
    }
}
