//! The method benchmark behind `transferlab bench-methods`: every method on several domain
//! shifts, a few seeds each, reported as target accuracy (mean ± standard deviation over
//! seeds) and training time per epoch against source-only's.
//!
//! Shifts built from real MNIST digits (a folder of class subfolders, e.g.
//! `../shared/datasets/mnist`; its `train/` part is the source, its `test/` part becomes
//! the target after the shift is applied in memory, nothing is written):
//! - `mnist-usps`: USPS-style digits: cropped to fill the whole frame, through 16×16
//!   (USPS's resolution), so they are bigger, bolder and blurrier;
//! - `usps-mnist`: the same pair the other way round (USPS-style source, plain MNIST
//!   target), as in the published USPS→MNIST benchmarks;
//! - `mnist-m`: digits blended into random photo-like colour textures, |texture − digit|,
//!   the way MNIST-M blends them into photo patches;
//! - `mnist-thick-rotated`: strokes dilated, rotated by about 35°, with noise;
//! - `mnist-inverted`: black digits on white (a hard case: the features must become
//!   polarity-invariant, which aligning distributions alone rarely achieves).
//!
//! plus the built-in generated demos (`digits-rotated`, `digits-inverted`, `digits-colour`,
//! `moons`).

use super::config::{DataSource, ExperimentConfig};
use super::events::{Event, EventSink, RunReport};
use super::experiment::{Experiment, NoControl};
use crate::data::demo::generate_demo_sized;
use crate::data::folder::{LoadOptions, decode_scan, scan_folder};
use crate::data::split::rng_for;
use crate::data::{Domain, DomainPair, SampleShape, align_pair};
use crate::device::DeviceChoice;
use crate::method::{LabelledData, MethodKind};
use anyhow::{Context, Result, bail};
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The shifts the benchmark knows, in table order.
pub const SHIFTS: [&str; 9] = [
    "mnist-usps",
    "usps-mnist",
    "mnist-m",
    "mnist-thick-rotated",
    "mnist-inverted",
    "digits-rotated",
    "digits-inverted",
    "digits-colour",
    "moons",
];

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchSettings {
    pub mnist: PathBuf,
    pub shifts: Vec<String>,
    pub methods: Vec<MethodKind>,
    pub seeds: Vec<u64>,
    pub epochs: usize,
    /// Source images per class.
    pub per_class: usize,
    /// Target images per class.
    pub target_per_class: usize,
    /// Labelled target images per class given to target-only.
    pub target_labels: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Adaptation weight for every adaptation method (None: each method's default).
    pub lambda: Option<f64>,
    pub bottleneck: Option<usize>,
    pub device: DeviceChoice,
}

/// One run's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRun {
    pub shift: String,
    pub method: String,
    pub seed: u64,
    pub epochs: usize,
    pub target_accuracy: f64,
    pub source_accuracy: Option<f64>,
    /// Training seconds of the fastest epoch (evaluation excluded).
    pub train_secs_per_epoch: f64,
    /// Last epoch's method metrics.
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// The run's estimates made without target labels.
    pub label_free: Option<crate::analysis::label_free::LabelFree>,
}

/// Load `per_class` images of each class from `dir` (a folder of class subfolders), in
/// file-name order, at `channels`×28×28.
fn load_mnist_part(dir: &Path, role: &str, per_class: usize, channels: usize) -> Result<Domain> {
    let mut scan = scan_folder(role, dir)?;
    for (_, files) in &mut scan.classes {
        files.truncate(per_class);
    }
    let opts = LoadOptions {
        role: role.into(),
        shape: SampleShape::Image {
            channels,
            height: 28,
            width: 28,
        },
        allow_flat: false,
    };
    Ok(decode_scan(&scan, dir, &opts, &mut |_| {})?)
}

/// Apply `f` to every gray 28×28 image of `d`, producing `channels` planes.
fn map_images(d: Domain, channels: usize, f: impl Fn(usize, &[f32]) -> Vec<f32> + Sync) -> Domain {
    let rows: Vec<Vec<f32>> = (0..d.len())
        .into_par_iter()
        .map(|i| f(i, d.sample(i)))
        .collect();
    Domain {
        shape: SampleShape::Image {
            channels,
            height: 28,
            width: 28,
        },
        x: rows.concat(),
        ..d
    }
}

