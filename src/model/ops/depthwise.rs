//! Depthwise 2-D convolution (one k×k filter per channel, NCHW, no bias) with asymmetric
//! zero padding, forward and backward. Candle's grouped `conv2d` runs one convolution per
//! channel and concatenates them (hundreds of small ops per layer in EfficientNet), so on
//! the CPU this op loops directly: one work unit per (image, channel) plane, spread over
//! the current rayon pool; padding is never materialised (out-of-range taps are skipped).

use super::conv::Geom;
use super::{Grads, Kernel, Op, needs_grad, output};
use candle_core::{Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Depthwise convolution of `x` (B×C×H×W) with `w` (C×1×k×k), stride `stride`, padding
/// `pad_before` rows/columns above and left and enough after that the output is
/// `out_h × out_w`. Other devices and dtypes run Candle's grouped conv on a padded input.
pub fn depthwise_conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    pad_before: (usize, usize),
    out_hw: (usize, usize),
) -> Result<Tensor> {
    let (_, c, h, wd) = x.dims4()?;
    let (co, one, k, k2) = w.dims4()?;
    if co != c || one != 1 || k != k2 || stride == 0 {
        candle_core::bail!(
            "depthwise conv: weight {:?} does not fit input {:?} (stride {stride})",
            w.dims(),
            x.dims()
        );
    }
    let (oh, ow) = out_hw;
    let (pt, pl) = pad_before;
    if oh == 0 || ow == 0 || (oh - 1) * stride + k < pt + 1 || (ow - 1) * stride + k < pl + 1 {
        candle_core::bail!("depthwise conv: output {oh}×{ow} does not fit input {h}×{wd}");
    }
    if !(super::on_fast_path(x) && super::on_fast_path(w)) {
        let pb = ((oh - 1) * stride + k).saturating_sub(h + pt);
        let pr = ((ow - 1) * stride + k).saturating_sub(wd + pl);
        let xp = x.pad_with_zeros(2, pt, pb)?.pad_with_zeros(3, pl, pr)?;
        return xp.conv2d(w, 0, stride, 1, c);
    }
    let op = Depthwise {
        g: Geom {
            b: x.dims()[0],
            c,
            h,
            w: wd,
            co: c,
            kh: k,
            kw: k,
            stride,
            pt,
            pl,
            oh,
            ow,
        },
    };
    x.contiguous()?.apply_op2(&w.contiguous()?, Op(op))
}

impl Geom {
    /// Apply `f(out_index, in_index, tap)` over every valid (output, tap) pair of one plane,
    /// in an order that keeps the innermost loop on contiguous output columns.
    #[inline]
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
        let k = self.kh;
        for ky in 0..k {
            for oy in 0..self.oh {
                let Some(iy) = self.iy(oy, ky) else { continue };
                for kx in 0..k {
                    let (lo, hi) = self.ox_range(kx);
                    if lo < hi {
                        // f(out row start, in row start, tap, lo, hi)
                        f(oy * self.ow, iy * self.w + kx, ky * k + kx, lo, hi);
                    }
                }
            }
        }
    }
}

/// Which way a pass moves values through the filter.
#[derive(Clone, Copy, PartialEq)]
enum Flow {
    /// Each output value gathers its input window (the forward pass).
    Gather,
    /// Each output gradient is scattered back over its input window (the input gradient).
    Scatter,
}

/// One pass over every (image, channel) plane in parallel, from `src` (input planes when
/// gathering, output-gradient planes when scattering) through each channel's filter `w`.
fn plane_taps(g: &Geom, src: &[f32], w: &[f32], flow: Flow) -> Vec<f32> {
    let (plane_in, plane_out, kk, s) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw, g.stride);
    let (src_plane, dst_plane) = match flow {
        Flow::Gather => (plane_in, plane_out),
        Flow::Scatter => (plane_out, plane_in),
    };
    let gather = flow == Flow::Gather;
    let mut dst = vec![0f32; g.b * g.c * dst_plane];
    dst.par_chunks_mut(dst_plane)
        .enumerate()
        .for_each(|(bc, d)| {
            let c = bc % g.c;
            let sp = &src[bc * src_plane..(bc + 1) * src_plane];
            let wk = &w[c * kk..(c + 1) * kk];
            g.for_each_tap(|o0, i0, k, lo, hi| {
                let wv = wk[k];
                // Output columns o..o + n read input columns i, i + s, … (ox·s + kx − pl).
                let (o, i, n) = (o0 + lo, i0 + lo * s - g.pl, hi - lo);
                if s == 1 {
                    let (dr, sr) = if gather {
                        (&mut d[o..o + n], &sp[i..i + n])
                    } else {
                        (&mut d[i..i + n], &sp[o..o + n])
                    };
                    for (a, &v) in dr.iter_mut().zip(sr) {
                        *a += wv * v;
                    }
                } else {
                    for j in 0..n {
                        let (di, si) = if gather {
                            (o + j, i + j * s)
                        } else {
                            (i + j * s, o + j)
                        };
                        d[di] += wv * sp[si];
                    }
                }
            });
        });
    dst
}

