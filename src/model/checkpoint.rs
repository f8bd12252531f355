//! Checkpoints: weights as safetensors plus a JSON sidecar (`model.safetensors` →
//! `model.json`) saying how to rebuild the network. Both are written to a temporary file
//! and renamed, so a crash never leaves a half-written checkpoint. Loading for a new task
//! (`--init`) copies every tensor whose name and shape match and builds a new head when
//! the classes differ.

use super::{BackboneKind, Network, Normalisation};
use crate::data::SampleShape;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Format tag written into every sidecar.
pub const FORMAT: &str = "transferlab-model/1";

/// What goes wrong with checkpoints. The path comes last.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot write the checkpoint ({source}): {path}")]
    Write {
        source: std::io::Error,
        path: PathBuf,
    },
    #[error("cannot read the model file ({reason}): {path}")]
    Read { reason: String, path: PathBuf },
    #[error("the model's sidecar is not valid ({reason}): {path}")]
    BadSidecar { reason: String, path: PathBuf },
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

/// The sidecar: how to rebuild a saved network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelMeta {
    pub format: String,
    pub backbone: BackboneKind,
    pub stages: Vec<String>,
    pub input: SampleShape,
    pub channels: usize,
    pub input_size: [usize; 2],
    pub normalisation: Normalisation,
    pub class_names: Vec<String>,
    pub bottleneck: Option<usize>,
    pub head: String,
    /// The method and data the weights were trained with, for the record.
    pub trained_with: Option<String>,
}

impl Default for ModelMeta {
    fn default() -> Self {
        Self {
            format: FORMAT.into(),
            backbone: BackboneKind::SmallCnn,
            stages: Vec::new(),
            input: SampleShape::Image {
                channels: 1,
                height: 28,
                width: 28,
            },
            channels: 1,
            input_size: [28, 28],
            normalisation: Normalisation {
                mean: vec![0.0],
                std: vec![1.0],
            },
            class_names: Vec::new(),
            bottleneck: None,
            head: "head".into(),
            trained_with: None,
        }
    }
}

/// The sidecar path of a weights file.
pub fn sidecar_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let werr = |source| ModelError::Write {
        source,
        path: path.to_path_buf(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    std::fs::write(&tmp, bytes).map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// Save the network's weights and sidecar.
pub fn save_checkpoint(
    net: &Network,
    class_names: &[String],
    trained_with: Option<String>,
    path: &Path,
) -> Result<ModelMeta, ModelError> {
    let tensors: Vec<(String, Tensor)> = {
        let data = net
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("var map poisoned".into()))?;
        let mut v: Vec<(String, Tensor)> = data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let bytes = safetensors::tensor::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), None)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let (channels, input_size) = match net.spec.input {
        SampleShape::Image {
            channels,
            height,
            width,
        } => (channels, [height, width]),
        SampleShape::Vector { dim } => (0, [dim, 1]),
    };
    let meta = ModelMeta {
        format: FORMAT.into(),
        backbone: net.spec.backbone,
        stages: net.stages().iter().map(|s| s.name.clone()).collect(),
        input: net.spec.input,
        channels,
        input_size,
        normalisation: net.normalisation.clone(),
        class_names: class_names.to_vec(),
        bottleneck: net.spec.bottleneck,
        head: net.spec.backbone.head_name().into(),
        trained_with,
    };
    let json =
        serde_json::to_vec_pretty(&meta).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    write_atomically(path, &bytes)?;
    write_atomically(&sidecar_path(path), &json)?;
    Ok(meta)
}

fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Read {
        reason: e.to_string(),
        path: path.to_path_buf(),
    })?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| ModelError::Read {
        reason: format!("not a safetensors file: {e}"),
        path: path.to_path_buf(),
    })
}

/// Read a model's sidecar; a file without one is taken for an imported ResNet-18 (ImageNet
/// normalisation, 3 channels) when its tensor names say so.
pub fn read_meta(path: &Path) -> Result<ModelMeta, ModelError> {
    let side = sidecar_path(path);
    if side.exists() {
        let text = std::fs::read_to_string(&side).map_err(|e| ModelError::Read {
            reason: e.to_string(),
            path: side.clone(),
        })?;
        let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| ModelError::BadSidecar {
            reason: e.to_string(),
            path: side.clone(),
        })?;
        if meta.format != FORMAT {
            return Err(ModelError::BadSidecar {
                reason: format!("unknown format '{}', expected '{FORMAT}'", meta.format),
                path: side,
            });
        }
        return Ok(meta);
    }
    let tensors = read_tensors(path)?;
    if tensors.contains_key("layer4.1.conv2.weight") && tensors.contains_key("conv1.weight") {
        // A user's file: any tensor may have any rank, even none.
        let channels = tensors["conv1.weight"].dims().get(1).copied().unwrap_or(3);
        let classes = tensors
            .get("fc.weight")
            .and_then(|t| t.dims().first().copied())
            .unwrap_or(0);
        let info = BackboneKind::Resnet18.info();
        return Ok(ModelMeta {
            backbone: BackboneKind::Resnet18,
            stages: info.stages.iter().map(|s| s.to_string()).collect(),
            input: SampleShape::Image {
                channels,
                height: 64,
                width: 64,
            },
            channels,
            input_size: [64, 64],
            normalisation: Normalisation::imagenet(),
            class_names: (0..classes).map(|i| format!("class{i}")).collect(),
            head: "fc".into(),
            ..Default::default()
        });
    }
    Err(ModelError::BadSidecar {
        reason: "no sidecar JSON beside it, and its tensor names are not a ResNet-18's".into(),
        path: side,
    })
}

/// What `--init` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitReport {
    /// Tensors copied from the file.
    pub loaded: usize,
    /// Tensors of the new network that the file did not provide (or with another shape).
    pub fresh: Vec<String>,
    /// True when the head was created anew because the classes differ.
    pub new_head: bool,
}

/// Copy the weights of `path` into `net`: every tensor with the same name and shape, except
/// the head when `same_classes` is false.
pub fn load_init(net: &Network, path: &Path, same_classes: bool) -> Result<InitReport, ModelError> {
    let tensors = read_tensors(path)?;
    let head = format!("{}.", net.spec.backbone.head_name());
    let data = net
        .varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("var map poisoned".into()))?;
    let mut report = InitReport {
        new_head: !same_classes,
        ..Default::default()
    };
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let from_file = tensors
            .get(name.as_str())
            .filter(|t| t.dims() == var.dims());
        match from_file {
            Some(t) if same_classes || !name.starts_with(&head) => {
                var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
                report.loaded += 1;
            }
            _ => report.fresh.push(name.clone()),
        }
    }
    if report.loaded == 0 {
        return Err(ModelError::Read {
            reason: "no tensor in it matches this network's names and shapes".into(),
            path: path.to_path_buf(),
        });
    }
    Ok(report)
}
