//! 2-D convolution (NCHW, square stride and padding, no dilation or groups) by im2col and
//! GEMM, forward and backward. Images are taken in groups so that every GEMM has at least
//! ~256 columns (late ResNet stages have only a few output positions per image), and the
//! groups are spread over the rayon pool. The backward pass computes the weight and bias
//! gradients from the same im2col buffers, and the input gradient (Wᵀ·dY, then col2im)
//! only when the input needs one — never for the image or a frozen stage's output.

use super::gemm::{MatMut, MatRef, Parallelism, matmul, pool_parallelism};
use super::{Grads, Kernel, Op, contiguous_f32, needs_grad, output, threads, with_scratch};
use candle_core::{Layout, Result, Shape, Tensor};
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
        Some(b) => x.apply_op3(&w, &b.contiguous()?, Op(op)),
        None => x.apply_op2(&w, Op(op)),
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
        Some(b) => x.apply_op3(&w, &b.contiguous()?, Op(op)),
        None => x.apply_op2(&w, Op(op)),
    }
}

/// Shapes of one convolution (the depthwise one too): input `b×c×h×w`, kernel `kh×kw`,
/// `pt` rows of zeros above and `pl` columns left (the padding below and right follows
/// from the output size `oh×ow`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Geom {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
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
            pt: pad,
            pl: pad,
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
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pt + self.pl == 0
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
    pub fn ox_range(&self, j: usize) -> (usize, usize) {
        let s = self.stride;
        let lo = self.pl.saturating_sub(j).div_ceil(s).min(self.ow);
        let hi = if self.w + self.pl > j {
            (self.w + self.pl - j).div_ceil(s).min(self.ow)
        } else {
            0
        };
        (lo, hi.max(lo))
    }

    /// Input row read by output row `oy` for kernel row `i`, if inside the image.
    pub fn iy(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride + i)
            .checked_sub(self.pt)
            .filter(|&y| y < self.h)
    }
}

/// `d.copy_from_slice(s)` for the short rows of im2col (a few to a few dozen values), in
/// fixed-size pieces: a `memcpy` call per row cost more than the copy itself.
#[inline(always)]
fn copy_short(d: &mut [f32], s: &[f32]) {
    let mut dc = d.chunks_exact_mut(8);
    let mut sc = s.chunks_exact(8);
    for (d8, s8) in (&mut dc).zip(&mut sc) {
        let d8: &mut [f32; 8] = d8.try_into().expect("chunk of 8");
        *d8 = s8.try_into().expect("chunk of 8");
    }
    for (dv, sv) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *dv = std::hint::black_box(*sv);
    }
}

