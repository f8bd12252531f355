//! Throughput measurements behind `transferlab bench`: training and inference images per
//! second for a backbone on random data (the peer script's setup: batch 64, AdamW, CPU),
//! seconds per epoch at several freezing depths through the real runner, and images per
//! second for decoding a folder of PNGs.

use crate::data::demo::{DIGIT_SIDE, Style, render_digit};
use crate::data::split::rng_for;
use crate::data::{Domain, DomainPair, LoadOptions, SampleShape, load_domain_folder};
use crate::device::DeviceChoice;
use crate::model::ops::FusedAdamW;
use crate::model::{BackboneKind, Network, NetworkSpec, Normalisation};
use crate::train::{DataSource, Event, Experiment, ExperimentConfig, NoControl};
use anyhow::{Context, Result};
use candle_core::{D, Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW};
use rand::Rng;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Training and inference throughput.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub train_images_per_sec: f64,
    pub infer_images_per_sec: f64,
}

/// Time `steps` training steps and `steps` inference batches of `backbone` on `device`
/// (a GPU's queue is drained before each clock reading).
pub fn throughput(
    backbone: BackboneKind,
    side: usize,
    batch: usize,
    steps: usize,
    device: &Device,
) -> Result<Throughput> {
    if device.is_cpu() {
        crate::model::ops::tune_allocator();
    }
    let device = device.clone();
    let shape = backbone.info().example_shape(Some(side));
    let classes = match shape {
        SampleShape::Vector { .. } => 2,
        SampleShape::Image { .. } => 10,
    };
    let groups = match shape {
        SampleShape::Image { channels, .. } => channels,
        SampleShape::Vector { dim } => dim,
    };
    let net = Network::new(
        NetworkSpec {
            backbone,
            input: shape,
            num_classes: classes,
            bottleneck: None,
        },
        Normalisation {
            mean: vec![0.0; groups],
            std: vec![1.0; groups],
        },
        &device,
        1,
    )?;
    let mut rng = rng_for(1, "bench");
    let x: Vec<f32> = (0..batch * shape.len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let x = Tensor::from_vec(x, shape.batch_dims(batch).as_slice(), &device)?;
    let y = Tensor::from_vec(
        (0..batch as u32)
            .map(|i| i % classes as u32)
            .collect::<Vec<_>>(),
        batch,
        &device,
    )?;
    let vars = net.trainable_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = FusedAdamW::new(
        vars,
        ParamsAdamW {
            lr: 1e-3,
            ..Default::default()
        },
    )?;
    let mut step = || -> Result<()> {
        let logits = net.forward_t(&x, true)?.logits;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        opt.backward_step(&loss)?;
        Ok(())
    };
    for _ in 0..3 {
        step()?;
    }
    device.synchronize()?;
    let t = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    device.synchronize()?;
    let train = (steps * batch) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..steps {
        let logits = net.forward_t(&x, false)?.logits;
        let _: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
    }
    let infer = (steps * batch) as f64 / t.elapsed().as_secs_f64();
    Ok(Throughput {
        train_images_per_sec: train,
        infer_images_per_sec: infer,
    })
}

/// One freezing depth of [`freeze_sweep`].
#[derive(Clone, Debug)]
pub struct SweepRow {
    /// "fine-tune all", "freeze half" or "linear probe".
    pub label: &'static str,
    pub freeze: usize,
    pub trainable_params: usize,
    /// Training seconds of the first epoch (after the frozen-stage cache is built).
    pub first_epoch_secs: f64,
    /// Training seconds of a later epoch.
    pub epoch_secs: f64,
    /// Whole run (cache, epochs, evaluations, final predictions).
    pub run_secs: f64,
}

/// Time two epochs of the runner on `images` random source images (and a quarter as many
/// target images to evaluate on) at three freezing depths: none, half the stages, all.
pub fn freeze_sweep(
    backbone: BackboneKind,
    side: usize,
    batch: usize,
    images: usize,
    device: DeviceChoice,
) -> Result<Vec<SweepRow>> {
    let shape = backbone.info().example_shape(Some(side));
    let classes = 10;
    let domain = |role: &str, n: usize| {
        let mut rng = rng_for(3, role);
        Domain {
            name: role.into(),
            shape,
            x: (0..n * shape.len())
                .map(|_| rng.random_range(0.0..1.0))
                .collect(),
            labels: Some((0..n).map(|i| (i % classes) as u32).collect()),
            class_names: (0..classes).map(|c| c.to_string()).collect(),
            files: (0..n).map(|i| format!("{role}-{i}")).collect(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    };
    let pair = Arc::new(DomainPair {
        source: domain("source", images),
        target: domain("target", (images / 4).max(1)),
        classes: (0..classes).map(|c| c.to_string()).collect(),
        warnings: Vec::new(),
    });
    let stages = backbone.info().stages.len();
    let mut rows = Vec::new();
    for (label, freeze) in [
        ("fine-tune all", 0),
        ("freeze half", stages / 2),
        ("linear probe", stages),
    ] {
        let config = ExperimentConfig {
            data: DataSource::Demo {
                name: "bench-random".into(),
            },
            backbone: Some(backbone),
            freeze,
            epochs: 2,
            batch_size: batch,
            val_fraction: 0.0,
            device,
            ..Default::default()
        };
        let mut exp = Experiment::new(config, pair.clone())?;
        let mut train_secs = Vec::new();
        let mut sink = |e: Event| {
            if let Event::EpochFinished(r) = e {
                train_secs.push(images as f64 / r.images_per_sec.max(1e-9));
            }
        };
        let report = exp.run(&mut sink, &mut NoControl)?;
        rows.push(SweepRow {
            label,
            freeze,
            trainable_params: report.network.trainable_params,
            first_epoch_secs: train_secs.first().copied().unwrap_or(f64::NAN),
            epoch_secs: train_secs.last().copied().unwrap_or(f64::NAN),
            run_secs: report.elapsed_secs,
        });
    }
    Ok(rows)
}

/// Images per second for loading `dir` (ImageFolder or flat) at 28×28 gray.
pub fn load_folder(dir: &Path) -> Result<f64> {
    let opts = LoadOptions {
        role: "bench".into(),
        shape: SampleShape::Image {
            channels: 1,
            height: DIGIT_SIDE,
            width: DIGIT_SIDE,
        },
        allow_flat: true,
    };
    let t = Instant::now();
    let d = load_domain_folder(dir, &opts, &mut |_| {})?;
    Ok(d.len() as f64 / t.elapsed().as_secs_f64())
}

/// Write `n` generated 28×28 digit PNGs into a temporary ImageFolder and time loading it.
pub fn load_generated(n: usize) -> Result<f64> {
    let dir = std::env::temp_dir().join(format!("transferlab-bench-{}", std::process::id()));
    let mut rng = rng_for(2, "bench-images");
    for i in 0..n {
        let class = i % 10;
        let sub = dir.join(class.to_string());
        std::fs::create_dir_all(&sub)
            .with_context(|| format!("cannot create {}", sub.display()))?;
        let v = render_digit(class, Style::Clean, &mut rng);
        let img = image::GrayImage::from_raw(
            DIGIT_SIDE as u32,
            DIGIT_SIDE as u32,
            v.iter().map(|&p| (p * 255.0) as u8).collect(),
        )
        .context("image size")?;
        img.save(sub.join(format!("{i:05}.png")))?;
    }
    let result = load_folder(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}
