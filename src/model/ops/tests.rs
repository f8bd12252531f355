//! Gradient checks of the CPU ops against Candle's reference ops (forward and every
//! gradient) and against finite differences, on odd shapes, strides, paddings, batch 1,
//! and inside rayon pools of 1, 2 and 3 threads (which changes how the batch is split).

use super::*;
use candle_core::{Device, Module, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Uniform values in [−1, 1) of `shape`, seeded (shared by the ops' test modules).
pub(super) fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Largest difference relative to the reference's largest magnitude.
pub(super) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f32::max)
}

pub(super) fn assert_close(what: &str, ours: &Tensor, reference: &Tensor) {
    let d = max_diff(ours, reference);
    assert!(d < 2e-5, "{what}: relative difference {d}");
}

/// Backpropagates a random linear loss `Σ r·y` (`r` seeded, so every output position gets
/// a different gradient) through `ours` and through `reference`, and compares the gradient
/// of each named variable.
pub(super) fn assert_same_gradients(
    what: &str,
    (ours, reference): (&Tensor, &Tensor),
    seed: u64,
    vars: &[(&str, &Var)],
) {
    let r = random(ours.dims(), seed);
    let grads = |y: &Tensor| (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let (g1, g2) = (grads(ours), grads(reference));
    for (name, v) in vars {
        let (a, b) = (g1.get(v).unwrap(), g2.get(v).unwrap());
        assert_close(&format!("{what} {name} gradient"), a, b);
    }
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// (batch, channels, height, width, out channels, kernel, stride, padding)
type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize);

/// Cases Candle's own backward handles (it needs both sides to leave the same remainder
/// under the stride), checked against it.
const CONV_CASES: [ConvCase; 9] = [
    (1, 1, 7, 7, 2, 3, 1, 0),
    (3, 2, 9, 7, 3, 3, 2, 1),
    (2, 3, 11, 11, 4, 5, 1, 2),
    (5, 4, 5, 5, 6, 1, 1, 0),
    (4, 3, 6, 8, 5, 1, 2, 0),
    (2, 2, 8, 8, 3, 7, 2, 3),
    (9, 3, 4, 4, 5, 3, 1, 1),
    (7, 2, 5, 5, 4, 3, 3, 1),
    (1, 3, 13, 10, 8, 4, 3, 2),
];

/// Cases checked against finite differences, including sides with different remainders
/// under the stride (where Candle's conv2d backward fails with a shape mismatch).
const FINITE_DIFFERENCE_CASES: [ConvCase; 4] = [
    (2, 2, 6, 5, 3, 3, 2, 1),
    (3, 2, 9, 8, 3, 3, 2, 1),
    (1, 2, 3, 5, 2, 3, 3, 1),
    (5, 1, 7, 6, 2, 2, 1, 0),
];

/// Our conv vs Candle's on one case: output and the three gradients.
fn check_conv(case: ConvCase, seed: u64) {
    let (b, c, h, w, co, k, s, p) = case;
    let x = Var::from_tensor(&random(&[b, c, h, w], seed)).unwrap();
    let wt = Var::from_tensor(&random(&[co, c, k, k], seed + 1)).unwrap();
    let bias = Var::from_tensor(&random(&[co], seed + 2)).unwrap();
    let ours = conv2d(&x, &wt, Some(&bias), s, p).unwrap();
    let reference = x
        .conv2d(&wt, p, s, 1, 1)
        .unwrap()
        .broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap())
        .unwrap();
    assert_close(&format!("conv {case:?} forward"), &ours, &reference);
    assert_same_gradients(
        &format!("conv {case:?}"),
        (&ours, &reference),
        seed + 3,
        &[("input", &x), ("weight", &wt), ("bias", &bias)],
    );
}

#[test]
fn conv_matches_candle_in_pools_of_1_2_and_3_threads() {
    for threads in [1, 2, 3] {
        in_pool(threads, || {
            for (i, case) in CONV_CASES.into_iter().enumerate() {
                check_conv(case, 10 * i as u64);
            }
        });
    }
}

#[test]
fn conv_without_bias_matches_candle() {
    let x = Var::from_tensor(&random(&[3, 4, 9, 9], 1)).unwrap();
    let w = Var::from_tensor(&random(&[6, 4, 3, 3], 2)).unwrap();
    let ours = conv2d(&x, &w, None, 2, 1).unwrap();
    let reference = x.conv2d(&w, 1, 2, 1, 1).unwrap();
    assert_close("forward", &ours, &reference);
    let g1 = ours.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let g2 = reference
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close("input", g1.get(&x).unwrap(), g2.get(&x).unwrap());
    assert_close("weight", g1.get(&w).unwrap(), g2.get(&w).unwrap());
}