const SIDE: usize = 28;

fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random_range(1e-7..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// A random smooth colour texture (three planes), a stand-in for MNIST-M's photo patches:
/// a luminance pattern of a few oriented waves shared by the channels (as in photos, whose
/// channels are strongly correlated), a random brightness and a moderate colour tint.
fn texture(rng: &mut impl Rng) -> Vec<f32> {
    let waves: Vec<(f32, f32, f32, f32)> = (0..3)
        .map(|_| {
            let angle = rng.random_range(0.0..std::f32::consts::PI);
            let freq = rng.random_range(0.05..0.35f32);
            (
                angle.cos() * freq,
                angle.sin() * freq,
                rng.random_range(0.0..std::f32::consts::TAU),
                rng.random_range(0.05..0.25f32),
            )
        })
        .collect();
    let brightness = rng.random_range(0.1..0.9f32);
    let tint: [f32; 3] = std::array::from_fn(|_| rng.random_range(-0.25..0.25f32));
    let gain: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.7..1.3f32));
    let mut out = Vec::with_capacity(3 * SIDE * SIDE);
    for c in 0..3 {
        for y in 0..SIDE {
            for x in 0..SIDE {
                let v: f32 = waves
                    .iter()
                    .map(|&(fx, fy, ph, amp)| amp * (fx * x as f32 + fy * y as f32 + ph).sin())
                    .sum();
                let value = brightness + tint[c] + gain[c] * v + 0.03 * gaussian(rng);
                out.push(value.clamp(0.0, 1.0));
            }
        }
    }
    out
}

/// 3×3 grey dilation (thicker strokes).
fn dilate(img: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; SIDE * SIDE];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let mut m = 0f32;
            for dy in -1i32..=1 {
                for dx in -1i32..=1 {
                    let (yy, xx) = (y as i32 + dy, x as i32 + dx);
                    if (0..SIDE as i32).contains(&yy) && (0..SIDE as i32).contains(&xx) {
                        m = m.max(img[yy as usize * SIDE + xx as usize]);
                    }
                }
            }
            out[y * SIDE + x] = m;
        }
    }
    out
}

/// Rotate about the centre by `angle` radians (bilinear, zero outside).
fn rotate(img: &[f32], angle: f32) -> Vec<f32> {
    let (s, c) = angle.sin_cos();
    let centre = (SIDE as f32 - 1.0) / 2.0;
    let at = |x: i32, y: i32| -> f32 {
        if (0..SIDE as i32).contains(&x) && (0..SIDE as i32).contains(&y) {
            img[y as usize * SIDE + x as usize]
        } else {
            0.0
        }
    };
    let mut out = vec![0f32; SIDE * SIDE];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (dx, dy) = (x as f32 - centre, y as f32 - centre);
            // Inverse map: where this output pixel comes from.
            let sx = c * dx + s * dy + centre;
            let sy = -s * dx + c * dy + centre;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i32, y0 as i32);
            out[y * SIDE + x] = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + at(x0 + 1, y0) * fx * (1.0 - fy)
                + at(x0, y0 + 1) * (1.0 - fx) * fy
                + at(x0 + 1, y0 + 1) * fx * fy;
        }
    }
    out
}

/// USPS style: crop to the digit's bounding box, scale it to fill a 16×16 frame (longer
/// side 16, aspect kept), then back up to 28×28.
fn usps_style(img: &[f32]) -> Vec<f32> {
    let on = |x: usize, y: usize| img[y * SIDE + x] > 0.15;
    let xs: Vec<usize> = (0..SIDE).filter(|&x| (0..SIDE).any(|y| on(x, y))).collect();
    let ys: Vec<usize> = (0..SIDE).filter(|&y| (0..SIDE).any(|x| on(x, y))).collect();
    let (Some(&x0), Some(&x1), Some(&y0), Some(&y1)) =
        (xs.first(), xs.last(), ys.first(), ys.last())
    else {
        return img.to_vec();
    };
    let gray = image::GrayImage::from_fn(SIDE as u32, SIDE as u32, |x, y| {
        image::Luma([(img[y as usize * SIDE + x as usize] * 255.0).round() as u8])
    });
    let (w, h) = ((x1 - x0 + 1) as u32, (y1 - y0 + 1) as u32);
    let crop = image::imageops::crop_imm(&gray, x0 as u32, y0 as u32, w, h).to_image();
    let scale = 16.0 / w.max(h) as f32;
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).clamp(1, 16),
        ((h as f32 * scale).round() as u32).clamp(1, 16),
    );
    let small = image::imageops::resize(&crop, sw, sh, image::imageops::FilterType::Triangle);
    let mut frame = image::GrayImage::new(16, 16);
    image::imageops::overlay(
        &mut frame,
        &small,
        ((16 - sw) / 2) as i64,
        ((16 - sh) / 2) as i64,
    );
    let big = image::imageops::resize(
        &frame,
        SIDE as u32,
        SIDE as u32,
        image::imageops::FilterType::Triangle,
    );
    big.pixels().map(|p| p.0[0] as f32 / 255.0).collect()
}

