//! Max-pooling with a backward pass for any window and stride (Candle 0.11 has one only
//! when kernel == stride), optionally fused with the ReLU that follows it:
//! `relu(max_pool(x))`. The backward pass sends each output's gradient to the first
//! maximum of its window (and nowhere when the ReLU cut it off).

use super::{Grads, Kernel, Op, output};
use candle_core::{Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `relu(max_pool2d(x, 2))` for B×C×H×W input (odd edges dropped, as Candle does).
pub fn max_pool2x2_relu(x: &Tensor) -> Result<Tensor> {
    if !super::on_fast_path(x) {
        return x.max_pool2d(2)?.relu();
    }
    x.contiguous()?.apply_op1(Op(MaxPool {
        k: 2,
        stride: 2,
        pad: 0,
        relu: true,
    }))
}

/// 3×3 max-pool with stride 2 and padding 1 (ResNet's stem); on other devices the
/// portable version in [`crate::model::layers::max_pool_3x3_s2_portable`].
pub fn max_pool3x3s2(x: &Tensor) -> Result<Tensor> {
    if !super::on_fast_path(x) {
        return crate::model::layers::max_pool_3x3_s2_portable(x);
    }
    x.contiguous()?.apply_op1(Op(MaxPool {
        k: 3,
        stride: 2,
        pad: 1,
        relu: false,
    }))
}

#[derive(Clone, Copy, Debug)]
struct MaxPool {
    k: usize,
    stride: usize,
    pad: usize,
    relu: bool,
}

impl MaxPool {
    fn out_dims(&self, dims: &[usize]) -> Result<(usize, usize, usize, usize)> {
        let &[b, c, h, w] = dims else {
            candle_core::bail!("max-pool: expected B×C×H×W input, got {dims:?}");
        };
        if h + 2 * self.pad < self.k || w + 2 * self.pad < self.k {
            candle_core::bail!(
                "max-pool: {h}×{w} is smaller than the {0}×{0} window",
                self.k
            );
        }
        let o = |s: usize| (s + 2 * self.pad - self.k) / self.stride + 1;
        Ok((b * c, h, w, o(h) * o(w)))
    }

    /// Valid input range `[lo, hi)` of the window at output coordinate `o` along a side `s`.
    fn window(&self, o: usize, s: usize) -> (usize, usize) {
        let start = o * self.stride;
        (
            start.saturating_sub(self.pad),
            (start + self.k).saturating_sub(self.pad).min(s),
        )
    }

    /// For one plane, call `f(out_index, input_index_of_max, max)` for every output.
    fn scan(&self, plane: &[f32], h: usize, w: usize, mut f: impl FnMut(usize, usize, f32)) {
        let oh = (h + 2 * self.pad - self.k) / self.stride + 1;
        let ow = (w + 2 * self.pad - self.k) / self.stride + 1;
        if self.k == 2 && self.stride == 2 && self.pad == 0 {
            for oy in 0..oh {
                let r0 = &plane[2 * oy * w..2 * oy * w + w];
                let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 2) * w];
                for ox in 0..ow {
                    let i = 2 * ox;
                    let cand = [
                        (r0[i], i),
                        (r0[i + 1], i + 1),
                        (r1[i], w + i),
                        (r1[i + 1], w + i + 1),
                    ];
                    let (mut m, mut at) = cand[0];
                    for &(v, p) in &cand[1..] {
                        if v > m {
                            (m, at) = (v, p);
                        }
                    }
                    f(oy * ow + ox, 2 * oy * w + at, m);
                }
            }
            return;
        }
        for oy in 0..oh {
            let (y0, y1) = self.window(oy, h);
            for ox in 0..ow {
                let (x0, x1) = self.window(ox, w);
                let (mut m, mut at) = (f32::NEG_INFINITY, y0 * w + x0);
                for y in y0..y1 {
                    for x in x0..x1 {
                        let v = plane[y * w + x];
                        if v > m {
                            (m, at) = (v, y * w + x);
                        }
                    }
                }
                f(oy * ow + ox, at, m);
            }
        }
    }
}

impl Kernel<1> for MaxPool {
    const NAME: &'static str = "fast-max-pool";

    fn forward(&self, [(x, l)]: [(&[f32], &Layout); 1]) -> Result<(Vec<f32>, Shape)> {
        let (planes, h, w, out_plane) = self.out_dims(l.dims())?;
        let mut y = vec![0f32; planes * out_plane];
        y.par_chunks_mut(out_plane.max(1))
            .zip(x.par_chunks((h * w).max(1)))
            .with_min_len(8)
            .for_each(|(yp, xp)| {
                self.scan(xp, h, w, |o, _, m| {
                    yp[o] = if self.relu { m.max(0.0) } else { m };
                })
            });
        let d = l.dims();
        let o = |s: usize| (s + 2 * self.pad - self.k) / self.stride + 1;
        output(y, (d[0], d[1], o(h), o(w)))
    }

    fn backward(&self, [arg]: [&Tensor; 1], _res: &Tensor, grad: &Tensor) -> Grads<1> {
        if !super::needs_grad(arg) {
            return Ok([None]);
        }
        let dx = arg.apply_op2_no_bwd(&grad.contiguous()?, &Op(MaxPoolGrad(*self)))?;
        Ok([Some(dx)])
    }
}

/// `(x, dy) → dx` for [`MaxPool`].
struct MaxPoolGrad(MaxPool);

impl Kernel<2> for MaxPoolGrad {
    const NAME: &'static str = "fast-max-pool-grad";

    fn forward(&self, [(x, l1), (dy, l2)]: [(&[f32], &Layout); 2]) -> Result<(Vec<f32>, Shape)> {
        let pool = self.0;
        let (planes, h, w, out_plane) = pool.out_dims(l1.dims())?;
        if l2.shape().elem_count() != planes * out_plane {
            candle_core::bail!("max-pool backward: gradient shape {:?}", l2.dims());
        }
        let mut dx = vec![0f32; planes * h * w];
        dx.par_chunks_mut((h * w).max(1))
            .zip(x.par_chunks((h * w).max(1)))
            .zip(dy.par_chunks(out_plane.max(1)))
            .with_min_len(8)
            .for_each(|((dxp, xp), dyp)| {
                pool.scan(xp, h, w, |o, at, m| {
                    if !pool.relu || m > 0.0 {
                        dxp[at] += dyp[o];
                    }
                })
            });
        output(dx, l1.shape().clone())
    }
}
