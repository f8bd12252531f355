//! `transferlab predict`: the most probable classes of image files, from the shipped
//! ImageNet EfficientNet-Lite0 or a saved checkpoint; a table on stdout, JSON on request.

use crate::model::predict::{PredictModel, Prediction, Predictor, Resize};
use crate::output::Input;
use anyhow::{Result, bail};
use candle_core::Device;
use clap::Args;
use std::path::PathBuf;

/// The built-in model's name for `--model`.
pub const IMAGENET_MODEL: &str = "efficientnet-lite0";

/// Arguments of `transferlab predict`.
#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    /// `efficientnet-lite0` (the shipped ImageNet classifier, 1000 classes: each image's short
    /// side is resized to 256 and the centre 224×224 kept) or a checkpoint saved with
    /// `run --save` (images are stretched to its input size, as in training).
    #[arg(long, default_value = IMAGENET_MODEL)]
    pub model: String,
    /// Image files to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Classes to show per image.
    #[arg(long, default_value_t = 5, value_parser = super::values::count, allow_negative_numbers = true)]
    pub top: usize,
    /// Write the predictions as JSON: `[{"file", "top": [{"index", "name", "probability"}]}]`.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `transferlab predict`: prints each file's top classes; files that cannot be read are
/// reported on stderr and left out (the command fails only if none could be read).
pub fn predict_command(args: &PredictArgs) -> Result<Vec<Prediction>> {
    if args.top == 0 {
        bail!("--top must be at least 1");
    }
    let mut inputs: Vec<Input> = args
        .images
        .iter()
        .map(|p| Input::new("an image to classify", p))
        .collect();
    if args.model != IMAGENET_MODEL {
        inputs.push(Input::new("the --model file", &args.model));
    }
    super::check_json_output(args.json.as_ref(), &inputs)?;
    let device = Device::Cpu;
    let model = if args.model == IMAGENET_MODEL {
        PredictModel::Imagenet
    } else {
        let path = PathBuf::from(&args.model);
        if !path.exists() {
            bail!(
                "--model is neither '{IMAGENET_MODEL}' nor an existing file: {}",
                path.display()
            );
        }
        PredictModel::Checkpoint(path)
    };
    let predictor = Predictor::open(&model, &device)?;
    let how = match predictor.resize() {
        Resize::ShortSideThenCentreCrop => "short side resized, centre crop",
        Resize::Stretch => "resized to the model's input",
    };
    let mut predictions = Vec::new();
    for (file, result) in args
        .images
        .iter()
        .zip(predictor.predict(&args.images, args.top))
    {
        match result {
            Ok(p) => {
                println!("{} ({how})", p.file);
                for c in &p.top {
                    println!(
                        "  {:>6.2}%  {:>4}  {}",
                        100.0 * c.probability,
                        c.index,
                        c.name
                    );
                }
                predictions.push(p);
            }
            Err(reason) => eprintln!("skipped {}: {reason}", file.display()),
        }
    }
    if let Some(path) = &args.json {
        crate::output::write_json("the --json predictions", path, &predictions)?;
    }
    if predictions.is_empty() {
        bail!("none of the {} image(s) could be read", args.images.len());
    }
    Ok(predictions)
}
