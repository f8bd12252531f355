//! The measurement behind `transferlab bench-pretrained`: on the `fashion-10` demo (10
//! labelled Fashion-MNIST images per class to train on, 50 per class to test on), the
//! small CNN trained from scratch on those 100 images against ImageNet's EfficientNet-Lite0
//! as a frozen feature extractor with a new linear classifier (a linear probe), and, as
//! the advisor's case (c) recipe, the same network with only its last block stage and
//! head conv retrained (`--freeze 7`); several seeds each (the seed sets the new weights'
//! initialisation and the batch order; the images are the same).

use super::config::{DataSource, ExperimentConfig};
use super::events::{Event, EventSink};
use super::experiment::{Experiment, NoControl};
use super::load::convert_domain;
use crate::data::demo::DIGIT_SIDE;
use crate::data::{DomainPair, SampleShape, generate_demo};
use crate::model::BackboneKind;
use anyhow::Result;
use serde::Serialize;
use std::sync::Arc;

/// The demo measured.
pub const DEMO: &str = "fashion-10";

/// One way of learning the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// The small CNN, random weights, at 28 px.
    Scratch,
    /// EfficientNet-Lite0, every stage frozen, a new linear classifier.
    LinearProbe,
    /// EfficientNet-Lite0 with stem … stage6 frozen, stage7 and the head conv retrained.
    UpperStages,
}

impl Recipe {
    /// How the table names it.
    pub fn title(self) -> &'static str {
        match self {
            Recipe::Scratch => "small CNN from scratch",
            Recipe::LinearProbe => "ImageNet linear probe (freeze 9)",
            Recipe::UpperStages => "ImageNet, stage7 + head retrained (freeze 7)",
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct PretrainedBenchSettings {
    /// Image sides for the pretrained recipes (the small CNN runs at 28 px).
    pub sizes: Vec<usize>,
    pub seeds: Vec<u64>,
    pub epochs: usize,
    /// Learning rates of the small CNN and of the pretrained recipes.
    pub lr_scratch: f64,
    pub lr_pretrained: f64,
    /// Also run the `--freeze 7` recipe (slower: gradients through stage7).
    pub upper_stages: bool,
}

/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub struct PretrainedBenchRun {
    pub recipe: Recipe,
    pub side: usize,
    pub seed: u64,
    pub target_accuracy: f64,
    pub seconds: f64,
    pub train_images: usize,
    pub test_images: usize,
}

struct Silent;

impl EventSink for Silent {
    fn emit(&mut self, _event: Event) {}
}

fn at(pair: &DomainPair, side: usize, channels: usize) -> Arc<DomainPair> {
    let shape = SampleShape::Image {
        channels,
        height: side,
        width: side,
    };
    let mut p = pair.clone();
    p.source = convert_domain(p.source, shape);
    p.target = convert_domain(p.target, shape);
    Arc::new(p)
}

/// Run every recipe × size × seed; `done` sees each run as it finishes.
pub fn pretrained_bench(
    settings: &PretrainedBenchSettings,
    done: &mut dyn FnMut(&PretrainedBenchRun),
) -> Result<Vec<PretrainedBenchRun>> {
    let pair = generate_demo(DEMO, 7)?;
    let mut plan: Vec<(Recipe, usize)> = vec![(Recipe::Scratch, DIGIT_SIDE)];
    for &side in &settings.sizes {
        plan.push((Recipe::LinearProbe, side));
        if settings.upper_stages {
            plan.push((Recipe::UpperStages, side));
        }
    }
    let mut out = Vec::new();
    for (recipe, side) in plan {
        let (backbone, freeze, channels, lr) = match recipe {
            Recipe::Scratch => (BackboneKind::SmallCnn, 0, 1, settings.lr_scratch),
            Recipe::LinearProbe => (
                BackboneKind::EfficientnetLite0,
                9,
                3,
                settings.lr_pretrained,
            ),
            Recipe::UpperStages => (
                BackboneKind::EfficientnetLite0,
                7,
                3,
                settings.lr_pretrained,
            ),
        };
        let data = at(&pair, side, channels);
        for &seed in &settings.seeds {
            let config = ExperimentConfig {
                data: DataSource::Demo { name: DEMO.into() },
                backbone: Some(backbone),
                freeze,
                epochs: settings.epochs,
                learning_rate: lr,
                seed,
                // Train on all 100 labelled images.
                val_fraction: 0.0,
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let report = Experiment::new(config, data.clone())?.run(&mut Silent, &mut NoControl)?;
            let run = PretrainedBenchRun {
                recipe,
                side,
                seed,
                target_accuracy: report.final_metrics.target_accuracy.unwrap_or(f64::NAN),
                seconds: started.elapsed().as_secs_f64(),
                train_images: data.source.len(),
                test_images: data.target.len(),
            };
            done(&run);
            out.push(run);
        }
    }
    Ok(out)
}