/// Build one MNIST shift: source = `train/`, target = the shifted `test/`.
pub fn mnist_shift(
    mnist: &Path,
    shift: &str,
    per_class: usize,
    target_per_class: usize,
) -> Result<DomainPair> {
    let train = mnist.join("train");
    let test = mnist.join("test");
    for d in [&train, &test] {
        if !d.is_dir() {
            bail!(
                "the MNIST folder needs train/ and test/ subfolders of class folders (pass --mnist DIR): {}",
                d.display()
            );
        }
    }
    let source = load_mnist_part(&train, "source", per_class, 1)
        .with_context(|| format!("loading {}", train.display()))?;
    let target = load_mnist_part(&test, "target", target_per_class, 1)
        .with_context(|| format!("loading {}", test.display()))?;
    let (source, target) = match shift {
        "mnist-usps" => (source, map_images(target, 1, |_, s| usps_style(s))),
        "usps-mnist" => (map_images(source, 1, |_, s| usps_style(s)), target),
        "mnist-inverted" => (
            source,
            map_images(target, 1, |_, s| s.iter().map(|v| 1.0 - v).collect()),
        ),
        "mnist-m" => (
            map_images(source, 3, |_, s| [s; 3].concat()),
            map_images(target, 3, |i, s| {
                let mut rng = rng_for(i as u64, "mnist-m");
                let tex = texture(&mut rng);
                (0..3 * SIDE * SIDE)
                    .map(|k| (tex[k] - s[k % (SIDE * SIDE)]).abs())
                    .collect()
            }),
        ),
        "mnist-thick-rotated" => (
            source,
            map_images(target, 1, |i, s| {
                let mut rng = rng_for(i as u64, "mnist-thick-rotated");
                let angle = (35.0f32 + rng.random_range(-10.0..10.0f32)).to_radians();
                rotate(&dilate(s), angle)
                    .into_iter()
                    .map(|v| (v + 0.15 * gaussian(&mut rng)).clamp(0.0, 1.0))
                    .collect()
            }),
        ),
        other => bail!("unknown MNIST shift '{other}'"),
    };
    Ok(align_pair(source, target, &train.display().to_string())?)
}

/// The domain pair of a shift (an MNIST shift or a built-in demo).
pub fn shift_pair(settings: &BenchSettings, shift: &str) -> Result<DomainPair> {
    if shift.contains("mnist") {
        mnist_shift(
            &settings.mnist,
            shift,
            settings.per_class,
            settings.target_per_class,
        )
    } else {
        // Demo generators take images per class; the moons are cheap, so keep their size.
        let (s, t) = if shift == "moons" {
            (200, 200)
        } else {
            (settings.per_class, settings.target_per_class)
        };
        Ok(generate_demo_sized(shift, 7, s, t)?)
    }
}

struct Silent;

impl EventSink for Silent {
    fn emit(&mut self, _event: Event) {}
}

