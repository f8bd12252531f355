//! Building blocks shared by the backbones: convolution and fully connected layers that
//! run on the fast CPU kernels of [`super::ops`] (and on Candle's kernels on other
//! devices), conv + batch-norm, a 3×3/2 max-pool that has a backward pass, and the seeded
//! initialisation that makes runs repeatable (Candle's CPU generator cannot be seeded, so
//! every variable is re-drawn from a ChaCha stream named after the variable).

use super::{Stage, ops};
use crate::data::split::rng_for;
use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{BatchNorm, Linear, ModuleT, VarBuilder, VarMap};
use rand::Rng;

/// A square 2-D convolution with optional bias.
#[derive(Debug, Clone)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
        )
    }
}

/// Stages run one after the other (a residual layer, a group of MBConv blocks).
pub struct Sequential<S>(pub Vec<S>);

impl<S: Stage> Stage for Sequential<S> {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for s in &self.0 {
            h = s.forward_t(&h, train)?;
        }
        Ok(h)
    }
}

/// A stage followed by global average pooling: a backbone's last stage.
pub struct Pooled<S>(pub S);

impl<S: Stage> Stage for Pooled<S> {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        global_avg_pool(&self.0.forward_t(x, train)?)
    }
}

/// A convolution without bias (batch-norm follows).
pub fn conv_no_bias(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> Result<Conv> {
    Ok(Conv {
        weight: vb.get((c_out, c_in, k, k), "weight")?,
        bias: None,
        stride,
        padding,
    })
}

/// A convolution with bias.
pub fn conv(c_in: usize, c_out: usize, k: usize, vb: VarBuilder) -> Result<Conv> {
    Ok(Conv {
        weight: vb.get((c_out, c_in, k, k), "weight")?,
        bias: Some(vb.get(c_out, "bias")?),
        stride: 1,
        padding: 0,
    })
}

/// A fully connected layer with bias, optionally followed by a ReLU (fused on the CPU).
#[derive(Debug, Clone)]
pub struct Dense {
    pub weight: Tensor,
    pub bias: Tensor,
    pub relu: bool,
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::linear(x, &self.weight, &self.bias, self.relu)
    }
}

/// A fully connected layer (`relu`: followed by a ReLU) with the same variables as [`linear`].
pub fn dense(d_in: usize, d_out: usize, relu: bool, vb: VarBuilder) -> Result<Dense> {
    Ok(Dense {
        weight: vb.get((d_out, d_in), "weight")?,
        bias: vb.get(d_out, "bias")?,
        relu,
    })
}

/// A fully connected layer.
pub fn linear(d_in: usize, d_out: usize, vb: VarBuilder) -> Result<Linear> {
    let w = vb.get((d_out, d_in), "weight")?;
    let b = vb.get(d_out, "bias")?;
    Ok(Linear::new(w, Some(b)))
}

/// Batch-norm whose running statistics live in the VarMap (so they are saved).
pub fn batch_norm(c: usize, vb: VarBuilder) -> Result<BatchNorm> {
    candle_nn::batch_norm(c, candle_nn::BatchNormConfig::default(), vb)
}

/// Conv followed by batch-norm.
#[derive(Debug, Clone)]
pub struct ConvBn {
    pub conv: Conv,
    pub bn: BatchNorm,
}

impl ConvBn {
    /// Apply the convolution and batch-norm (training mode when `train`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_t(&x.apply(&self.conv)?, train)
    }
}

/// 3×3 max-pool with stride 2 and padding 1, with a gradient (Candle's `max_pool2d` has
/// none when kernel ≠ stride). Expects non-negative input (it follows a ReLU).
pub fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    ops::max_pool3x3s2(x)
}

/// [`max_pool_3x3_s2`] built from `narrow`, `reshape` and `maximum`, for any device.
/// Zero padding equals −∞ padding because the input is non-negative.
pub fn max_pool_3x3_s2_portable(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
    // Pad to 2·out + 2 so every window start 2i + d (d < 3) and its strided view fit.
    let (hp, wp) = (2 * oh + 2, 2 * ow + 2);
    let x = x.pad_with_zeros(2, 1, hp - h - 1)?;
    let x = x.pad_with_zeros(3, 1, wp - w - 1)?;
    let mut out: Option<Tensor> = None;
    for di in 0..3 {
        let rows = x
            .narrow(2, di, 2 * oh)?
            .reshape((b, c, oh, 2, wp))?
            .narrow(3, 0, 1)?
            .squeeze(3)?;
        for dj in 0..3 {
            let v = rows
                .narrow(3, dj, 2 * ow)?
                .reshape((b, c, oh, ow, 2))?
                .narrow(4, 0, 1)?
                .squeeze(4)?;
            out = Some(match out {
                None => v,
                Some(o) => o.maximum(&v)?,
            });
        }
    }
    out.ok_or_else(|| candle_core::Error::Msg("empty pool".into()))
}

/// Global average pool over the spatial dimensions: `B×C×H×W → B×C`.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}

/// Re-draw every variable of `varmap` from seeded generators, by name:
/// He-uniform weights for convolutions and hidden layers, zero biases, batch-norm at
/// identity. `head_prefixes` get the smaller LeCun bound suited to a classifier.
pub fn seeded_init(varmap: &VarMap, seed: u64, head_prefixes: &[&str]) -> Result<()> {
    seeded_init_under(varmap, "", seed, head_prefixes)
}

/// [`seeded_init`] for the variables whose names start with `prefix` only (a method's
/// own layers); the others are left alone. Each variable is drawn from a stream named
/// after it, so the values do not depend on what else the var map holds.
pub fn seeded_init_under(
    varmap: &VarMap,
    prefix: &str,
    seed: u64,
    head_prefixes: &[&str],
) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("var map poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().filter(|n| n.starts_with(prefix)).collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("running_var") {
            vec![1.0; n]
        } else if name.ends_with("running_mean") || name.ends_with("bias") {
            vec![0.0; n]
        } else if dims.len() == 1 {
            // Batch-norm scale.
            vec![1.0; n]
        } else {
            let fan_in: usize = dims[1..].iter().product();
            let is_head = head_prefixes.iter().any(|p| name.starts_with(p));
            let bound = if is_head {
                (1.0 / fan_in as f64).sqrt()
            } else {
                (6.0 / fan_in as f64).sqrt()
            } as f32;
            let mut rng = rng_for(seed, name);
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        let t = Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?
            .to_dtype(DType::F32)?
            .to_device(var.device())?;
        var.set(&t)?;
    }
    Ok(())
}
