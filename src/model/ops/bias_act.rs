//! A per-channel bias followed by an optional ReLU6, in one pass over a B×C×H×W tensor:
//! with batch-norm folded into the preceding convolution (eval mode, frozen stages) this is
//! all that is left of "batch-norm + ReLU6", instead of five of Candle's elementwise
//! passes (whose thread barrier also spins hard on a busy 2-core machine). The backward
//! pass (rarely needed: only when an eval-mode pass is differentiated) uses Candle's ops.

use super::{contiguous_f32, needs_grad, output};
use candle_core::{CpuStorage, CustomOp2, D, Layout, Result, Shape, Tensor};
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
        .apply_op2(&bias.contiguous()?, BiasAct { relu6 })
}

struct BiasAct {
    relu6: bool,
}

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-relu6"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "bias_act")?;
        let b = contiguous_f32(s2, l2, "bias_act")?;
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

    fn bwd(
        &self,
        x: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
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
        Ok((dx, db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn bias_relu6_matches_candles_ops_forward_and_backward() {
        let x = Var::from_tensor(
            &Tensor::arange(0f32, 2.0 * 3.0 * 4.0 * 5.0, &Device::Cpu)
                .unwrap()
                .reshape((2, 3, 4, 5))
                .unwrap()
                .affine(0.11, -3.0)
                .unwrap(),
        )
        .unwrap();
        let b =
            Var::from_tensor(&Tensor::new(&[0.5f32, -1.0, 2.0], &Device::Cpu).unwrap()).unwrap();
        let r = (Tensor::arange(0f32, 120.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4, 5))
            .unwrap()
            * 0.01)
            .unwrap()
            .cos()
            .unwrap();
        for relu6 in [true, false] {
            let ours = bias_act(&x, &b, relu6).unwrap();
            let y = x.broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap()).unwrap();
            let reference = if relu6 {
                y.clamp(0f32, 6f32).unwrap()
            } else {
                y
            };
            let d = (&ours - &reference)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
            let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&reference * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &b] {
                let d = (g1.get(v).unwrap() - g2.get(v).unwrap())
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap();
                assert!(d.to_scalar::<f32>().unwrap() < 1e-5, "relu6 {relu6}");
            }
        }
    }
}
