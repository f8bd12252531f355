//! Self-supervised pretraining by rotation prediction (Gidaris et al., 2018, "Unsupervised
//! Representation Learning by Predicting Image Rotations"): unsupervised transfer, where
//! neither domain needs a label. Each image is turned by 0°, 90°, 180° or 270° and a small
//! head on the backbone's features learns which: to tell a 6 from a turned 9, or a sky
//! from a floor, the backbone has to learn what objects look like — features a later run
//! reuses (`--init` this run's model, then train with a few labelled target images).
//!
//! The run learns from the source images and the unlabeled target batches together and
//! never reads a class label: its class head stays untrained, so the run reports no class
//! accuracy, only how well it tells the rotations apart. Each image of a batch gets one
//! turn, cycling with the step so that every batch holds the four turns about equally.
//!
//! Loss: cross-entropy of the rotation head over the turned source and target images.

use super::{EpochMeans, Method, MethodSettings, TrainBatch, init_method_vars};
use crate::data::SampleShape;
use crate::metric::{Metric, Unit};
use crate::model::{Network, layers};
use candle_core::{D, DType, Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

/// Key of the rotation head's accuracy on the training batches.
pub const ROTATION_ACCURACY: &str = "rotation_acc";
/// Key of the rotation head's loss.
pub const ROTATION_LOSS: &str = "rotation_loss";
/// Prefix of the rotation head's variables.
pub const PREFIX: &str = "rotation";

/// Rotation prediction's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "rotation-pretrain",
    family: super::Family::Unsupervised,
    summary: "Self-supervised pretraining: learn features by predicting how far each source and target image was turned (0°, 90°, 180°, 270°), with no class label at all; start a later run from its model.",
    labelled: super::LabelledData::None,
    uses_unlabeled_target: true,
    metrics: &[
        Metric::accuracy(ROTATION_ACCURACY, "rotation accuracy").with_chance(0.25),
        Metric::new(ROTATION_LOSS, "rotation loss", Unit::Nats).higher_is_better(false),
    ],
    build: Some(|settings, net| Ok(Box::new(Rotation::new(settings, net)?))),
    ..super::PLAIN_BASE
};

/// Rotation prediction with a linear head on the backbone features.
pub struct Rotation {
    head: Linear,
    step: usize,
    means: EpochMeans,
}

impl Rotation {
    pub fn new(settings: &MethodSettings, net: &Network) -> Result<Self> {
        let SampleShape::Image { height, width, .. } = net.spec.input else {
            candle_core::bail!(
                "rotation-pretrain turns images, but this data is {}: use an image dataset",
                net.spec.input.describe()
            );
        };
        if height != width {
            candle_core::bail!(
                "rotation-pretrain turns square images, but these are {width}×{height}"
            );
        }
        let vb = VarBuilder::from_varmap(&net.varmap, DType::F32, &net.device).pp(PREFIX);
        let head = layers::linear(net.feature_dim(), 4, vb)?;
        init_method_vars(
            net,
            &format!("{PREFIX}."),
            &[&format!("{PREFIX}.")],
            settings.seed,
        )?;
        Ok(Self {
            head,
            step: 0,
            means: EpochMeans::default(),
        })
    }
}

/// `x` (N×C×H×W, square) turned by `quarter` quarter turns anticlockwise.
pub fn rotate(x: &Tensor, quarter: usize) -> Result<Tensor> {
    let flip = |t: &Tensor, dim: usize| -> Result<Tensor> {
        let n = t.dim(dim)?;
        let rev: Vec<u32> = (0..n as u32).rev().collect();
        t.index_select(&Tensor::from_vec(rev, n, t.device())?, dim)
    };
    match quarter % 4 {
        0 => Ok(x.clone()),
        // Anticlockwise: out[i][j] = in[j][W−1−i] — flip the columns, then transpose.
        1 => flip(x, 3)?.transpose(2, 3)?.contiguous(),
        2 => flip(&flip(x, 2)?, 3),
        _ => flip(x, 2)?.transpose(2, 3)?.contiguous(),
    }
}

impl Method for Rotation {
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, _progress: f64) -> Result<Tensor> {
        let x = match &batch.target_x {
            Some(t) => Tensor::cat(&[&batch.x, t], 0)?,
            None => batch.x.clone(),
        };
        let n = x.dim(0)?;
        let start = self.step;
        self.step += 1;
        // Rows grouped by their turn, each group turned at once.
        let mut parts = Vec::new();
        let mut labels = Vec::new();
        for quarter in 0..4 {
            let rows: Vec<u32> = (0..n as u32)
                .filter(|&i| (i as usize + start) % 4 == quarter)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let k = rows.len();
            let picked = x.index_select(&Tensor::from_vec(rows, k, x.device())?, 0)?;
            parts.push(rotate(&picked, quarter)?);
            labels.extend(std::iter::repeat_n(quarter as u32, k));
        }
        let turned = Tensor::cat(&parts, 0)?;
        let labels = Tensor::from_vec(labels, n, x.device())?;
        let features = net.backbone_features(&turned, true)?;
        let logits = self.head.forward(&features)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
        let right = logits
            .argmax(D::Minus1)?
            .eq(&labels)?
            .to_dtype(DType::F32)?
            .mean_all()?;
        self.means.add(ROTATION_ACCURACY, &right)?;
        self.means.add(ROTATION_LOSS, &loss)?;
        Ok(loss)
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        self.means.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn quarter_turns_move_a_corner_around_and_four_make_a_whole_turn() {
        // A 3×3 image with a 1 in the top-left corner.
        let mut v = vec![0f32; 9];
        v[0] = 1.0;
        let x = Tensor::from_vec(v, (1, 1, 3, 3), &Device::Cpu).unwrap();
        let corner = |t: &Tensor| {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            v.iter().position(|&a| a == 1.0).unwrap()
        };
        // Anticlockwise: top-left → bottom-left → bottom-right → top-right.
        let turns: Vec<usize> = (0..4).map(|q| corner(&rotate(&x, q).unwrap())).collect();
        assert_eq!(turns, vec![0, 6, 8, 2]);
        let mut t = x.clone();
        for _ in 0..4 {
            t = rotate(&t, 1).unwrap();
        }
        let back: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let orig: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(back, orig);
    }
}