fn forward(g: &Geom, x: &[f32], w: &[f32]) -> Vec<f32> {
    plane_taps(g, x, w, Flow::Gather)
}

/// Input gradient: each plane scatters its output gradient back through its filter.
fn grad_input(g: &Geom, dy: &[f32], w: &[f32]) -> Vec<f32> {
    plane_taps(g, dy, w, Flow::Scatter)
}

/// Weight gradient: one work unit per channel, summing over the batch.
fn grad_weight(g: &Geom, dy: &[f32], x: &[f32]) -> Vec<f32> {
    let (plane_in, plane_out, kk) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let mut dw = vec![0f32; g.c * kk];
    dw.par_chunks_mut(kk).enumerate().for_each(|(c, dwk)| {
        let s = g.stride;
        for b in 0..g.b {
            let bc = b * g.c + c;
            let xin = &x[bc * plane_in..(bc + 1) * plane_in];
            let dout = &dy[bc * plane_out..(bc + 1) * plane_out];
            g.for_each_tap(|o0, i0, tap, lo, hi| {
                let base = i0 + lo * s - g.pl;
                let drow = &dout[o0 + lo..o0 + hi];
                let acc: f32 = if s == 1 {
                    drow.iter()
                        .zip(&xin[base..base + (hi - lo)])
                        .map(|(a, b)| a * b)
                        .sum()
                } else {
                    drow.iter()
                        .enumerate()
                        .map(|(j, &v)| v * xin[base + j * s])
                        .sum()
                };
                dwk[tap] += acc;
            });
        }
    });
    dw
}

struct Depthwise {
    g: Geom,
}

impl Kernel<2> for Depthwise {
    const NAME: &'static str = "depthwise-conv2d";

    fn forward(&self, [(x, _), (w, _)]: [(&[f32], &Layout); 2]) -> Result<(Vec<f32>, Shape)> {
        let g = &self.g;
        output(forward(g, x, w), (g.b, g.c, g.oh, g.ow))
    }

    fn backward(&self, [x, w]: [&Tensor; 2], _res: &Tensor, grad: &Tensor) -> Grads<2> {
        let g = &self.g;
        let dy: Vec<f32> = grad.contiguous()?.flatten_all()?.to_vec1()?;
        // Each gradient needs the other input's values.
        let grad_of = |t: &Tensor, other: &Tensor, f: &dyn Fn(&[f32]) -> Vec<f32>| {
            if !needs_grad(t) {
                return Ok(None);
            }
            let v: Vec<f32> = other.flatten_all()?.to_vec1()?;
            Tensor::from_vec(f(&v), t.dims(), t.device()).map(Some)
        };
        let dx = grad_of(x, w, &|wv| grad_input(g, &dy, wv))?;
        let dw = grad_of(w, x, &|xv| grad_weight(g, &dy, xv))?;
        Ok([dx, dw])
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_same_gradients, max_diff, random};
    use super::*;
    use candle_core::Var;

    /// Candle's grouped conv on an explicitly padded input, forward and both gradients.
    #[test]
    fn depthwise_matches_candles_grouped_conv_with_same_padding() {
        // (batch, channels, height, width, kernel, stride)
        let cases = [
            (2, 3, 7, 7, 3, 1),
            (1, 4, 8, 6, 3, 2),
            (3, 2, 9, 9, 5, 2),
            (2, 5, 5, 4, 5, 1),
            (1, 2, 1, 3, 3, 2),
            (2, 3, 6, 6, 1, 1),
        ];
        for (i, &(b, c, h, w, k, s)) in cases.iter().enumerate() {
            let seed = 10 * i as u64;
            let x = Var::from_tensor(&random(&[b, c, h, w], seed)).unwrap();
            let wt = Var::from_tensor(&random(&[c, 1, k, k], seed + 1)).unwrap();
            let pad = |n: usize| {
                let out = n.div_ceil(s);
                let total = ((out - 1) * s + k).saturating_sub(n);
                (out, total / 2, total - total / 2)
            };
            let ((oh, pt, pb), (ow, pl, pr)) = (pad(h), pad(w));
            let ours = depthwise_conv2d(&x, &wt, s, (pt, pl), (oh, ow)).unwrap();
            let reference = x
                .pad_with_zeros(2, pt, pb)
                .unwrap()
                .pad_with_zeros(3, pl, pr)
                .unwrap()
                .conv2d(&wt, 0, s, 1, c)
                .unwrap();
            let case = (b, c, h, w, k, s);
            let d = max_diff(&ours, &reference);
            assert!(d < 2e-5, "{case:?} forward: {d}");
            let vars = [("input", &x), ("weight", &wt)];
            assert_same_gradients(&format!("{case:?}"), (&ours, &reference), seed + 2, &vars);
        }
    }
}
