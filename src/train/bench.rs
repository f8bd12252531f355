//! Throughput measurements behind `transferlab bench`: training and inference images per
//! second for a backbone on random data (the peer script's setup: batch 64, AdamW, CPU),
//! and images per second for decoding a folder of PNGs.

use crate::data::demo::{DIGIT_SIDE, Style, render_digit};
use crate::data::split::rng_for;
use crate::data::{LoadOptions, SampleShape, load_domain_folder};
use crate::model::ops::FusedAdamW;
use crate::model::{BackboneKind, Network, NetworkSpec, Normalisation};
use anyhow::{Context, Result};
use candle_core::{D, Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW};
use rand::Rng;
use std::path::Path;
use std::time::Instant;

/// Training and inference throughput.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub train_images_per_sec: f64,
    pub infer_images_per_sec: f64,
}

/// Time `steps` training steps and `steps` inference batches of `backbone` on the CPU.
pub fn throughput(
    backbone: BackboneKind,
    side: usize,
    batch: usize,
    steps: usize,
) -> Result<Throughput> {
    let device = Device::Cpu;
    let (shape, classes) = match backbone {
        BackboneKind::Mlp => (SampleShape::Vector { dim: 2 }, 2),
        BackboneKind::SmallCnn => (
            SampleShape::Image {
                channels: 1,
                height: side,
                width: side,
            },
            10,
        ),
        BackboneKind::Resnet18 => (
            SampleShape::Image {
                channels: 3,
                height: side,
                width: side,
            },
            10,
        ),
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
    let t = Instant::now();
    for _ in 0..steps {
        step()?;
    }
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