/// Run one method on one pair with one seed.
pub fn run_one(
    settings: &BenchSettings,
    shift: &str,
    pair: &Arc<DomainPair>,
    method: MethodKind,
    seed: u64,
) -> Result<BenchRun> {
    let target_only = method.labelled_data() == LabelledData::Target;
    let mut config = ExperimentConfig {
        data: DataSource::Demo {
            name: format!("bench:{shift}"),
        },
        method,
        epochs: settings.epochs,
        batch_size: settings.batch_size,
        learning_rate: settings.learning_rate,
        seed,
        target_labels: if target_only {
            settings.target_labels
        } else {
            0
        },
        lambda: if method.uses_unlabeled_target() {
            settings.lambda
        } else {
            None
        },
        bottleneck: settings
            .bottleneck
            .filter(|_| method.uses_unlabeled_target()),
        device: settings.device,
        // Source accuracy means nothing for target-only; skipping it saves time.
        val_fraction: if target_only { 0.0 } else { 0.2 },
        ..Default::default()
    };
    if target_only {
        // As many optimisation steps as source-only takes, so the baseline is not starved.
        let probe = Experiment::new(config.clone(), pair.clone())?;
        let steps_source = (probe.split.source_train.len()).div_ceil(settings.batch_size);
        let steps_target = probe.batches_per_epoch().max(1);
        config.epochs = (settings.epochs * steps_source).div_ceil(steps_target);
    }
    let mut exp = Experiment::new(config.clone(), pair.clone())?;
    let report: RunReport = exp.run(&mut Silent, &mut NoControl)?;
    let images = match method.labelled_data() {
        LabelledData::Source | LabelledData::None => report.data.source_train,
        LabelledData::Target => report.data.target_train,
        LabelledData::SourceAndTarget => report.data.source_train + report.data.target_train,
    } as f64;
    // The fastest epoch: the machine may be shared, and the slowest epochs then measure
    // the neighbours rather than the method.
    let train_secs: f64 = report
        .history
        .iter()
        .map(|r| images / r.images_per_sec.max(1e-9))
        .fold(f64::INFINITY, f64::min);
    Ok(BenchRun {
        shift: shift.to_string(),
        method: method.name().to_string(),
        seed,
        epochs: config.epochs,
        target_accuracy: report.final_metrics.target_accuracy.unwrap_or(f64::NAN),
        source_accuracy: report.final_metrics.source_accuracy,
        train_secs_per_epoch: train_secs,
        metrics: report
            .history
            .last()
            .map(|r| r.metrics.clone())
            .unwrap_or_default(),
        label_free: report.final_metrics.label_free.clone(),
    })
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Run the whole benchmark; `progress` hears about each finished run.
pub fn run_bench(
    settings: &BenchSettings,
    progress: &mut dyn FnMut(&BenchRun),
) -> Result<Vec<BenchRun>> {
    let mut runs = Vec::new();
    for shift in &settings.shifts {
        let pair = Arc::new(shift_pair(settings, shift)?);
        for &method in &settings.methods {
            for &seed in &settings.seeds {
                let run = run_one(settings, shift, &pair, method, seed)
                    .with_context(|| format!("{} on {shift}, seed {seed}", method.name()))?;
                progress(&run);
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// The table: one row per method, one column per shift (target accuracy %, mean ± std over
/// seeds), then the mean over shifts, the gain over source-only, training seconds per
/// epoch (fastest epoch of each run, averaged) and their ratio to source-only's.
pub fn format_table(settings: &BenchSettings, runs: &[BenchRun]) -> String {
    let acc = |m: &str, s: &str| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.method == m && r.shift == s)
            .map(|r| r.target_accuracy * 100.0)
            .collect()
    };
    let secs = |m: &str| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.method == m)
            .map(|r| r.train_secs_per_epoch)
            .collect()
    };
    let shift_mean = |m: &str| -> f64 {
        let means: Vec<f64> = settings
            .shifts
            .iter()
            .map(|s| mean_std(&acc(m, s)).0)
            .collect();
        mean_std(&means).0
    };
    let base = shift_mean("source-only");
    let base_secs = mean_std(&secs("source-only")).0;
    let has_base = runs.iter().any(|r| r.method == "source-only");
    let mut out = String::new();
    let mut header = format!("| {:<20}", "method");
    for s in &settings.shifts {
        header.push_str(&format!(" | {s:>15}"));
    }
    header.push_str(" |  mean | vs src | s/epoch | × src |\n");
    out.push_str(&header);
    out.push('|');
    out.push_str(&"-".repeat(22));
    for _ in &settings.shifts {
        out.push_str(&format!("|{}", "-".repeat(17)));
    }
    out.push_str("|------:|-------:|--------:|------:|\n");
    for &m in &settings.methods {
        let name = m.name();
        let label = if m == MethodKind::TargetOnly {
            format!("{name} (K={})", settings.target_labels)
        } else {
            name.to_string()
        };
        let mut row = format!("| {label:<20}");
        for s in &settings.shifts {
            let (mean, sd) = mean_std(&acc(name, s));
            row.push_str(&format!(" | {:>15}", format!("{mean:.1} ± {sd:.1}")));
        }
        let mean = shift_mean(name);
        let (t, _) = mean_std(&secs(name));
        let gain = if has_base && m != MethodKind::SourceOnly {
            format!("{:+.1}", mean - base)
        } else {
            "".into()
        };
        let ratio = if has_base && m != MethodKind::TargetOnly {
            format!("{:.2}", t / base_secs.max(1e-9))
        } else {
            "".into()
        };
        row.push_str(&format!(
            " | {mean:>5.1} | {gain:>6} | {t:>7.2} | {ratio:>5} |\n"
        ));
        out.push_str(&row);
    }
    out
}

/// The label-free estimators, as (name, value of a run; higher must mean better).
type Estimator = (
    &'static str,
    fn(&crate::analysis::label_free::LabelFree) -> Option<f64>,
);

const ESTIMATORS: [Estimator; 5] = [
    ("ATC", |l| l.accuracy.map(|a| a.atc)),
    ("DEV", |l| l.accuracy.map(|a| a.dev)),
    ("IWCV", |l| l.accuracy.map(|a| a.iwcv)),
    ("SND", |l| Some(l.snd)),
    ("−entropy", |l| Some(-l.entropy)),
];

/// Ranks of `v` (1-based, ties share their mean rank).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation of `a` and `b` (NaN when either is constant).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let (ma, mb) = (mean_std(&ra).0, mean_std(&rb).0);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// How well each label-free estimator tracks the true target accuracy over the runs:
/// Spearman's ρ within each shift (averaged over shifts) and pooled over every run, and
/// the points lost by picking, for each shift and seed, the method the estimator rates
/// highest instead of the truly best one (the oracle).
pub fn format_selection(settings: &BenchSettings, runs: &[BenchRun]) -> String {
    let mut out = String::from(
        "| estimator | ρ within a shift (mean) | ρ pooled | points lost selecting a method |\n|---|---:|---:|---:|\n",
    );
    for (name, value) in ESTIMATORS {
        let scored: Vec<(&BenchRun, f64)> = runs
            .iter()
            .filter_map(|r| Some((r, r.label_free.as_ref().and_then(value)?)))
            .collect();
        if scored.len() < 3 {
            continue;
        }
        let rho = |of: &[&(&BenchRun, f64)]| {
            let est: Vec<f64> = of.iter().map(|(_, v)| *v).collect();
            let truth: Vec<f64> = of.iter().map(|(r, _)| r.target_accuracy).collect();
            spearman(&est, &truth)
        };
        let within: Vec<f64> = settings
            .shifts
            .iter()
            .map(|s| {
                rho(&scored
                    .iter()
                    .filter(|(r, _)| &r.shift == s)
                    .collect::<Vec<_>>())
            })
            .filter(|r| r.is_finite())
            .collect();
        let pooled = rho(&scored.iter().collect::<Vec<_>>());
        let mut lost = Vec::new();
        for s in &settings.shifts {
            for &seed in &settings.seeds {
                let group: Vec<&(&BenchRun, f64)> = scored
                    .iter()
                    .filter(|(r, _)| &r.shift == s && r.seed == seed)
                    .collect();
                let best = group
                    .iter()
                    .map(|(r, _)| r.target_accuracy)
                    .fold(f64::NAN, f64::max);
                if let Some((chosen, _)) = group.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
                    lost.push(100.0 * (best - chosen.target_accuracy));
                }
            }
        }
        out.push_str(&format!(
            "| {name} | {:.2} | {pooled:.2} | {:.1} |\n",
            mean_std(&within).0,
            mean_std(&lost).0
        ));
    }
    out
}

#[cfg(test)]
mod selection_tests {
    use super::*;

    #[test]
    fn spearman_is_one_for_the_same_order_and_minus_one_for_the_reverse() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[10.0, 20.0, 25.0, 90.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
    }
}
