//! 2-D convolution (NCHW, square stride and padding, no dilation or groups) by im2col and
//! GEMM, forward and backward. Images are taken in groups so that every GEMM has at least
//! ~256 columns (late ResNet stages have only a few output positions per image), and the
//! groups are spread over the rayon pool. The backward pass computes the weight and bias
//! gradients from the same im2col buffers, and the input gradient (Wᵀ·dY, then col2im)
//! only when the input needs one — never for the image or a frozen stage's output.

use super::gemm::{MatMut, MatRef, Parallelism, matmul, pool_parallelism};
use super::{contiguous_f32, needs_grad, output, threads, with_scratch};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// Convolve `x` (B×C×H×W) with `w` (Co×C×kh×kw), add `bias` (Co) if given. Uses the CPU
/// kernels of this module for `f32` CPU tensors and Candle's `conv2d` elsewhere.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if !(super::on_fast_path(x) && super::on_fast_path(w)) {
        let y = x.conv2d(w, padding, stride, 1, 1)?;
        return match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        };
    }
    let op = Conv2dOp { stride, padding };
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match bias {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op),
        None => x.apply_op2(&w, op),
    }
}

/// `relu(max_pool2d(conv2d(x, w) + bias, 2))` as one op on the CPU: the full-size conv
/// output is never stored (each group of images is pooled while its product is in cache),
/// and the backward pass routes each gradient straight to its window's maximum.
pub fn conv2d_pool2_relu(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if !(super::on_fast_path(x) && super::on_fast_path(w)) {
        return conv2d(x, w, bias, stride, padding)?.max_pool2d(2)?.relu();
    }
    let op = Conv2dPoolReluOp {
        conv: Conv2dOp { stride, padding },
        argmax: Mutex::new(Vec::new()),
    };
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match bias {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op),
        None => x.apply_op2(&w, op),
    }
}

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geom {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn new(x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[b, c, h, wd], &[co, ci, kh, kw]) = (x, w) else {
            candle_core::bail!("conv2d: expected 4-D input and weight, got {x:?} and {w:?}");
        };
        if c != ci {
            candle_core::bail!("conv2d: input has {c} channels, weight expects {ci}");
        }
        if stride == 0 || h + 2 * pad < kh || wd + 2 * pad < kw {
            candle_core::bail!(
                "conv2d: kernel {kh}×{kw} (stride {stride}, padding {pad}) does not fit {h}×{wd}"
            );
        }
        Ok(Self {
            b,
            c,
            h,
            w: wd,
            co,
            kh,
            kw,
            stride,
            pad,
            oh: (h + 2 * pad - kh) / stride + 1,
            ow: (wd + 2 * pad - kw) / stride + 1,
        })
    }

    /// Rows of the im2col matrix (the GEMM's inner dimension).
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output positions per image.
    fn n(&self) -> usize {
        self.oh * self.ow
    }

    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.co * self.n()
    }

    /// A 1×1, stride-1, unpadded convolution: the image already is its im2col matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    /// Images per GEMM: enough for ~256 columns, at most ~8 MB of im2col, and no more
    /// than an even share of the batch per thread.
    fn group(&self) -> usize {
        let n = self.n().max(1);
        let wanted = 256usize.div_ceil(n);
        let by_memory = ((1 << 21) / (self.k() * n).max(1)).max(1);
        let share = self.b.div_ceil(threads()).max(1);
        wanted.min(by_memory).min(share).max(1)
    }

    /// Valid output columns `[lo, hi)` for kernel column `j`: those reading inside the row.
    fn ox_range(&self, j: usize) -> (usize, usize) {
        let s = self.stride;
        let lo = self.pad.saturating_sub(j).div_ceil(s).min(self.ow);
        let hi = if self.w + self.pad > j {
            (self.w + self.pad - j).div_ceil(s).min(self.ow)
        } else {
            0
        };
        (lo, hi.max(lo))
    }

    /// Input row read by output row `oy` for kernel row `i`, if inside the image.
    fn iy(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride + i)
            .checked_sub(self.pad)
            .filter(|&y| y < self.h)
    }
}

