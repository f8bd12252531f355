//! A fully connected layer `y = x·Wᵀ + b`, optionally followed by a ReLU, as one op: the
//! bias and the ReLU cost no extra passes or graph nodes, the input gradient is skipped
//! when the input needs none (a frozen backbone's features), and the GEMMs run on the
//! current rayon pool (Candle's own matmul sizes its parallelism from the machine, not
//! from the pool it runs in).

use super::gemm::{MatMut, MatRef, matmul, pool_parallelism};
use super::{contiguous_f32, needs_grad, output};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, Layout, Result, Shape, Tensor};

/// `x·wᵀ + b` (then ReLU when `relu`) for `x` of shape B×I, `w` O×I, `b` O.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    if !(super::on_fast_path(x) && super::on_fast_path(w) && x.rank() == 2) {
        let y = x.broadcast_matmul(&w.t()?)?.broadcast_add(b)?;
        return if relu { y.relu() } else { Ok(y) };
    }
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, LinearOp { relu })
}

#[derive(Clone, Copy, Debug)]
struct LinearOp {
    relu: bool,
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fast-linear"
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
        let (&[n, i], &[o, wi], &[bo]) = (l1.dims(), l2.dims(), l3.dims()) else {
            candle_core::bail!(
                "linear: shapes {:?}, {:?}, {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        };
        if wi != i || bo != o {
            candle_core::bail!("linear: input {n}×{i}, weight {o}×{wi}, bias {bo}");
        }
        let x = contiguous_f32(s1, l1, "linear")?;
        let w = contiguous_f32(s2, l2, "linear")?;
        let b = contiguous_f32(s3, l3, "linear")?;
        let mut y = vec![0f32; n * o];
        matmul(
            MatMut::new(&mut y, n, o),
            MatRef::new(x, n, i),
            MatRef::new(w, o, i).t(),
            false,
            pool_parallelism(),
        );
        for row in y.chunks_mut(o.max(1)) {
            for (v, bv) in row.iter_mut().zip(b) {
                *v += bv;
                if self.relu {
                    *v = v.max(0.0);
                }
            }
        }
        output(y, (n, o))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = if self.relu {
            res.apply_op2_no_bwd(&grad.contiguous()?, &ReluMask)?
        } else {
            grad.contiguous()?
        };
        let dx = if needs_grad(x) {
            Some(dy.apply_op2_no_bwd(
                w,
                &MatMulOp {
                    ta: false,
                    tb: false,
                },
            )?)
        } else {
            None
        };
        let dw = if needs_grad(w) {
            Some(dy.apply_op2_no_bwd(
                x,
                &MatMulOp {
                    ta: true,
                    tb: false,
                },
            )?)
        } else {
            None
        };
        let db = if needs_grad(b) {
            Some(dy.sum(D::Minus2)?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

/// `(y, dy) → dy where y > 0, else 0`: the ReLU's backward from its output.
struct ReluMask;

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "fast-relu-mask"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(s1, l1, "relu backward")?;
        let dy = contiguous_f32(s2, l2, "relu backward")?;
        if y.len() != dy.len() {
            candle_core::bail!("relu backward: {:?} vs {:?}", l1.dims(), l2.dims());
        }
        let out = y
            .iter()
            .zip(dy)
            .map(|(&v, &g)| if v > 0.0 { g } else { 0.0 })
            .collect();
        output(out, l1.shape().clone())
    }
}

/// `op(a)·op(b)` for 2-D `a`, `b`, where `op` transposes when asked (no copy).
struct MatMulOp {
    ta: bool,
    tb: bool,
}

impl CustomOp2 for MatMulOp {
    fn name(&self) -> &'static str {
        "fast-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (&[ar, ac], &[br, bc]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!(
                "matmul: expected matrices, got {:?} and {:?}",
                l1.dims(),
                l2.dims()
            );
        };
        let a = MatRef::new(contiguous_f32(s1, l1, "matmul")?, ar, ac);
        let b = MatRef::new(contiguous_f32(s2, l2, "matmul")?, br, bc);
        let a = if self.ta { a.t() } else { a };
        let b = if self.tb { b.t() } else { b };
        if a.cols != b.rows {
            candle_core::bail!("matmul: {}×{} · {}×{}", a.rows, a.cols, b.rows, b.cols);
        }
        let mut out = vec![0f32; a.rows * b.cols];
        let (m, n) = (a.rows, b.cols);
        matmul(MatMut::new(&mut out, m, n), a, b, false, pool_parallelism());
        output(out, (m, n))
    }
}
