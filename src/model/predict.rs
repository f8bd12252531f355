//! Classifying single image files: the shipped ImageNet EfficientNet-Lite0 (1000 classes)
//! or a checkpoint saved by the workbench. Each file becomes a list of the most probable
//! classes with their names; a file that cannot be read is reported, not fatal.

use super::checkpoint::{ModelError, load_init, read_meta};
use super::{Network, NetworkSpec, efficientnet};
use crate::data::SampleShape;
use crate::data::folder::{decode_checked, image_to_values};
use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Images run through the network at once.
const BATCH: usize = 4;

/// Per image: what the head sees, and the class probabilities.
pub type FeaturesAndProbabilities = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// How an image file is brought to the model's input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// Short side to `side · 256 / 224`, then the centre `side × side` (ImageNet evaluation).
    ShortSideThenCentreCrop,
    /// Stretched to `side × side`, as the workbench loads training folders.
    Stretch,
}

/// One class and its probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    pub index: usize,
    pub name: String,
    pub probability: f32,
}

/// The most probable classes for one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub file: String,
    pub top: Vec<ClassScore>,
}

/// Which model classifies the files (or teaches a student: `run --teacher`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictModel {
    /// The shipped ImageNet EfficientNet-Lite0 (1000 classes).
    Imagenet,
    /// A checkpoint saved by the workbench (`run --save`, or an app run's model).
    Checkpoint(PathBuf),
}

/// Classify `files` on the CPU with `model`: the `top` classes of each, or why a file
/// could not be read. The one path of `transferlab predict` and the app's Predict view.
pub fn predict_files(
    model: &PredictModel,
    files: &[PathBuf],
    top: usize,
) -> Result<Vec<Result<Prediction, String>>, ModelError> {
    Ok(Predictor::open(model, &Device::Cpu)?.predict(files, top))
}

/// A network ready to classify image files.
pub struct Predictor {
    net: Network,
    class_names: Vec<String>,
    channels: usize,
    side: usize,
    resize: Resize,
}

impl Predictor {
    /// The network `model` names.
    pub fn open(model: &PredictModel, device: &Device) -> Result<Self, ModelError> {
        match model {
            PredictModel::Imagenet => Self::imagenet(device),
            PredictModel::Checkpoint(path) => Self::from_checkpoint(path, device),
        }
    }

    /// The shipped ImageNet EfficientNet-Lite0 at 224 px.
    pub fn imagenet(device: &Device) -> Result<Self, ModelError> {
        Self::imagenet_at(efficientnet::DEFAULT_INPUT, device)
    }

    /// The shipped ImageNet EfficientNet-Lite0 at `side` px.
    pub fn imagenet_at(side: usize, device: &Device) -> Result<Self, ModelError> {
        Ok(Self {
            net: efficientnet::imagenet_network(side, device)?,
            class_names: efficientnet::imagenet_classes(),
            channels: 3,
            side,
            resize: Resize::ShortSideThenCentreCrop,
        })
    }

    /// A checkpoint saved by the workbench (`run --save`), with its sidecar's classes.
    pub fn from_checkpoint(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let meta = read_meta(path)?;
        let SampleShape::Image {
            channels,
            height,
            width,
        } = meta.input
        else {
            return Err(ModelError::BadSidecar {
                reason: format!("the model takes {}, not images", meta.input.describe()),
                path: path.to_path_buf(),
            });
        };
        if height != width {
            return Err(ModelError::BadSidecar {
                reason: format!(
                    "the model takes {height}×{width} images; only square inputs are supported"
                ),
                path: path.to_path_buf(),
            });
        }
        let spec = NetworkSpec {
            backbone: meta.backbone,
            input: meta.input,
            num_classes: meta.class_names.len().max(1),
            bottleneck: meta.bottleneck,
        };
        let net = Network::new(spec, meta.normalisation.clone(), device, 0)?;
        load_init(&net, path, true)?;
        Ok(Self {
            net,
            class_names: meta.class_names,
            channels,
            side: height,
            resize: Resize::Stretch,
        })
    }

    /// How files are resized for this model.
    pub fn resize(&self) -> Resize {
        self.resize
    }