/// Write one image's im2col matrix into `cols`: row `(c, i, j)` starts at
/// `row * ld + off` and holds the `oh × ow` input values under that kernel tap.
fn im2col(g: &Geom, x: &[f32], cols: &mut [f32], ld: usize, off: usize) {
    let (n, s) = (g.n(), g.stride);
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let dst = &mut cols[row * ld + off..row * ld + off + n];
                let (lo, hi) = g.ox_range(j);
                for oy in 0..g.oh {
                    let d = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                    let Some(iy) = g.iy(oy, i) else {
                        d.fill(0.0);
                        continue;
                    };
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    d[..lo].fill(0.0);
                    d[hi..].fill(0.0);
                    if lo < hi {
                        // ix = ox·s + j − pad, valid for lo ≤ ox < hi.
                        let x0 = lo * s + j - g.pad;
                        if s == 1 {
                            d[lo..hi].copy_from_slice(&src[x0..x0 + hi - lo]);
                        } else {
                            for (k, v) in d[lo..hi].iter_mut().enumerate() {
                                *v = src[x0 + k * s];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Add one image's im2col-shaped gradient back onto its input gradient `dx` (the adjoint
/// of [`im2col`]).
fn col2im(g: &Geom, cols: &[f32], ld: usize, off: usize, dx: &mut [f32]) {
    let (n, s) = (g.n(), g.stride);
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let src = &cols[row * ld + off..row * ld + off + n];
                let (lo, hi) = g.ox_range(j);
                if lo >= hi {
                    continue;
                }
                for oy in 0..g.oh {
                    let Some(iy) = g.iy(oy, i) else { continue };
                    let d = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let srow = &src[oy * g.ow + lo..oy * g.ow + hi];
                    let x0 = lo * s + j - g.pad;
                    if s == 1 {
                        for (dv, sv) in d[x0..x0 + hi - lo].iter_mut().zip(srow) {
                            *dv += sv;
                        }
                    } else {
                        for (k, sv) in srow.iter().enumerate() {
                            d[x0 + k * s] += sv;
                        }
                    }
                }
            }
        }
    }
}

/// Copy the gradients of `nb` images (each `co × n`) side by side into `dst` (`co × nb·n`).
fn gather_columns(g: &Geom, dy: &[f32], nb: usize, dst: &mut [f32]) {
    let (n, ld) = (g.n(), nb * g.n());
    for img in 0..nb {
        for co in 0..g.co {
            let src = &dy[img * g.out_len() + co * n..img * g.out_len() + (co + 1) * n];
            dst[co * ld + img * n..co * ld + (img + 1) * n].copy_from_slice(src);
        }
    }
}

/// Run `unit(first_image, images, gemm_parallelism)` over groups of `group` images: the
/// groups in parallel with single-threaded GEMMs when there are enough of them, else one
/// after another with a parallel GEMM.
fn spread_units<T: Send>(
    g: &Geom,
    group: usize,
    out: &mut [T],
    out_per_image: usize,
    unit: impl Fn(usize, usize, &mut [T], Parallelism) + Sync,
) {
    let units = g.b.div_ceil(group);
    let chunk = (group * out_per_image).max(1);
    if units >= threads() && threads() > 1 {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(u, o)| unit(u * group, o.len() / out_per_image, o, Parallelism::None));
    } else {
        let par = pool_parallelism();
        for (u, o) in out.chunks_mut(chunk).enumerate() {
            unit(u * group, o.len() / out_per_image, o, par);
        }
    }
}

/// The convolution (without bias) of `nb` images as a `co × nb·n` product, handed to
/// `then` with its row stride; the product lives in a per-thread scratch buffer.
fn product<R>(
    g: &Geom,
    xs: &[f32],
    nb: usize,
    w: &[f32],
    par: Parallelism,
    then: impl FnOnce(&[f32], usize) -> R,
) -> R {
    let (k, co, ld) = (g.k(), g.co, nb * g.n());
    let wm = MatRef::new(w, co, k);
    if nb == 1 && g.pointwise() {
        return with_scratch(co * ld, |prod| {
            matmul(
                MatMut::new(prod, co, ld),
                wm,
                MatRef::new(xs, k, ld),
                false,
                par,
            );
            then(prod, ld)
        });
    }
    with_scratch(k * ld + co * ld, |buf| {
        let (cols, prod) = buf.split_at_mut(k * ld);
        for img in 0..nb {
            im2col(g, &xs[img * g.in_len()..], cols, ld, img * g.n());
        }
        matmul(
            MatMut::new(prod, co, ld),
            wm,
            MatRef::new(cols, k, ld),
            false,
            par,
        );
        then(prod, ld)
    })
}

fn forward(g: &Geom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let n = g.n();
    let mut y = vec![0f32; g.b * g.out_len()];
    spread_units(g, g.group(), &mut y, g.out_len(), |first, nb, y, par| {
        let xs = &x[first * g.in_len()..(first + nb) * g.in_len()];
        product(g, xs, nb, w, par, |prod, ld| {
            for (img, y) in y.chunks_mut(g.out_len()).enumerate() {
                for (c, row) in y.chunks_mut(n).enumerate() {
                    let bv = bias.map_or(0.0, |b| b[c]);
                    for (v, p) in row.iter_mut().zip(&prod[c * ld + img * n..]) {
                        *v = p + bv;
                    }
                }
            }
        })
    });
    y
}

/// Pooled output side for a conv output side (2×2 windows, odd edge dropped).
fn pooled(s: usize) -> usize {
    s / 2
}

/// `relu(max_pool2x2(conv + bias))`, and for every output which of its four window
/// positions (0‥3, row-major) held the maximum.
fn forward_pool2_relu(g: &Geom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> (Vec<f32>, Vec<u8>) {
    let (n, ow) = (g.n(), g.ow);
    let (ph, pw) = (pooled(g.oh), pooled(g.ow));
    let out_len = g.co * ph * pw;
    let mut y = vec![0f32; g.b * out_len];
    let mut arg = vec![0u8; g.b * out_len];
    let mut pairs: Vec<(&mut [f32], &mut [u8])> = y
        .chunks_mut(out_len.max(1))
        .zip(arg.chunks_mut(out_len.max(1)))
        .collect();
    spread_units(g, g.group(), &mut pairs, 1, |first, nb, pairs, par| {
        let xs = &x[first * g.in_len()..(first + nb) * g.in_len()];
        product(g, xs, nb, w, par, |prod, ld| {
            for (img, (y, arg)) in pairs.iter_mut().enumerate() {
                for c in 0..g.co {
                    let plane = &prod[c * ld + img * n..c * ld + (img + 1) * n];
                    let bv = bias.map_or(0.0, |b| b[c]);
                    let out = &mut y[c * ph * pw..(c + 1) * ph * pw];
                    let at = &mut arg[c * ph * pw..(c + 1) * ph * pw];
                    for py in 0..ph {
                        let r0 = &plane[2 * py * ow..(2 * py + 1) * ow];
                        let r1 = &plane[(2 * py + 1) * ow..(2 * py + 2) * ow];
                        for px in 0..pw {
                            let cand = [r0[2 * px], r0[2 * px + 1], r1[2 * px], r1[2 * px + 1]];
                            let (mut m, mut a) = (cand[0], 0u8);
                            for (i, &v) in cand.iter().enumerate().skip(1) {
                                if v > m {
                                    (m, a) = (v, i as u8);
                                }
                            }
                            out[py * pw + px] = (m + bv).max(0.0);
                            at[py * pw + px] = a;
                        }
                    }
                }
            }
        })
    });
    (y, arg)
}

/// The gradient of the conv output from that of the pooled output: each pooled gradient
/// goes to its window's maximum, unless the ReLU cut it off.
fn unpool2_relu(g: &Geom, y: &[f32], dy: &[f32], arg: &[u8]) -> Vec<f32> {
    let (ph, pw, ow) = (pooled(g.oh), pooled(g.ow), g.ow);
    let plane = (ph * pw).max(1);
    let mut d = vec![0f32; g.b * g.out_len()];
    d.par_chunks_mut(g.n().max(1))
        .zip(
            y.par_chunks(plane)
                .zip(dy.par_chunks(plane))
                .zip(arg.par_chunks(plane)),
        )
        .with_min_len(16)
        .for_each(|(d, ((y, dy), arg))| {
            for py in 0..ph {
                for px in 0..pw {
                    let o = py * pw + px;
                    if y[o] > 0.0 {
                        let a = arg[o] as usize;
                        d[(2 * py + a / 2) * ow + 2 * px + a % 2] = dy[o];
                    }
                }
            }
        });
    d
}

/// Weight gradient (`co × k`) followed by the bias gradient (`co`).
fn weight_grad(g: &Geom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (k, n, co) = (g.k(), g.n(), g.co);
    let group = g.group();
    let units = g.b.div_ceil(group);
    // One partial sum per part of the batch, added up at the end.
    let accumulate = |units_range: std::ops::Range<usize>, par: Parallelism| -> Vec<f32> {
        let mut acc = vec![0f32; co * k + co];
        let (dw, db) = acc.split_at_mut(co * k);
        for u in units_range {
            let first = u * group;
            let nb = group.min(g.b - first);
            let xs = &x[first * g.in_len()..(first + nb) * g.in_len()];
            let dys = &dy[first * g.out_len()..(first + nb) * g.out_len()];
            for img in dys.chunks(g.out_len()) {
                for (d, row) in db.iter_mut().zip(img.chunks(n)) {
                    *d += row.iter().sum::<f32>();
                }
            }
            let dwm = MatMut::new(dw, co, k);
            if nb == 1 && g.pointwise() {
                matmul(
                    dwm,
                    MatRef::new(dys, co, n),
                    MatRef::new(xs, k, n).t(),
                    true,
                    par,
                );
            } else if nb == 1 {
                with_scratch(k * n, |cols| {
                    im2col(g, xs, cols, n, 0);
                    matmul(
                        dwm,
                        MatRef::new(dys, co, n),
                        MatRef::new(cols, k, n).t(),
                        true,
                        par,
                    );
                });
            } else {
                let ld = nb * n;
                with_scratch(k * ld + co * ld, |buf| {
                    let (cols, dyg) = buf.split_at_mut(k * ld);
                    for img in 0..nb {
                        im2col(g, &xs[img * g.in_len()..], cols, ld, img * n);
                    }
                    gather_columns(g, dys, nb, dyg);
                    let a = MatRef::new(dyg, co, ld);
                    matmul(dwm, a, MatRef::new(cols, k, ld).t(), true, par);
                });
            }
        }
        acc
    };
    let parts = threads().min(units);
    if parts > 1 {
        let per = units.div_ceil(parts);
        let partials: Vec<Vec<f32>> = (0..parts)
            .into_par_iter()
            .map(|p| accumulate(p * per..((p + 1) * per).min(units), Parallelism::None))
            .collect();
        let mut iter = partials.into_iter();
        let mut total = iter.next().unwrap_or_default();
        for part in iter {
            total.iter_mut().zip(&part).for_each(|(t, v)| *t += v);
        }
        total
    } else {
        accumulate(0..units, pool_parallelism())
    }
}

fn input_grad(g: &Geom, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (k, n, co) = (g.k(), g.n(), g.co);
    let wt = MatRef::new(w, co, k).t();
    let mut dx = vec![0f32; g.b * g.in_len()];
    let group = g.group();
    spread_units(g, group, &mut dx, g.in_len(), |first, nb, dx, par| {
        let dys = &dy[first * g.out_len()..(first + nb) * g.out_len()];
        if nb == 1 && g.pointwise() {
            matmul(
                MatMut::new(dx, k, n),
                wt,
                MatRef::new(dys, co, n),
                false,
                par,
            );
        } else if nb == 1 {
            with_scratch(k * n, |cols| {
                matmul(
                    MatMut::new(cols, k, n),
                    wt,
                    MatRef::new(dys, co, n),
                    false,
                    par,
                );
                col2im(g, cols, n, 0, dx);
            });
        } else {
            let ld = nb * n;
            with_scratch(k * ld + co * ld, |buf| {
                let (cols, dyg) = buf.split_at_mut(k * ld);
                gather_columns(g, dys, nb, dyg);
                matmul(
                    MatMut::new(cols, k, ld),
                    wt,
                    MatRef::new(dyg, co, ld),
                    false,
                    par,
                );
                for img in 0..nb {
                    col2im(g, cols, ld, img * n, &mut dx[img * g.in_len()..]);
                }
            });
        }
    });
    dx
}

/// The convolution as a Candle op: `(x, w)` or `(x, w, bias)`.
#[derive(Clone, Copy, Debug)]
struct Conv2dOp {
    stride: usize,
    padding: usize,
}

impl Conv2dOp {
    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(x.1.dims(), w.1.dims(), self.stride, self.padding)?;
        let xs = contiguous_f32(x.0, x.1, "conv2d")?;
        let ws = contiguous_f32(w.0, w.1, "conv2d")?;
        let bs = match bias {
            Some((s, l)) => {
                let b = contiguous_f32(s, l, "conv2d")?;
                if b.len() != g.co {
                    candle_core::bail!("conv2d: bias has {} values for {} channels", b.len(), g.co);
                }
                Some(b)
            }
            None => None,
        };
        output(forward(&g, xs, ws, bs), (g.b, g.co, g.oh, g.ow))
    }

    /// Gradients for `x`, `w` and (when `with_bias`) the bias, each only where needed.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias_needs_grad: bool,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = if needs_grad(x) {
            let op = InputGradOp {
                conv: *self,
                input: x.dims().to_vec(),
            };
            Some(w.apply_op2_no_bwd(&grad, &op)?)
        } else {
            None
        };
        let (dw, db) = if needs_grad(w) || bias_needs_grad {
            let both = x.apply_op2_no_bwd(
                &grad,
                &WeightGradOp {
                    conv: *self,
                    weight: w.dims().to_vec(),
                },
            )?;
            let co = w.dim(0)?;
            let kw = w.elem_count();
            (
                Some(both.narrow(0, 0, kw)?.reshape(w.shape())?),
                Some(both.narrow(0, kw, co)?),
            )
        } else {
            (None, None)
        };
        Ok((dx, dw, db.filter(|_| bias_needs_grad)))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.grads(x, w, false, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "fast-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.grads(x, w, needs_grad(b), grad)
    }
}

