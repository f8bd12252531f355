//! A fully connected layer `y = x·Wᵀ + b`, optionally followed by a ReLU, as one op: the
//! bias and the ReLU cost no extra passes or graph nodes, the input gradient is skipped
//! when the input needs none (a frozen backbone's features), and the GEMMs run on the
//! current rayon pool (Candle's own matmul sizes its parallelism from the machine, not
//! from the pool it runs in).

use super::gemm::{MatMut, MatRef, matmul, pool_parallelism};
use super::{Grads, Kernel, Op, needs_grad, output};
use candle_core::{D, Layout, Result, Shape, Tensor};

/// `x·wᵀ + b` (then ReLU when `relu`) for `x` of shape B×I, `w` O×I, `b` O.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    if !(super::on_fast_path(x) && super::on_fast_path(w) && x.rank() == 2) {
        let y = x.broadcast_matmul(&w.t()?)?.broadcast_add(b)?;
        return if relu { y.relu() } else { Ok(y) };
    }
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, Op(LinearOp { relu }))
}

#[derive(Clone, Copy, Debug)]
struct LinearOp {
    relu: bool,
}

impl Kernel<3> for LinearOp {
    const NAME: &'static str = "fast-linear";

    fn forward(
        &self,
        [(x, l1), (w, l2), (b, l3)]: [(&[f32], &Layout); 3],
    ) -> Result<(Vec<f32>, Shape)> {
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

    fn backward(&self, [x, w, b]: [&Tensor; 3], res: &Tensor, grad: &Tensor) -> Grads<3> {
        let dy = if self.relu {
            res.apply_op2_no_bwd(&grad.contiguous()?, &Op(ReluMask))?
        } else {
            grad.contiguous()?
        };
        // dx = dy·W and dW = dyᵀ·x, each only where needed.
        let product = |of: &Tensor, with: &Tensor, ta: bool| -> Result<Option<Tensor>> {
            if !needs_grad(of) {
                return Ok(None);
            }
            let op = Op(MatMulOp { ta, tb: false });
            Ok(Some(dy.apply_op2_no_bwd(with, &op)?))
        };
        let db = if needs_grad(b) {
            Some(dy.sum(D::Minus2)?)
        } else {
            None
        };
        Ok([product(x, w, false)?, product(w, x, true)?, db])
    }
}

/// `(y, dy) → dy where y > 0, else 0`: the ReLU's backward from its output.
struct ReluMask;

impl Kernel<2> for ReluMask {
    const NAME: &'static str = "fast-relu-mask";

    fn forward(&self, [(y, l1), (dy, l2)]: [(&[f32], &Layout); 2]) -> Result<(Vec<f32>, Shape)> {
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

impl Kernel<2> for MatMulOp {
    const NAME: &'static str = "fast-matmul";

    fn forward(&self, [(a, l1), (b, l2)]: [(&[f32], &Layout); 2]) -> Result<(Vec<f32>, Shape)> {
        let (&[ar, ac], &[br, bc]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!(
                "matmul: expected matrices, got {:?} and {:?}",
                l1.dims(),
                l2.dims()
            );
        };
        let (a, b) = (MatRef::new(a, ar, ac), MatRef::new(b, br, bc));
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
