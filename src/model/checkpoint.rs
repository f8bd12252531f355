//! Checkpoints: weights as safetensors with the description of how to rebuild the network
//! ([`ModelMeta`]) inside the file's metadata, so weights and description are one file and
//! one atomic write; a JSON copy beside it (`model.safetensors` → `model.json`) is for
//! people to read. Files saved before the metadata was embedded are read through their
//! sidecar, which must then agree with the weights' shapes. A model file is untrusted
//! input: every size in its description is checked before anything is allocated. Loading
//! for a new task (`--init`) copies every tensor whose name and shape match and builds a
//! new head when the classes differ.

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
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

/// Key of the description in the safetensors metadata.
const META_KEY: &str = "transferlab";

/// Widest adaptation (bottleneck) layer a network may have.
pub const MAX_BOTTLENECK: usize = 16_384;

/// Most classes a model may have.
pub const MAX_CLASSES: usize = 100_000;

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
        serde_json::to_string_pretty(&meta).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let embedded = HashMap::from([(META_KEY.to_string(), json.clone())]);
    let bytes = safetensors::tensor::serialize(
        tensors.iter().map(|(k, t)| (k.as_str(), t)),
        Some(embedded),
    )
    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    // The weights file is complete on its own; the sidecar is a readable copy.
    crate::output::write_atomic("the model", path, &bytes)?;
    crate::output::write_atomic("the model's sidecar", &sidecar_path(path), json.as_bytes())?;
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

/// The safetensors header of `path`: tensor names with their shapes, and the metadata.
struct Header {
    shapes: HashMap<String, Vec<usize>>,
    metadata: HashMap<String, String>,
}

/// Largest header read (safetensors' own limit).
const MAX_HEADER: u64 = 100_000_000;

fn read_header(path: &Path) -> Result<Header, ModelError> {
    use std::io::Read;
    let err = |reason: String| ModelError::Read {
        reason,
        path: path.to_path_buf(),
    };
    let mut f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| err("not a safetensors file: too short".into()))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER || n > f.metadata().map(|m| m.len()).unwrap_or(0) {
        return Err(err(format!("not a safetensors file: header of {n} bytes")));
    }
    let mut text = vec![0u8; n as usize];
    f.read_exact(&mut text)
        .map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let Some(map) = value.as_object() else {
        return Err(err("not a safetensors file: header is not an object".into()));
    };
    let mut header = Header {
        shapes: HashMap::new(),
        metadata: HashMap::new(),
    };
    for (name, entry) in map {
        if name == "__metadata__" {
            header.metadata = serde_json::from_value(entry.clone()).unwrap_or_default();
        } else if let Some(shape) = entry.get("shape") {
            let shape: Vec<usize> = serde_json::from_value(shape.clone()).unwrap_or_default();
            header.shapes.insert(name.clone(), shape);
        }
    }
    Ok(header)
}