/// Write one image's im2col matrix into `cols`: row `(c, i, j)` starts at
/// `row * ld + off` and holds the `oh × ow` input values under that kernel tap.
fn im2col(g: &Geom, x: &[f32], cols: &mut [f32], ld: usize, off: usize) {
    let (n, s) = (g.n(), g.stride);
    if s == 1 && g.pt + g.pl == 0 {
        // Every tap reads a full window: plain row copies, no edge handling.
        for c in 0..g.c {
            let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                let rows = &plane[i * g.w..];
                for j in 0..g.kw {
                    let row = (c * g.kh + i) * g.kw + j;
                    let dst = &mut cols[row * ld + off..row * ld + off + n];
                    for (d, src) in dst.chunks_exact_mut(g.ow).zip(rows.chunks(g.w)) {
                        copy_short(d, &src[j..j + g.ow]);
                    }
                }
            }
        }
        return;
    }
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
                        // ix = ox·s + j − pl, valid for lo ≤ ox < hi.
                        let x0 = lo * s + j - g.pl;
                        if s == 1 {
                            copy_short(&mut d[lo..hi], &src[x0..x0 + hi - lo]);
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
    if s == 1 && g.pt + g.pl == 0 {
        for c in 0..g.c {
            let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = (c * g.kh + i) * g.kw + j;
                    let src = &cols[row * ld + off..row * ld + off + n];
                    let rows = plane[i * g.w..].chunks_mut(g.w);
                    for (d, srow) in rows.zip(src.chunks_exact(g.ow)) {
                        for (dv, sv) in d[j..j + g.ow].iter_mut().zip(srow) {
                            *dv += sv;
                        }
                    }
                }
            }
        }
        return;
    }
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
                    let x0 = lo * s + j - g.pl;
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
    // A single image under a 1×1 stride-1 convolution is its own column matrix.
    let direct = nb == 1 && g.pointwise();
    let cols_len = if direct { 0 } else { k * ld };
    with_scratch(cols_len + co * ld, |buf| {
        let (cols, prod) = buf.split_at_mut(cols_len);
        let cols: &[f32] = if direct {
            xs
        } else {
            for img in 0..nb {
                im2col(g, &xs[img * g.in_len()..], cols, ld, img * g.n());
            }
            cols
        };
        let (wm, xm) = (MatRef::new(w, co, k), MatRef::new(cols, k, ld));
        matmul(MatMut::new(prod, co, ld), wm, xm, false, par);
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

/// Where the backward pass takes the gradient of the conv output from.
enum GradSource<'a> {
    /// The conv output's own gradient (B×co×oh×ow).
    Plain(&'a [f32]),
    /// The pooled output of [`forward_pool2_relu`], its gradient and its argmax: each
    /// pooled gradient goes to its window's maximum, unless the ReLU cut it off.
    Pooled {
        y: &'a [f32],
        dy: &'a [f32],
        arg: &'a [u8],
    },
}

impl GradSource<'_> {
    /// The conv-output gradients of images `first..first + nb`, side by side in `dst`
    /// (`co × nb·n`).
    fn columns(&self, g: &Geom, first: usize, nb: usize, dst: &mut [f32]) {
        let (n, ld) = (g.n(), nb * g.n());
        match *self {
            GradSource::Plain(dy) => {
                for img in 0..nb {
                    let src = &dy[(first + img) * g.out_len()..(first + img + 1) * g.out_len()];
                    for (c, row) in src.chunks(n).enumerate() {
                        dst[c * ld + img * n..c * ld + (img + 1) * n].copy_from_slice(row);
                    }
                }
            }
            GradSource::Pooled { y, dy, arg } => {
                let (ph, pw, ow) = (pooled(g.oh), pooled(g.ow), g.ow);
                dst.fill(0.0);
                for img in 0..nb {
                    for c in 0..g.co {
                        let base = ((first + img) * g.co + c) * ph * pw;
                        let out = &mut dst[c * ld + img * n..c * ld + (img + 1) * n];
                        for o in 0..ph * pw {
                            if y[base + o] > 0.0 {
                                let (py, px, a) = (o / pw, o % pw, arg[base + o] as usize);
                                out[(2 * py + a / 2) * ow + 2 * px + a % 2] = dy[base + o];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Gradients of the convolution in one pass over the batch: the input gradient when
/// `want_dx`, and `[dw (co·k) | db (co)]`. Each group of images has its output gradient
/// gathered once, its im2col matrix built once, and both GEMMs run while these are in
/// cache; each thread sums its own weight gradient, added up at the end.
fn backward(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    src: &GradSource,
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (k, n, co) = (g.k(), g.n(), g.co);
    let group = g.group();
    let units = g.b.div_ceil(group);
    let parts = threads().min(units).max(1);
    let per = units.div_ceil(parts);
    let part_len = per * group * g.in_len();
    let mut dx = vec![0f32; if want_dx { g.b * g.in_len() } else { 0 }];
    let wt = MatRef::new(w, co, k).t();
    let work = |part: usize, dx: &mut [f32], par: Parallelism| -> Vec<f32> {
        let mut acc = vec![0f32; co * k + co];
        let (dw, db) = acc.split_at_mut(co * k);
        for u in part * per..((part + 1) * per).min(units) {
            let first = u * group;
            let nb = group.min(g.b - first);
            let ld = nb * n;
            with_scratch(k * ld + co * ld, |buf| {
                let (cols, dyg) = buf.split_at_mut(k * ld);
                src.columns(g, first, nb, dyg);
                for (d, row) in db.iter_mut().zip(dyg.chunks(ld)) {
                    *d += row.iter().sum::<f32>();
                }
                for img in 0..nb {
                    im2col(g, &x[(first + img) * g.in_len()..], cols, ld, img * n);
                }
                let dygm = MatRef::new(dyg, co, ld);
                let colsm = MatRef::new(cols, k, ld).t();
                matmul(MatMut::new(dw, co, k), dygm, colsm, true, par);
                if want_dx {
                    // The im2col matrix is spent: reuse its buffer for the column gradient.
                    matmul(MatMut::new(cols, k, ld), wt, dygm, false, par);
                    let off = (first - part * per * group) * g.in_len();
                    for img in 0..nb {
                        col2im(g, cols, ld, img * n, &mut dx[off + img * g.in_len()..]);
                    }
                }
            });
        }
        acc
    };
    let partials: Vec<Vec<f32>> = if parts > 1 {
        let mut chunks: Vec<&mut [f32]> = if want_dx {
            dx.chunks_mut(part_len.max(1)).collect()
        } else {
            Vec::new()
        };
        chunks.resize_with(parts, Default::default);
        chunks
            .into_par_iter()
            .enumerate()
            .map(|(p, d)| work(p, d, Parallelism::None))
            .collect()
    } else {
        vec![work(0, &mut dx, pool_parallelism())]
    };
    let mut iter = partials.into_iter();
    let mut total = iter.next().unwrap_or_default();
    for part in iter {
        total.iter_mut().zip(&part).for_each(|(t, v)| *t += v);
    }
    (want_dx.then_some(dx), total)
}

/// Read access to a CPU tensor's contiguous `f32` values, for the backward passes.
struct View<'a>(candle_core::StorageRef<'a>, &'a Layout);

impl<'a> View<'a> {
    fn new(t: &'a Tensor) -> Self {
        let (s, l) = t.storage_and_layout();
        Self(s, l)
    }

    fn f32(&self) -> Result<&[f32]> {
        match &*self.0 {
            candle_core::Storage::Cpu(s) => contiguous_f32(s, self.1, "conv2d backward"),
            _ => candle_core::bail!("conv2d backward: expected a CPU tensor"),
        }
    }
}

/// Run [`backward`] on tensors and wrap its results as gradients for `x`, `w` and the bias.
fn grads(
    g: &Geom,
    x: &Tensor,
    w: &Tensor,
    bias_needs_grad: bool,
    src: impl FnOnce(
        &dyn Fn(&GradSource) -> Result<(Option<Vec<f32>>, Vec<f32>)>,
    ) -> Result<(Option<Vec<f32>>, Vec<f32>)>,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let want_dx = needs_grad(x);
    let want_w = needs_grad(w) || bias_needs_grad;
    if !want_dx && !want_w {
        return Ok((None, None, None));
    }
    let (xv, wv) = (View::new(x), View::new(w));
    let (xs, ws) = (xv.f32()?, wv.f32()?);
    let (dx, both) = src(&|s: &GradSource| Ok(backward(g, xs, ws, s, want_dx)))?;
    let dev = x.device();
    let dx = dx
        .map(|d| Tensor::from_vec(d, x.shape(), dev))
        .transpose()?;
    let kw = g.co * g.k();
    let both = Tensor::from_vec(both, kw + g.co, dev)?;
    let dw = if needs_grad(w) {
        Some(both.narrow(0, 0, kw)?.reshape(w.shape())?)
    } else {
        None
    };
    let db = if bias_needs_grad {
        Some(both.narrow(0, kw, g.co)?)
    } else {
        None
    };
    Ok((dx, dw, db))
}

/// A convolution kernel with an optional bias: a Candle op on `(x, w)` or `(x, w, bias)`.
trait ConvKernel {
    const NAME: &'static str;
    const NAME_WITH_BIAS: &'static str;

    fn geom(&self, x: &[usize], w: &[usize]) -> Result<Geom>;

    /// The output from contiguous input, weight and bias data.
    fn run(
        &self,
        g: &Geom,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<(Vec<f32>, Shape)>;

    /// Gradients for `x`, `w` and (when `bias_needs_grad`) the bias, each only where needed.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias_needs_grad: bool,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)>;

    fn fwd(
        &self,
        (x, xl): (&[f32], &Layout),
        (w, wl): (&[f32], &Layout),
        bias: Option<&[f32]>,
    ) -> Result<(Vec<f32>, Shape)> {
        let g = self.geom(xl.dims(), wl.dims())?;
        if let Some(b) = bias
            && b.len() != g.co
        {
            candle_core::bail!("conv2d: bias has {} values for {} channels", b.len(), g.co);
        }
        self.run(&g, x, w, bias)
    }
}

impl<C: ConvKernel> Kernel<2> for C {
    const NAME: &'static str = C::NAME;

    fn forward(&self, [x, w]: [(&[f32], &Layout); 2]) -> Result<(Vec<f32>, Shape)> {
        self.fwd(x, w, None)
    }

    fn backward(&self, [x, w]: [&Tensor; 2], res: &Tensor, grad: &Tensor) -> Grads<2> {
        let (dx, dw, _) = self.grads(x, w, false, res, grad)?;
        Ok([dx, dw])
    }
}

impl<C: ConvKernel> Kernel<3> for C {
    const NAME: &'static str = C::NAME_WITH_BIAS;

    fn forward(&self, [x, w, (b, _)]: [(&[f32], &Layout); 3]) -> Result<(Vec<f32>, Shape)> {
        self.fwd(x, w, Some(b))
    }

    fn backward(&self, [x, w, b]: [&Tensor; 3], res: &Tensor, grad: &Tensor) -> Grads<3> {
        let (dx, dw, db) = self.grads(x, w, needs_grad(b), res, grad)?;
        Ok([dx, dw, db])
    }
}

/// The convolution as a Candle op.
#[derive(Clone, Copy, Debug)]
struct Conv2dOp {
    stride: usize,
    padding: usize,
}

impl ConvKernel for Conv2dOp {
    const NAME: &'static str = "fast-conv2d";
    const NAME_WITH_BIAS: &'static str = "fast-conv2d-bias";

    fn geom(&self, x: &[usize], w: &[usize]) -> Result<Geom> {
        Geom::new(x, w, self.stride, self.padding)
    }

    fn run(
        &self,
        g: &Geom,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<(Vec<f32>, Shape)> {
        output(forward(g, x, w, bias), (g.b, g.co, g.oh, g.ow))
    }

    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias_needs_grad: bool,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geom(x.dims(), w.dims())?;
        let grad = grad.contiguous()?;
        if grad.dims() != [g.b, g.co, g.oh, g.ow] {
            candle_core::bail!("conv2d backward: gradient shape {:?}", grad.dims());
        }
        grads(&g, x, w, bias_needs_grad, |run| {
            let dv = View::new(&grad);
            run(&GradSource::Plain(dv.f32()?))
        })
    }
}

/// [`conv2d_pool2_relu`] as a Candle op; the forward pass leaves the window positions of
/// the maxima here for the backward pass.
struct Conv2dPoolReluOp {
    conv: Conv2dOp,
    argmax: Mutex<Vec<u8>>,
}

impl ConvKernel for Conv2dPoolReluOp {
    const NAME: &'static str = "fast-conv2d-pool2-relu";
    const NAME_WITH_BIAS: &'static str = "fast-conv2d-bias-pool2-relu";

    fn geom(&self, x: &[usize], w: &[usize]) -> Result<Geom> {
        self.conv.geom(x, w)
    }

    fn run(
        &self,
        g: &Geom,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<(Vec<f32>, Shape)> {
        if g.oh < 2 || g.ow < 2 {
            candle_core::bail!(
                "conv2d + max-pool: {}×{} output is too small to pool",
                g.oh,
                g.ow
            );
        }
        let (y, arg) = forward_pool2_relu(g, x, w, bias);
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
        let g = self.geom(x.dims(), w.dims())?;
        let argmax = self
            .argmax
            .lock()
            .map_err(|_| candle_core::Error::Msg("conv2d + max-pool: poisoned".into()))?;
        let (res, grad) = (res.contiguous()?, grad.contiguous()?);
        if res.elem_count() != argmax.len() || grad.elem_count() != argmax.len() {
            candle_core::bail!(
                "conv2d + max-pool backward: gradient shape {:?}",
                grad.dims()
            );
        }
        grads(&g, x, w, bias_needs_grad, |run| {
            let (yv, dv) = (View::new(&res), View::new(&grad));
            run(&GradSource::Pooled {
                y: yv.f32()?,
                dy: dv.f32()?,
                arg: &argmax,
            })
        })
    }
}