#[test]
fn conv_skips_the_gradient_of_an_input_that_needs_none() {
    let image = random(&[2, 1, 8, 8], 5);
    let w = Var::from_tensor(&random(&[3, 1, 3, 3], 6)).unwrap();
    let frozen = Var::from_tensor(&random(&[2, 1, 8, 8], 7)).unwrap();
    let detached = frozen.as_tensor().detach();
    for input in [&image, &detached] {
        let y = conv2d(input, &w, None, 1, 0).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(input).is_none());
        let reference = input.conv2d(&w, 0, 1, 1, 1).unwrap();
        let g_ref = reference.sum_all().unwrap().backward().unwrap();
        assert_close("weight", grads.get(&w).unwrap(), g_ref.get(&w).unwrap());
    }
    assert!(
        super::conv2d(&frozen, &w, None, 1, 0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(&frozen)
            .is_some()
    );
}

/// Central differences of a non-linear loss against our gradients, every 5th entry.
fn check_finite_differences(case: ConvCase, seed: u64) {
    let (b, c, h, w, co, k, s, p) = case;
    let x = Var::from_tensor(&random(&[b, c, h, w], seed)).unwrap();
    let wt = Var::from_tensor(&random(&[co, c, k, k], seed + 1)).unwrap();
    let bias = Var::from_tensor(&random(&[co], seed + 2)).unwrap();
    // tanh makes the loss non-linear, so the check covers how gradients flow on.
    let loss_of = |x: &Tensor, wt: &Tensor, bias: &Tensor| -> Tensor {
        let y = conv2d(x, wt, Some(bias), s, p).unwrap();
        let r = random(y.dims(), seed + 3);
        (y.tanh().unwrap() * r).unwrap().sum_all().unwrap()
    };
    let grads = loss_of(&x, &wt, &bias).backward().unwrap();
    let eps = 1e-2f32;
    for which in 0..3 {
        let v = [&x, &wt, &bias][which];
        let analytic: Vec<f32> = grads
            .get(v)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
        for idx in (0..base.len()).step_by(5) {
            let probe = |d: f32| -> f32 {
                let mut moved = base.clone();
                moved[idx] += d;
                let t = Tensor::from_vec(moved, v.shape(), &Device::Cpu).unwrap();
                let mut args = [
                    x.as_tensor().clone(),
                    wt.as_tensor().clone(),
                    bias.as_tensor().clone(),
                ];
                args[which] = t;
                loss_of(&args[0], &args[1], &args[2]).to_scalar().unwrap()
            };
            let numeric = (probe(eps) - probe(-eps)) / (2.0 * eps);
            assert!(
                (numeric - analytic[idx]).abs() < 3e-3 + 1e-2 * numeric.abs(),
                "{case:?} argument {which} index {idx}: finite difference {numeric}, analytic {}",
                analytic[idx]
            );
        }
    }
}

#[test]
fn conv_gradients_match_finite_differences() {
    for threads in [1, 2] {
        in_pool(threads, || {
            for (i, case) in FINITE_DIFFERENCE_CASES.into_iter().enumerate() {
                check_finite_differences(case, 100 + 10 * i as u64);
            }
        });
    }
}

/// 2×2 max-pool + ReLU from reshapes and `max`, whose gradient goes to the maximum.
/// (Candle 0.11's `max_pool2d` backward scales the gradient by 1/4: not a reference.)
fn reference_pool2_relu(x: &Tensor) -> Tensor {
    let (b, c, h, w) = x.dims4().unwrap();
    let (oh, ow) = (h / 2, w / 2);
    x.narrow(2, 0, 2 * oh)
        .unwrap()
        .narrow(3, 0, 2 * ow)
        .unwrap()
        .reshape((b, c, oh, 2, ow, 2))
        .unwrap()
        .max(5)
        .unwrap()
        .max(3)
        .unwrap()
        .relu()
        .unwrap()
}

#[test]
fn max_pool_relu_matches_candle() {
    for (i, shape) in [[2, 3, 8, 8], [1, 2, 7, 9], [3, 1, 24, 24]]
        .iter()
        .enumerate()
    {
        let x = Var::from_tensor(&random(shape, 20 + i as u64)).unwrap();
        let ours = max_pool2x2_relu(&x).unwrap();
        let stock = x.max_pool2d(2).unwrap().relu().unwrap();
        assert_close("pool forward", &ours, &stock);
        let reference = reference_pool2_relu(&x);
        assert_close("pool forward", &ours, &reference);
        assert_same_gradients("pool", (&ours, &reference), 30 + i as u64, &[("input", &x)]);
    }
}