/// [`conv2d_pool2_relu`] as a Candle op; the forward pass leaves the window positions of
/// the maxima here for the backward pass.
struct Conv2dPoolReluOp {
    conv: Conv2dOp,
    argmax: Mutex<Vec<u8>>,
}

impl Conv2dPoolReluOp {
    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let c = self.conv;
        let g = Geom::new(x.1.dims(), w.1.dims(), c.stride, c.padding)?;
        if g.oh < 2 || g.ow < 2 {
            candle_core::bail!(
                "conv2d + max-pool: {}×{} output is too small to pool",
                g.oh,
                g.ow
            );
        }
        let xs = contiguous_f32(x.0, x.1, "conv2d")?;
        let ws = contiguous_f32(w.0, w.1, "conv2d")?;
        let bs = match bias {
            Some((s, l)) => Some(contiguous_f32(s, l, "conv2d")?).filter(|b| b.len() == g.co),
            None => None,
        };
        if bias.is_some() && bs.is_none() {
            candle_core::bail!("conv2d: bias does not have {} values", g.co);
        }
        let (y, arg) = forward_pool2_relu(&g, xs, ws, bs);
        *self
            .argmax
            .lock()
            .map_err(|_| candle_core::Error::Msg("conv2d + max-pool: poisoned".into()))? = arg;
        output(y, (g.b, g.co, pooled(g.oh), pooled(g.ow)))
    }

    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias_needs_grad: bool,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = self.conv;
        let g = Geom::new(x.dims(), w.dims(), c.stride, c.padding)?;
        let argmax = self
            .argmax
            .lock()
            .map_err(|_| candle_core::Error::Msg("conv2d + max-pool: poisoned".into()))?;
        let d_conv = res.apply_op2_no_bwd(
            &grad.contiguous()?,
            &UnpoolOp {
                geom: g,
                argmax: &argmax,
            },
        )?;
        drop(argmax);
        c.grads(x, w, bias_needs_grad, &d_conv)
    }
}

