//! Fast CPU kernels for training, as Candle custom ops with their own backward passes:
//! convolution (im2col + GEMM, input gradient skipped when the input needs none), a fused
//! 2×2 max-pool + ReLU, a fully connected layer with fused bias (and ReLU), and a fused
//! AdamW update. Each public function takes the fast path only for `f32` tensors on the CPU;
//! on other devices it runs Candle's own ops, so GPU training never copies to the CPU.
//!
//! Threads: work is split over the *current* rayon pool (`rayon::current_num_threads`), so
//! a run inside a sized pool (the GUI's worker) stays inside it. Parallelism is taken at
//! one level at a time: either the batch is split over the pool and every GEMM runs
//! single-threaded, or (fewer work units than threads) the GEMM itself is parallel.

pub mod adamw;
pub mod bias_act;
pub mod conv;
pub mod depthwise;
mod gemm;
pub mod linear;
pub mod pool;
#[cfg(test)]
mod tests;

pub use adamw::FusedAdamW;
pub use bias_act::bias_act;
pub use conv::{conv2d, conv2d_pool2_relu};
pub use depthwise::depthwise_conv2d;
pub use linear::linear;
pub use pool::{max_pool2x2_relu, max_pool3x3s2};

use candle_core::{CpuStorage, DType, Layout, Result, Shape, Tensor};
use std::cell::RefCell;

/// Keep freed memory in the process (glibc on Linux; elsewhere nothing to do). A training
/// step allocates and frees several multi-megabyte buffers; with glibc's defaults they are
/// mapped and unmapped every step, and the page faults and TLB shootdowns run on the
/// thread that drives the step while the pool waits (measured: a small-CNN step at 2
/// threads took 33 ms instead of 39–47 ms with this). Process-wide and idempotent; the
/// heap then stays at its peak size.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            unsafe extern "C" {
                fn mallopt(param: i32, value: i32) -> i32;
            }
            const M_TRIM_THRESHOLD: i32 = -1;
            const M_MMAP_THRESHOLD: i32 = -3;
            // SAFETY: glibc's mallopt only changes allocator parameters; it may be called
            // at any time, from any thread.
            unsafe {
                mallopt(M_MMAP_THRESHOLD, 32 << 20);
                mallopt(M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

/// True when `t` can use the CPU kernels of this module.
pub fn on_fast_path(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// The `f32` data of a contiguous CPU tensor, from its storage and layout.
fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: expected a contiguous tensor"),
    }
}

/// A kernel's output: its data and shape.
fn output(data: Vec<f32>, shape: impl Into<Shape>) -> Result<(Vec<f32>, Shape)> {
    Ok((data, shape.into()))
}

/// A CPU kernel on `N` contiguous `f32` inputs with its backward pass. Wrapped in [`Op`] it
/// is one of Candle's custom ops (`CustomOp1/2/3`), so each kernel states only its name,
/// its forward pass on slices and its gradients, and Candle's storage plumbing lives here.
trait Kernel<const N: usize> {
    const NAME: &'static str;

    /// The output from each input's data and layout.
    fn forward(&self, inputs: [(&[f32], &Layout); N]) -> Result<(Vec<f32>, Shape)>;

    /// Each input's gradient (`None` where it needs none), from the inputs, the output and
    /// the output's gradient. Kernels that only run inside a backward pass have none.
    fn backward(&self, _inputs: [&Tensor; N], _output: &Tensor, _grad: &Tensor) -> Grads<N> {
        candle_core::bail!("{}: no backward pass", Self::NAME)
    }
}

/// Each input's gradient, `None` where it needs none.
type Grads<const N: usize> = Result<[Option<Tensor>; N]>;

/// A [`Kernel`] as a Candle custom op.
struct Op<K>(K);

impl<K> Op<K> {
    fn run<const N: usize>(
        &self,
        inputs: [(&CpuStorage, &Layout); N],
    ) -> Result<(CpuStorage, Shape)>
    where
        K: Kernel<N>,
    {
        let mut data = Vec::with_capacity(N);
        for (s, l) in inputs {
            data.push((contiguous_f32(s, l, K::NAME)?, l));
        }
        let Ok(data) = <[_; N]>::try_from(data) else {
            unreachable!("one slice per input")
        };
        let (y, shape) = self.0.forward(data)?;
        Ok((CpuStorage::F32(y), shape))
    }
}

/// `impl CustomOpN for Op<K>` for a [`Kernel<N>`]: Candle's storage in, the kernel's slices
/// through, its gradients back as the tuple Candle expects.
macro_rules! custom_op {
    ($op:ident, $n:literal, [$($s:ident $l:ident),+], [$($t:ident $d:ident),+], $grads:ty) => {
        impl<K: Kernel<$n> + Send + Sync> candle_core::$op for Op<K> {
            fn name(&self) -> &'static str {
                K::NAME
            }
            fn cpu_fwd(&self, $($s: &CpuStorage, $l: &Layout),+) -> Result<(CpuStorage, Shape)> {
                self.run([$(($s, $l)),+])
            }
            #[allow(unused_parens)]
            fn bwd(&self, $($t: &Tensor,)+ res: &Tensor, grad: &Tensor) -> Result<$grads> {
                let [$($d),+] = self.0.backward([$($t),+], res, grad)?;
                Ok(($($d),+))
            }
        }
    };
}

type Grad = Option<Tensor>;
custom_op!(CustomOp1, 1, [s1 l1], [a da], Grad);
custom_op!(CustomOp2, 2, [s1 l1, s2 l2], [a da, b db], (Grad, Grad));
custom_op!(CustomOp3, 3, [s1 l1, s2 l2, s3 l3], [a da, b db, c dc], (Grad, Grad, Grad));

/// Whether the backward pass must compute a gradient for `t` (a variable, or the result of
/// an op on one). The image itself and a detached (frozen) stage's output need none.
fn needs_grad(t: &Tensor) -> bool {
    t.track_op()
}

/// Threads in the current rayon pool.
fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with a per-thread scratch buffer of at least `len` floats (contents undefined),
/// reused across calls so large im2col buffers do not page-fault on every batch.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on this thread (a nested job stolen while waiting): use a fresh buffer.
        Err(_) => f(&mut vec![0.0; len]),
    })
}
