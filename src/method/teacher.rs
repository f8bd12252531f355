//! The teacher of the distillation methods (`--teacher MODEL`): a saved model or the
//! built-in ImageNet EfficientNet-Lite0, run once over every source and target image before
//! training. The teacher never changes and the images do not either (no augmentation), so
//! its outputs are computed once and looked up per batch: a 1000-class ImageNet teacher then
//! costs one pass over the data, not one per step.

use crate::data::{Domain, LoadProgress, SampleShape};
use crate::model::checkpoint::ModelError;
use crate::model::efficientnet;
use crate::model::predict::{PredictModel, Predictor};
use candle_core::{Device, Tensor};
use std::fmt;

/// Images through the teacher at once.
const CHUNK: usize = 32;

/// What the teacher makes of every image of both domains.
pub struct TeacherOutputs {
    /// What it is ("efficientnet-lite0 (96 px, 1000 classes)").
    pub description: String,
    pub class_names: Vec<String>,
    /// What its head sees, per source sample (`n_source × d`) and per target sample.
    pub source_features: Tensor,
    pub target_features: Tensor,
    /// Its class scores, per source sample and per target sample.
    pub source_logits: Tensor,
    pub target_logits: Tensor,
}

impl fmt::Debug for TeacherOutputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TeacherOutputs({})", self.description)
    }
}

impl PartialEq for TeacherOutputs {
    /// Teachers are compared by what they are, not by their numbers.
    fn eq(&self, other: &Self) -> bool {
        self.description == other.description && self.class_names == other.class_names
    }
}

/// Which of the teacher's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeacherOutput {
    /// What its head sees.
    Features,
    /// Its class scores.
    Logits,
}

impl TeacherOutputs {
    /// The teacher's `output` for the rows of a training batch: the labelled rows (source
    /// first, then labelled target, as the runner orders them), then, when `with_target`,
    /// the unlabeled target batch.
    pub fn batch(
        &self,
        batch: &super::TrainBatch,
        with_target: bool,
        output: TeacherOutput,
    ) -> candle_core::Result<Tensor> {
        let pick = |target: bool| -> Vec<usize> {
            batch
                .from_target
                .iter()
                .zip(&batch.sample_ids)
                .filter(|(t, _)| **t == target)
                .map(|(_, &i)| i)
                .collect()
        };
        let rows = |target: bool, ids: &[usize]| match output {
            TeacherOutput::Features => self.features(target, ids),
            TeacherOutput::Logits => self.logits(target, ids),
        };
        let mut parts = Vec::new();
        for (target, ids) in [(false, pick(false)), (true, pick(true))] {
            if !ids.is_empty() {
                parts.push(rows(target, &ids)?);
            }
        }
        if with_target && !batch.target_ids.is_empty() {
            parts.push(rows(true, &batch.target_ids)?);
        }
        Tensor::cat(&parts, 0)
    }

    /// The teacher's features of one domain's rows `ids`.
    pub fn features(&self, target: bool, ids: &[usize]) -> candle_core::Result<Tensor> {
        let all = match target {
            true => &self.target_features,
            false => &self.source_features,
        };
        rows(all, ids)
    }

    /// The teacher's class scores of one domain's rows `ids`.
    pub fn logits(&self, target: bool, ids: &[usize]) -> candle_core::Result<Tensor> {
        let all = match target {
            true => &self.target_logits,
            false => &self.source_logits,
        };
        rows(all, ids)
    }
}

/// Rows `ids` of `t`, in that order.
pub fn rows(t: &Tensor, ids: &[usize]) -> candle_core::Result<Tensor> {
    let idx: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    t.index_select(&Tensor::from_vec(idx, ids.len(), t.device())?, 0)
}

/// The classes `model` knows, read without running it (a checkpoint's sidecar, or the
/// ImageNet lemmas).
pub fn teacher_classes(model: &PredictModel) -> Result<Vec<String>, String> {
    match model {
        PredictModel::Imagenet => Ok(efficientnet::imagenet_classes()),
        PredictModel::Checkpoint(path) => crate::model::checkpoint::read_meta(path)
            .map(|m| m.class_names)
            .map_err(|e| format!("the teacher model: {e}")),
    }
}

/// Open the teacher `model` (the ImageNet one at [`efficientnet::FEATURE_SIDE`] px: the side
/// `rank` compares features at, a fifth of the work of 224 px) and run it over both domains;
/// its outputs are placed on `device`. Errors are the user's words.
pub fn teacher_outputs(
    model: &PredictModel,
    source: &Domain,
    target: &Domain,
    device: &Device,
    progress: &mut dyn FnMut(&str, LoadProgress),
) -> Result<TeacherOutputs, String> {
    let opened = match model {
        PredictModel::Imagenet => Predictor::imagenet_at(efficientnet::FEATURE_SIDE, &Device::Cpu),
        PredictModel::Checkpoint(path) => Predictor::from_checkpoint(path, &Device::Cpu),
    };
    let teacher = opened.map_err(|e: ModelError| format!("the teacher model: {e}"))?;
    let what = format!("the teacher ({}) looks at every image", teacher.describe());
    let total = source.len() + target.len();
    let mut done = 0;
    let mut run = |d: &Domain| -> Result<(Tensor, Tensor), String> {
        let SampleShape::Image { .. } = d.shape else {
            return Err(format!(
                "a teacher looks at images, but this data is {}",
                d.shape.describe()
            ));
        };
        let fail =
            |e: candle_core::Error| format!("the teacher ({}) failed: {e}", teacher.describe());
        let mut feats = Vec::new();
        let mut logits = Vec::new();
        let per = d.shape.len();
        for start in (0..d.len()).step_by(CHUNK) {
            let n = CHUNK.min(d.len() - start);
            let x = Tensor::from_slice(
                &d.x[start * per..(start + n) * per],
                d.shape.batch_dims(n).as_slice(),
                &Device::Cpu,
            )
            .map_err(fail)?;
            let out = teacher.forward_raw(&x).map_err(fail)?;
            // Detached: kept tensors would otherwise hold the whole pass's graph (every
            // activation of every chunk) alive.
            feats.push(out.features.detach());
            logits.push(out.logits.detach());
            done += n;
            progress(&what, LoadProgress { done, total });
        }
        let cat = |parts: &[Tensor]| {
            Tensor::cat(parts, 0)
                .and_then(|t| t.to_device(device))
                .map_err(fail)
        };
        Ok((cat(&feats)?, cat(&logits)?))
    };
    let (source_features, source_logits) = run(source)?;
    let (target_features, target_logits) = run(target)?;
    Ok(TeacherOutputs {
        description: teacher.describe(),
        class_names: teacher.class_names().to_vec(),
        source_features,
        target_features,
        source_logits,
        target_logits,
    })
}