fn parse_meta(text: &str, path: &Path) -> Result<ModelMeta, ModelError> {
    let bad = |reason: String| ModelError::BadSidecar {
        reason,
        path: path.to_path_buf(),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    for key in ["backbone", "input", "class_names"] {
        if value.get(key).is_none() {
            return Err(bad(format!("it does not say '{key}'")));
        }
    }
    let meta: ModelMeta = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    if meta.format != FORMAT {
        return Err(bad(format!(
            "unknown format '{}', expected '{FORMAT}'",
            meta.format
        )));
    }
    meta.check().map_err(bad)?;
    Ok(meta)
}

impl ModelMeta {
    /// Check every size and number the description gives before anything is built from
    /// it: a model file may come from anywhere.
    pub fn check(&self) -> Result<(), String> {
        let info = self.backbone.info();
        if self.class_names.is_empty() || self.class_names.len() > MAX_CLASSES {
            return Err(format!(
                "it names {} classes (1 to {MAX_CLASSES} expected)",
                self.class_names.len()
            ));
        }
        if let Some(width) = self.bottleneck
            && !(1..=MAX_BOTTLENECK).contains(&width)
        {
            return Err(format!(
                "its adaptation layer is {width} wide (1 to {MAX_BOTTLENECK} expected)"
            ));
        }
        let groups = match self.input {
            SampleShape::Image {
                channels,
                height,
                width,
            } => {
                info.check_channels(channels)?;
                info.check_side(height.min(width))?;
                if height.max(width) > super::MAX_SIDE {
                    return Err(format!(
                        "its images are {height}×{width} (at most {} a side)",
                        super::MAX_SIDE
                    ));
                }
                if self.channels != channels {
                    return Err(format!(
                        "'channels' says {} but 'input' has {channels}",
                        self.channels
                    ));
                }
                channels
            }
            SampleShape::Vector { dim } => {
                if !(1..=1_000_000).contains(&dim) {
                    return Err(format!("its input has {dim} values"));
                }
                dim
            }
        };
        let n = &self.normalisation;
        if n.mean.len() != n.std.len() || !(n.mean.len() == groups || n.mean.len() == 1) {
            return Err(format!(
                "its normalisation has {} means and {} deviations for {groups} channel(s) or values",
                n.mean.len(),
                n.std.len()
            ));
        }
        if n.mean.iter().any(|m| !m.is_finite())
            || n.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(format!(
                "its normalisation is not usable (std {:?}: each must be a positive number)",
                n.std
            ));
        }
        Ok(())
    }

    /// Check a sidecar against the shapes of the weights it stands beside.
    fn check_weights(&self, shapes: &HashMap<String, Vec<usize>>) -> Result<(), String> {
        let head = shapes.get(&format!("{}.weight", self.head));
        if let Some(rows) = head.and_then(|s| s.first())
            && *rows != self.class_names.len()
        {
            return Err(format!(
                "it names {} classes but the weights' head has {rows}: it belongs to another model",
                self.class_names.len()
            ));
        }
        let width = shapes
            .get("bottleneck.weight")
            .and_then(|s| s.first().copied());
        if width != self.bottleneck {
            return Err(format!(
                "its adaptation layer ({:?}) differs from the weights' ({width:?}): it belongs to another model",
                self.bottleneck
            ));
        }
        Ok(())
    }
}

/// Read how to rebuild a model: the description inside the file, else its sidecar
/// (checked against the weights); a file with neither is taken for an imported ResNet-18
/// (ImageNet normalisation, 3 channels) when its tensor names say so.
pub fn read_meta(path: &Path) -> Result<ModelMeta, ModelError> {
    let header = read_header(path)?;
    if let Some(text) = header.metadata.get(META_KEY) {
        return parse_meta(text, path);
    }
    let side = sidecar_path(path);
    if side.exists() {
        let text = std::fs::read_to_string(&side).map_err(|e| ModelError::Read {
            reason: e.to_string(),
            path: side.clone(),
        })?;
        let meta = parse_meta(&text, &side)?;
        meta.check_weights(&header.shapes)
            .map_err(|reason| ModelError::BadSidecar { reason, path: side })?;
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
    /// The fresh tensors outside a new head: parts of the network the file should have
    /// provided but did not (another architecture, or a layer of another size).
    #[serde(default)]
    pub unmatched: Vec<String>,
}

impl InitReport {
    /// A warning naming what the file `path` did not provide, when it left part of the
    /// network (beyond a new head) at its fresh initial values.
    pub fn partial_warning(&self, path: &Path) -> Option<String> {
        let n = self.unmatched.len();
        if n == 0 {
            return None;
        }
        let shown: Vec<&str> = self.unmatched.iter().take(6).map(String::as_str).collect();
        let more = if n > shown.len() {
            format!(" and {} more", n - shown.len())
        } else {
            String::new()
        };
        Some(format!(
            "{} matched only {} of this network's {} tensors: {n} start from fresh random values ({}{more})",
            path.display(),
            self.loaded,
            self.loaded + self.fresh.len(),
            shown.join(", "),
        ))
    }
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
            _ => {
                if same_classes || !name.starts_with(&head) {
                    report.unmatched.push(name.clone());
                }
                report.fresh.push(name.clone());
            }
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
