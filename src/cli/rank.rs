//! `transferlab rank`: which source (or starting model) suits a target best — folders by
//! their distance to the target, models by LogME on a few labelled target images.

use crate::output::Input;
use crate::train::rank::{Candidate, RankFeatures, RankReport, RankRequest, rank};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `transferlab rank`.
#[derive(Args, Debug, Clone)]
pub struct RankArgs {
    /// The target folder (class subfolders, or flat when only folders are ranked).
    #[arg(long)]
    pub target: PathBuf,
    /// A candidate source folder (repeat for several).
    #[arg(long = "source")]
    pub sources: Vec<PathBuf>,
    /// A candidate starting model, a checkpoint saved with `run --save` (repeat for several).
    #[arg(long = "model")]
    pub models: Vec<PathBuf>,
    /// Also rank the shipped ImageNet EfficientNet-Lite0 as a starting model.
    #[arg(long)]
    pub imagenet: bool,
    /// Labelled target images per class the model scores use (needed to rank models).
    #[arg(long, default_value_t = 0, value_parser = super::values::count, allow_negative_numbers = true)]
    pub target_labels: usize,
    /// Feature space the folder distances are measured in.
    #[arg(long, value_enum, default_value_t = RankFeatures::Imagenet)]
    pub features: RankFeatures,
    /// At most this many images per domain for the folder distances (seeded subsample).
    #[arg(long, default_value_t = 300, value_parser = super::values::at_least_one, allow_negative_numbers = true)]
    pub max_per_domain: usize,
    #[arg(long, default_value_t = 1, value_parser = super::values::seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Write the ranking as JSON: `{"target", "candidates": [{"name", "kind", "score",
    /// "rank", "by", "measures"}], "notes"}`.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `transferlab rank`: prints the candidates best first (folders, then models) and writes
/// the JSON on request.
pub fn rank_command(args: &RankArgs) -> Result<RankReport> {
    if args.max_per_domain < 4 {
        anyhow::bail!("--max-per-domain must be at least 4");
    }
    let mut inputs = vec![Input::new("the --target folder", &args.target)];
    inputs.extend(
        args.sources
            .iter()
            .map(|p| Input::new("a --source folder", p)),
    );
    inputs.extend(args.models.iter().map(|p| Input::new("a --model file", p)));
    super::check_json_output(args.json.as_ref(), &inputs)?;
    let mut candidates: Vec<Candidate> = args
        .sources
        .iter()
        .cloned()
        .map(Candidate::Folder)
        .collect();
    candidates.extend(args.models.iter().cloned().map(Candidate::Model));
    if args.imagenet {
        candidates.push(Candidate::Imagenet);
    }
    let req = RankRequest {
        target: args.target.clone(),
        candidates,
        target_labels: args.target_labels,
        features: args.features,
        max_per_domain: args.max_per_domain,
        seed: args.seed,
    };
    let report = rank(&req, &mut |name| eprintln!("measuring {name} …"))?;
    println!("candidates for {}:", report.target);
    for c in &report.candidates {
        println!(
            "  #{} {:<6} {}  ({})",
            c.rank,
            c.kind,
            c.name,
            crate::metric::key_values(&c.measures, 4, ", ")
        );
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    if let Some(path) = &args.json {
        crate::output::write_json("the --json report", path, &report)?;
    }
    Ok(report)
}