#[test]
fn fused_conv_pool_relu_matches_the_separate_ops() {
    // (batch, channels, height, width, out channels, kernel, stride, padding); odd conv
    // outputs lose their last row/column to the pool.
    let cases: [ConvCase; 4] = [
        (3, 1, 12, 12, 4, 5, 1, 0),
        (1, 3, 9, 10, 5, 3, 1, 0),
        (9, 2, 8, 8, 6, 3, 1, 1),
        (2, 4, 11, 9, 3, 3, 2, 1),
    ];
    for threads in [1, 2, 3] {
        in_pool(threads, || {
            for (i, (b, c, h, w, co, k, s, p)) in cases.into_iter().enumerate() {
                let seed = 200 + 10 * i as u64;
                let x = Var::from_tensor(&random(&[b, c, h, w], seed)).unwrap();
                let wt = Var::from_tensor(&random(&[co, c, k, k], seed + 1)).unwrap();
                let bias = Var::from_tensor(&random(&[co], seed + 2)).unwrap();
                let ours = conv2d_pool2_relu(&x, &wt, Some(&bias), s, p).unwrap();
                let reference = reference_pool2_relu(&conv2d(&x, &wt, Some(&bias), s, p).unwrap());
                assert_close("fused forward", &ours, &reference);
                assert_same_gradients(
                    "fused",
                    (&ours, &reference),
                    seed + 3,
                    &[("input", &x), ("weight", &wt), ("bias", &bias)],
                );
            }
        });
    }
}

#[test]
fn max_pool_3x3_matches_the_portable_version() {
    for (i, shape) in [[2, 3, 8, 8], [1, 2, 7, 9], [2, 4, 16, 15]]
        .iter()
        .enumerate()
    {
        // Positive and distinct values, as after a ReLU but without ties.
        let x = (random(shape, 40 + i as u64).abs().unwrap() + 0.1).unwrap();
        let x = Var::from_tensor(&x).unwrap();
        let ours = max_pool3x3s2(&x).unwrap();
        let reference = crate::model::layers::max_pool_3x3_s2_portable(&x).unwrap();
        assert_close("pool forward", &ours, &reference);
        assert_same_gradients(
            "pool 3×3",
            (&ours, &reference),
            50 + i as u64,
            &[("input", &x)],
        );
    }
}

#[test]
fn linear_matches_candle_with_and_without_relu() {
    for (relu, (n, i, o)) in [(true, (5, 7, 3)), (false, (1, 4, 6)), (true, (64, 33, 17))] {
        let x = Var::from_tensor(&random(&[n, i], 60)).unwrap();
        let w = Var::from_tensor(&random(&[o, i], 61)).unwrap();
        let b = Var::from_tensor(&random(&[o], 62)).unwrap();
        let ours = linear(&x, &w, &b, relu).unwrap();
        let reference = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))
            .forward(&x)
            .unwrap();
        let reference = if relu {
            reference.relu().unwrap()
        } else {
            reference
        };
        assert_close("linear forward", &ours, &reference);
        assert_same_gradients(
            "linear",
            (&ours, &reference),
            63,
            &[("input", &x), ("weight", &w), ("bias", &b)],
        );
    }
    // A frozen backbone's features need no gradient.
    let x = random(&[4, 5], 64);
    let w = Var::from_tensor(&random(&[3, 5], 65)).unwrap();
    let b = Var::from_tensor(&random(&[3], 66)).unwrap();
    let g = linear(&x, &w, &b, false)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(g.get(&x).is_none() && g.get(&w).is_some());
}

#[test]
fn fused_adamw_matches_candle_adamw() {
    let params = ParamsAdamW {
        lr: 0.01,
        weight_decay: 0.1,
        ..Default::default()
    };
    // 70,000 values take the parallel path; 6 the serial one.
    let shapes: [&[usize]; 2] = [&[2, 3], &[70_000]];
    let make = || -> Vec<Var> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Var::from_tensor(&random(s, 70 + i as u64)).unwrap())
            .collect()
    };
    let (ours_vars, ref_vars) = (make(), make());
    let mut ours = FusedAdamW::new(ours_vars.clone(), params.clone()).unwrap();
    let mut reference = AdamW::new(ref_vars.clone(), params).unwrap();
    for step in 0..4u64 {
        let loss = |vars: &[Var]| {
            vars.iter()
                .enumerate()
                .map(|(i, v)| {
                    let r = random(v.dims(), 100 * step + i as u64);
                    (v.as_tensor() * &r)
                        .unwrap()
                        .sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                })
                .reduce(|a, b| (a + b).unwrap())
                .unwrap()
        };
        ours.backward_step(&loss(&ours_vars)).unwrap();
        reference.backward_step(&loss(&ref_vars)).unwrap();
    }
    for (a, b) in ours_vars.iter().zip(&ref_vars) {
        let d = max_diff(a.as_tensor(), b.as_tensor());
        assert!(d < 1e-5, "AdamW values differ by {d}");
    }
}
