//! `transferlab bench-pretrained`: the small CNN from scratch against ImageNet features on
//! Fashion-MNIST with 10 labelled images per class (`train::pretrained_bench`), a line per
//! run and a table of mean ± standard deviation over the seeds.

use crate::train::pretrained_bench::{
    PretrainedBenchRun, PretrainedBenchSettings, Recipe, pretrained_bench,
};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `transferlab bench-pretrained`.
#[derive(Args, Debug, Clone)]
pub struct BenchPretrainedArgs {
    /// Image sides for EfficientNet-Lite0, comma-separated (the small CNN runs at 28 px).
    #[arg(long, value_delimiter = ',', default_values_t = [64, 224])]
    pub sizes: Vec<usize>,
    /// Number of seeds (1, 2, …).
    #[arg(long, default_value_t = 3, value_parser = super::values::seed, allow_negative_numbers = true)]
    pub seeds: u64,
    #[arg(long, default_value_t = 60, value_parser = super::values::count, allow_negative_numbers = true)]
    pub epochs: usize,
    /// Learning rate of the small CNN.
    #[arg(long, default_value_t = 1e-3, value_parser = super::values::positive,
        allow_hyphen_values = true)]
    pub lr_scratch: f64,
    /// Learning rate of the pretrained recipes' new weights.
    #[arg(long, default_value_t = 3e-3, value_parser = super::values::positive,
        allow_hyphen_values = true)]
    pub lr_pretrained: f64,
    /// Also retrain EfficientNet's last block stage and head conv (`--freeze 7`).
    #[arg(long)]
    pub upper_stages: bool,
    /// Write every run as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `transferlab bench-pretrained`.
pub fn bench_pretrained_command(args: &BenchPretrainedArgs) -> Result<Vec<PretrainedBenchRun>> {
    if args.seeds == 0 || args.epochs == 0 {
        bail!("--seeds and --epochs must be at least 1");
    }
    super::check_json_output(args.json.as_ref(), &[])?;
    for &s in &args.sizes {
        if let Err(e) = crate::model::BackboneKind::EfficientnetLite0
            .info()
            .check_side(s)
        {
            bail!("--sizes: {e}");
        }
    }
    let settings = PretrainedBenchSettings {
        sizes: args.sizes.clone(),
        seeds: (1..=args.seeds).collect(),
        epochs: args.epochs,
        lr_scratch: args.lr_scratch,
        lr_pretrained: args.lr_pretrained,
        upper_stages: args.upper_stages,
    };
    let runs = pretrained_bench(&settings, &mut |r| {
        eprintln!(
            "{:<46} {:>3} px  seed {}  target {:>5.1}%  {:>6.1} s",
            r.recipe.title(),
            r.side,
            r.seed,
            100.0 * r.target_accuracy,
            r.seconds
        );
    })?;
    if let Some(first) = runs.first() {
        println!(
            "fashion-10: {} labelled training images, {} test images, {} epochs, {} seed(s)",
            first.train_images, first.test_images, args.epochs, args.seeds
        );
    }
    println!(
        "{:<46} {:>5}  {:>15}  {:>8}",
        "recipe", "side", "target accuracy", "s/run"
    );
    let mut groups: Vec<(Recipe, usize)> = runs.iter().map(|r| (r.recipe, r.side)).collect();
    groups.dedup();
    for (recipe, side) in groups {
        let g: Vec<&PretrainedBenchRun> = runs
            .iter()
            .filter(|r| r.recipe == recipe && r.side == side)
            .collect();
        let n = g.len() as f64;
        let mean = g.iter().map(|r| r.target_accuracy).sum::<f64>() / n;
        let sd = (g
            .iter()
            .map(|r| (r.target_accuracy - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0).max(1.0))
        .sqrt();
        let secs = g.iter().map(|r| r.seconds).sum::<f64>() / n;
        println!(
            "{:<46} {:>3} px  {:>6.1}% ± {:>4.1}  {:>8.1}",
            recipe.title(),
            side,
            100.0 * mean,
            100.0 * sd,
            secs
        );
    }
    if let Some(path) = &args.json {
        crate::output::write_json("the --json report", path, &runs)?;
    }
    Ok(runs)
}