    /// The names of the model's classes.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// A short description: the backbone, its input and its number of classes.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} px, {} classes)",
            self.net.spec.backbone.name(),
            self.side,
            self.class_names.len()
        )
    }

    /// A batch of raw images (`N×C×H×W`, values in [0, 1], any channels and size) through
    /// the model in eval mode, brought to its input first: gray repeated into RGB or RGB
    /// averaged into gray, then resized (bilinear) to its side.
    pub fn forward_raw(&self, x: &Tensor) -> candle_core::Result<super::Forward> {
        let (_, c, h, w) = x.dims4()?;
        let x = match (c, self.channels) {
            (a, b) if a == b => x.clone(),
            (1, b) => x.repeat((1, b, 1, 1))?,
            (_, 1) => x.mean_keepdim(1)?,
            (a, b) => candle_core::bail!("cannot bring {a}-channel images to {b} channels"),
        };
        let x = if (h, w) == (self.side, self.side) {
            x
        } else {
            x.upsample_bilinear2d(self.side, self.side, false)?
        };
        self.net.forward_t(&x.to_device(&self.net.device)?, false)
    }

    /// The `top` most probable classes of each file, in order; a reason for each file that
    /// cannot be read.
    pub fn predict(&self, files: &[PathBuf], top: usize) -> Vec<Result<Prediction, String>> {
        let mut out = Vec::with_capacity(files.len());
        for chunk in files.chunks(BATCH) {
            let loaded: Vec<Result<Vec<f32>, String>> = chunk
                .iter()
                .map(|f| load_resized(f, self.channels, self.side, self.resize))
                .collect();
            let ok: Vec<&Vec<f32>> = loaded.iter().filter_map(|r| r.as_ref().ok()).collect();
            let probs = match self.probabilities(&ok) {
                Ok(p) => p,
                Err(e) => {
                    out.extend(chunk.iter().map(|_| Err(format!("the model failed: {e}"))));
                    continue;
                }
            };
            let mut probs = probs.into_iter();
            for (file, r) in chunk.iter().zip(loaded) {
                out.push(r.map(|_| Prediction {
                    file: file.display().to_string(),
                    top: self.top_classes(&probs.next().expect("one row per image"), top),
                }));
            }
        }
        out
    }

    fn probabilities(&self, images: &[&Vec<f32>]) -> candle_core::Result<Vec<Vec<f32>>> {
        Ok(self.features_and_probabilities(images)?.1)
    }

    /// What the head sees (the pooled features, or the adaptation layer's output) and the
    /// class probabilities of each file, decoded and resized as [`Predictor::predict`] does;
    /// a file that cannot be read is an error naming it.
    pub fn features_of_files(&self, files: &[PathBuf]) -> Result<FeaturesAndProbabilities, String> {
        let (mut features, mut probs) = (Vec::new(), Vec::new());
        for chunk in files.chunks(BATCH * 4) {
            let loaded = chunk
                .iter()
                .map(|f| {
                    load_resized(f, self.channels, self.side, self.resize)
                        .map_err(|e| format!("{}: {e}", f.display()))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let refs: Vec<&Vec<f32>> = loaded.iter().collect();
            let (f, p) = self
                .features_and_probabilities(&refs)
                .map_err(|e| format!("the model failed: {e}"))?;
            features.extend(f);
            probs.extend(p);
        }
        Ok((features, probs))
    }

    fn features_and_probabilities(
        &self,
        images: &[&Vec<f32>],
    ) -> candle_core::Result<FeaturesAndProbabilities> {
        if images.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let data: Vec<f32> = images.iter().flat_map(|v| v.iter().copied()).collect();
        let x = Tensor::from_vec(
            data,
            (images.len(), self.channels, self.side, self.side),
            &Device::Cpu,
        )?
        .to_device(&self.net.device)?;
        let out = self.net.forward_t(&x, false)?;
        Ok((
            out.features.to_vec2()?,
            candle_nn::ops::softmax_last_dim(&out.logits)?.to_vec2()?,
        ))
    }

    fn top_classes(&self, probs: &[f32], top: usize) -> Vec<ClassScore> {
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        idx.into_iter()
            .take(top)
            .map(|i| ClassScore {
                index: i,
                name: self
                    .class_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("class{i}")),
                probability: probs[i],
            })
            .collect()
    }
}

/// Decode `path` and bring it to `channels × side × side` values in [0, 1].
pub fn load_resized(
    path: &Path,
    channels: usize,
    side: usize,
    resize: Resize,
) -> Result<Vec<f32>, String> {
    let img = decode_checked(path)?;
    let img = match resize {
        Resize::Stretch => img,
        Resize::ShortSideThenCentreCrop => {
            let short = (side * 256).div_ceil(224) as f64;
            let scale = short / img.width().min(img.height()) as f64;
            let w = ((img.width() as f64 * scale).round() as u32).max(side as u32);
            let h = ((img.height() as f64 * scale).round() as u32).max(side as u32);
            let img = img.resize_exact(w, h, FilterType::Triangle);
            let (left, top) = ((w - side as u32) / 2, (h - side as u32) / 2);
            img.crop_imm(left, top, side as u32, side as u32)
        }
    };
    Ok(image_to_values(&img, channels, side, side))
}