impl CustomOp2 for Conv2dPoolReluOp {
    fn name(&self) -> &'static str {
        "fast-conv2d-pool2-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.grads(x, w, false, res, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Conv2dPoolReluOp {
    fn name(&self) -> &'static str {
        "fast-conv2d-bias-pool2-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.grads(x, w, needs_grad(b), res, grad)
    }
}

/// `(pooled output, its gradient) → gradient of the conv output`.
struct UnpoolOp<'a> {
    geom: Geom,
    argmax: &'a [u8],
}

impl CustomOp2 for UnpoolOp<'_> {
    fn name(&self) -> &'static str {
        "fast-unpool2-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geom;
        let y = contiguous_f32(s1, l1, "max-pool backward")?;
        let dy = contiguous_f32(s2, l2, "max-pool backward")?;
        if y.len() != dy.len() || y.len() != self.argmax.len() {
            candle_core::bail!("max-pool backward: gradient shape {:?}", l2.dims());
        }
        output(unpool2_relu(g, y, dy, self.argmax), (g.b, g.co, g.oh, g.ow))
    }
}

/// `(x, dy) → [dw (co·k), db (co)]`.
struct WeightGradOp {
    conv: Conv2dOp,
    weight: Vec<usize>,
}

impl CustomOp2 for WeightGradOp {
    fn name(&self) -> &'static str {
        "fast-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.dims(), &self.weight, self.conv.stride, self.conv.padding)?;
        if l2.dims() != [g.b, g.co, g.oh, g.ow] {
            candle_core::bail!("conv2d backward: gradient shape {:?}", l2.dims());
        }
        let x = contiguous_f32(s1, l1, "conv2d backward")?;
        let dy = contiguous_f32(s2, l2, "conv2d backward")?;
        let out = weight_grad(&g, x, dy);
        let len = out.len();
        output(out, len)
    }
}

/// `(w, dy) → dx`.
struct InputGradOp {
    conv: Conv2dOp,
    input: Vec<usize>,
}

impl CustomOp2 for InputGradOp {
    fn name(&self) -> &'static str {
        "fast-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(&self.input, l1.dims(), self.conv.stride, self.conv.padding)?;
        if l2.dims() != [g.b, g.co, g.oh, g.ow] {
            candle_core::bail!("conv2d backward: gradient shape {:?}", l2.dims());
        }
        let w = contiguous_f32(s1, l1, "conv2d backward")?;
        let dy = contiguous_f32(s2, l2, "conv2d backward")?;
        output(input_grad(&g, w, dy), self.input.as_slice())
    }
}
