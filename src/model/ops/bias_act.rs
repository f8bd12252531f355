//! A per-channel bias followed by an optional ReLU6, in one pass over a B×C×H×W tensor:
//! with batch-norm folded into the preceding convolution (eval mode, frozen stages) this is
//! all that is left of "batch-norm + ReLU6", instead of five of Candle's elementwise
//! passes (whose thread barrier also spins hard on a busy 2-core machine). The backward
//! pass (rarely needed: only when an eval-mode pass is differentiated) uses Candle's ops.

use super::{Grads, Kernel, Op, needs_grad, output};
use candle_core::{D, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `min(max(x + bias[c], 0), 6)` (or just `x + bias[c]` when `!relu6`) for `x` B×C×H×W.
pub fn bias_act(x: &Tensor, bias: &Tensor, relu6: bool) -> Result<Tensor> {
    let (_, c, _, _) = x.dims4()?;
    if bias.dims() != [c] {
        candle_core::bail!("bias_act: bias {:?} for {c} channels", bias.dims());
    }
    if !(super::on_fast_path(x) && super::on_fast_path(bias)) {
        let y = x.broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
        return if relu6 { y.clamp(0f32, 6f32) } else { Ok(y) };
    }
    x.contiguous()?
        .apply_op2(&bias.contiguous()?, Op(BiasAct { relu6 }))
}

struct BiasAct {
    relu6: bool,
}

impl Kernel<2> for BiasAct {
    const NAME: &'static str = "bias-relu6";

    fn forward(&self, [(x, l1), (b, _)]: [(&[f32], &Layout); 2]) -> Result<(Vec<f32>, Shape)> {
        let dims = l1.dims();
        let (c, plane) = (dims[1], dims[2] * dims[3]);
        let mut y = vec![0f32; x.len()];
        let relu6 = self.relu6;
        y.par_chunks_mut(plane.max(1))
            .zip(x.par_chunks(plane.max(1)))
            .enumerate()
            .for_each(|(bc, (yo, xi))| {
                let bv = b[bc % c];
                if relu6 {
                    for (o, &v) in yo.iter_mut().zip(xi) {
                        *o = (v + bv).clamp(0.0, 6.0);
                    }
                } else {
                    for (o, &v) in yo.iter_mut().zip(xi) {
                        *o = v + bv;
                    }
                }
            });
        output(y, dims)
    }

    fn backward(&self, [x, bias]: [&Tensor; 2], res: &Tensor, grad: &Tensor) -> Grads<2> {
        let dz = if self.relu6 {
            let inside =
                (res.gt(0f32)?.to_dtype(grad.dtype())? * res.lt(6f32)?.to_dtype(grad.dtype())?)?;
            (grad * inside)?
        } else {
            grad.clone()
        };
        let db = if needs_grad(bias) {
            Some(dz.sum(D::Minus1)?.sum(D::Minus1)?.sum(0)?)
        } else {
            None
        };
        let dx = needs_grad(x).then_some(dz);
        Ok([dx, db])
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_close, assert_same_gradients, random};
    use super::*;
    use candle_core::Var;

    #[test]
    fn bias_relu6_matches_candles_ops_forward_and_backward() {
        // Values in [−4, 4): some below 0, some above 6 after the bias.
        let x = Var::from_tensor(&(random(&[2, 3, 4, 5], 1) * 4.0).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[0.5f32, -1.0, 2.5], x.device()).unwrap()).unwrap();
        for relu6 in [true, false] {
            let ours = bias_act(&x, &b, relu6).unwrap();
            let y = x.broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap()).unwrap();
            let reference = if relu6 {
                y.clamp(0f32, 6f32).unwrap()
            } else {
                y
            };
            let what = format!("relu6 {relu6}");
            assert_close(&what, &ours, &reference);
            let vars = [("input", &x), ("bias", &b)];
            assert_same_gradients(&what, (&ours, &reference), 2, &vars);
        }
    }
}
