//! Relational knowledge distillation: a teacher (`--teacher`: a saved model or the built-in
//! ImageNet EfficientNet-Lite0) hands the student the *structure* between samples, not its
//! outputs, so teacher and student may differ in architecture, width and label set.
//!
//! - Similarity-preserving distillation (Tung & Mori, ICCV 2019): the batch's Gram matrix
//!   of features, each row scaled to unit length, of student and teacher made equal
//!   (squared Frobenius distance over b²).
//! - RKD distance (Park et al., CVPR 2019): the pairwise distances of the batch, each
//!   space's divided by its mean, made equal (Huber loss).
//! - RKD angle: the angles each triple of samples forms, made equal (Huber loss), on the
//!   first [`ANGLE_ROWS`] rows of the batch (the triples grow as b³).
//!
//! The relations are taken over the labelled batch and the unlabeled target batch together,
//! so the student also learns how the teacher arranges the target (`--param on_target=0`:
//! the labelled batch only). Loss: cross-entropy on
//! the labelled rows + λ·SP + w_d·RKD-D + w_a·RKD-A.
//!
//! Figures: each term, and the relation agreement of the batch (the overlap of each sample's
//! 10 nearest neighbours in teacher and student space, [`relations::knn_overlap`]). The
//! report adds cosine-similarity heatmaps of up to 60 labelled images sorted by class
//! (teacher, student before training, student after) and the agreement on the target before
//! and after.

use super::teacher::{TeacherOutput, TeacherOutputs, rows};
use super::{EpochMeans, LabelledPass, Method, MethodSettings, TargetPass, TrainBatch};
use crate::analysis::Features;
use crate::analysis::relations::{self, DEFAULT_K};
use crate::metric::{Metric, Unit};
use crate::model::Network;
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Key of the similarity-preserving term.
pub const SP_LOSS: &str = "sp_loss";
/// Key of the RKD distance term.
pub const DISTANCE_LOSS: &str = "rkd_distance";
/// Key of the RKD angle term.
pub const ANGLE_LOSS: &str = "rkd_angle";
/// Key of the batch's relation agreement.
pub const AGREEMENT: &str = "relation_agreement";
/// Rows of a batch whose triples the angle term compares.
pub const ANGLE_ROWS: usize = 32;
/// Target images the report's agreement is measured on (evenly spaced).
const AGREEMENT_SAMPLES: usize = 500;
/// Labelled images per class in the report's heatmaps.
const HEATMAP_PER_CLASS: usize = 6;
/// Classes in the report's heatmaps.
const HEATMAP_CLASSES: usize = 10;

/// Relational distillation's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "relation-distill",
    family: super::Family::Relation,
    summary: "A teacher model (a saved one, or the built-in ImageNet network) hands the student the relations between samples (which images look alike, Tung & Mori; distances and angles, Park et al.), not its outputs: any architecture, any label set.",
    labelled: super::LabelledData::SourceAndTarget,
    uses_unlabeled_target: true,
    teacher: true,
    hyperparameters: &[
        super::Hyperparameter::lambda(1000.0).labelled(
            "λ (similarity-preserving weight)",
            "Weight of the similarity-preserving term: the batch's normalised Gram matrices of student and teacher made equal (Tung & Mori use 3000).",
        ),
        super::Hyperparameter::new(
            "distance",
            "RKD distance weight",
            "Weight of the RKD distance term: pairwise distances, each space's over its mean, made equal (Park et al. use 25 alone).",
            1.0,
            (0.0, 1000.0),
        ),
        super::Hyperparameter::new(
            "angle",
            "RKD angle weight",
            "Weight of the RKD angle term: the angles of each triple of samples made equal (Park et al. use 50 alone).",
            2.0,
            (0.0, 1000.0),
        ),
        super::Hyperparameter::switch(
            "on_target",
            "Relations on target images",
            "On (1): the relations are taken over the labelled and the unlabeled target images together (the student learns how the teacher arranges the target); off (0): over the labelled images only.",
            true,
        ),
    ],
    metrics: &[
        Metric::new(SP_LOSS, "similarity-preserving loss", Unit::Plain).higher_is_better(false),
        Metric::new(DISTANCE_LOSS, "RKD distance loss", Unit::Plain).higher_is_better(false),
        Metric::new(ANGLE_LOSS, "RKD angle loss", Unit::Plain).higher_is_better(false),
        Metric::accuracy(AGREEMENT, "relation agreement (10-NN overlap)"),
    ],
    build: Some(|settings, net| Ok(Box::new(RelationDistill::new(settings, net)?))),
    bottleneck: None,
    anneal_lr: false,
};

/// What the report shows of the relations: heatmaps sorted by class and the agreement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Relations {
    /// The teacher ("efficientnet-lite0 (96 px, 1000 classes)").
    pub teacher_model: String,
    /// Neighbours compared per sample.
    pub k: usize,
    /// The class of each heatmap row (labelled images, sorted by class).
    pub classes: Vec<u32>,
    /// Cosine similarities of those images' features: the teacher's, the student's before
    /// training and after.
    pub teacher: Vec<Vec<f32>>,
    pub student_before: Vec<Vec<f32>>,
    pub student_after: Vec<Vec<f32>>,
    /// Overlap of the k-nearest-neighbour sets of teacher and student on the target.
    pub agreement_before: Option<f64>,
    pub agreement_after: Option<f64>,
}

/// The relation terms of one batch, each a scalar tensor.
pub struct RelationLosses {
    pub sp: Tensor,
    pub distance: Tensor,
    pub angle: Tensor,
}

/// Relational distillation from a teacher's precomputed features.
pub struct RelationDistill {
    teacher: Arc<TeacherOutputs>,
    lambda: f64,
    w_distance: f64,
    w_angle: f64,
    /// Whether the relations include the unlabeled target batch.
    on_target: bool,
    means: EpochMeans,
    agreement: (f64, usize),
    relations: Relations,
    /// Heatmap rows: positions in the labelled pass (chosen at the first pass).
    probe: Vec<usize>,
    passes: usize,
}

impl RelationDistill {
    pub fn new(settings: &MethodSettings, _net: &Network) -> Result<Self> {
        let Some(teacher) = settings.teacher.clone() else {
            candle_core::bail!("relation-distill needs a teacher (--teacher MODEL)");
        };
        Ok(Self {
            relations: Relations {
                teacher_model: teacher.description.clone(),
                k: DEFAULT_K,
                ..Relations::default()
            },
            teacher,
            lambda: settings.lambda,
            w_distance: settings.param("distance").unwrap_or(1.0),
            w_angle: settings.param("angle").unwrap_or(2.0),
            on_target: settings.param("on_target").unwrap_or(1.0) >= 0.5,
            means: EpochMeans::default(),
            agreement: (0.0, 0),
            probe: Vec::new(),
            passes: 0,
        })
    }

    /// Heatmaps of the probe rows and the agreement on the target, for this pass.
    fn observe(&mut self, pass: &TargetPass) -> Result<(Vec<Vec<f32>>, Option<f64>)> {
        let heat = match &pass.labelled {
            Some(labelled) => {
                if self.probe.is_empty() {
                    self.choose_probe(labelled)?;
                }
                let probe = rows(&labelled.out.features, &self.probe)?;
                relations::cosine_matrix(&features(&probe)?)
            }
            None => Vec::new(),
        };
        let step = pass.ids.len().div_ceil(AGREEMENT_SAMPLES).max(1);
        let at: Vec<usize> = (0..pass.ids.len()).step_by(step).collect();
        let agreement = if at.len() >= 2 {
            let ids: Vec<usize> = at.iter().map(|&p| pass.ids[p]).collect();
            let student = features(&rows(&pass.out.features, &at)?)?;
            let teacher = features(&self.teacher.features(true, &ids)?)?;
            relations::knn_overlap(&student, &teacher, DEFAULT_K).ok()
        } else {
            None
        };
        Ok((heat, agreement))
    }

    /// Up to [`HEATMAP_PER_CLASS`] images of each of the first [`HEATMAP_CLASSES`] classes
    /// of the labelled pass, sorted by class; the teacher's heatmap of them.
    fn choose_probe(&mut self, labelled: &LabelledPass) -> Result<()> {
        let mut probe: Vec<usize> = Vec::new();
        for class in 0..HEATMAP_CLASSES as u32 {
            probe.extend(
                labelled
                    .labels
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| **l == class)
                    .map(|(p, _)| p)
                    .take(HEATMAP_PER_CLASS),
            );
        }
        let mut parts = Vec::new();
        for &p in &probe {
            let (target, id) = labelled.ids[p];
            parts.push(self.teacher.features(target, &[id])?);
        }
        if !parts.is_empty() {
            let teacher = Tensor::cat(&parts, 0)?;
            self.relations.teacher = relations::cosine_matrix(&features(&teacher)?);
        }
        self.relations.classes = probe.iter().map(|&p| labelled.labels[p]).collect();
        self.probe = probe;
        Ok(())
    }
}

fn features(t: &Tensor) -> Result<Features> {
    let (n, d) = t.dims2()?;
    let data = t.flatten_all()?.to_vec1::<f32>()?;
    Features::new(data, n, d).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// Huber loss (δ = 1) of each element, averaged.
fn huber_mean(diff: &Tensor) -> Result<Tensor> {
    let a = diff.abs()?;
    let q = a.clamp(0.0, 1.0)?;
    ((q.sqr()? * 0.5)? + (a - q)?)?.mean_all()
}

/// Each row's Gram-matrix row scaled to unit length (SP's normalised similarities).
fn sp_gram(f: &Tensor) -> Result<Tensor> {
    let g = f.matmul(&f.t()?)?;
    let norm = (g.sqr()?.sum_keepdim(1)? + 1e-12)?.sqrt()?;
    g.broadcast_div(&norm)
}

/// Pairwise Euclidean distances over their mean off the diagonal (diagonal 0).
fn rkd_distances(f: &Tensor) -> Result<Tensor> {
    let n = f.dim(0)?;
    let sq = f.sqr()?.sum_keepdim(1)?;
    let d2 = (sq.broadcast_add(&sq.t()?)? - (f.matmul(&f.t()?)? * 2.0)?)?.relu()?;
    let eye = Tensor::eye(n, f.dtype(), f.device())?;
    // 1 on the diagonal keeps the square root's gradient finite; masked out after.
    let d = (d2 + &eye)?.sqrt()?.broadcast_mul(&(1.0 - &eye)?)?;
    let pairs = (n * (n - 1)).max(1) as f64;
    let mean = (d.sum_all()? / pairs)?;
    d.broadcast_div(&(mean + 1e-12)?)
}

/// The cosines of the angles at each sample j between the directions to samples i and k
/// (`m × m × m` for the first `m` rows).
fn rkd_angles(f: &Tensor, m: usize) -> Result<Tensor> {
    let f = f.narrow(0, 0, m)?;
    let e = f.unsqueeze(0)?.broadcast_sub(&f.unsqueeze(1)?)?;
    let norm = (e.sqr()?.sum_keepdim(2)? + 1e-12)?.sqrt()?;
    let e = e.broadcast_div(&norm)?;
    e.matmul(&e.transpose(1, 2)?.contiguous()?)
}

/// The three relation terms between student features `s` and teacher features `t` (the
/// same rows; `t` is a constant).
pub fn relation_losses(s: &Tensor, t: &Tensor) -> Result<RelationLosses> {
    let t = t.detach();
    let b = s.dim(0)? as f64;
    let sp = ((sp_gram(s)? - sp_gram(&t)?)?.sqr()?.sum_all()? / (b * b))?;
    let distance = huber_mean(&(rkd_distances(s)? - rkd_distances(&t)?)?)?;
    let m = s.dim(0)?.min(ANGLE_ROWS);
    let angle = huber_mean(&(rkd_angles(s, m)? - rkd_angles(&t, m)?)?)?;
    Ok(RelationLosses {
        sp,
        distance,
        angle,
    })
}

impl Method for RelationDistill {
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, _progress: f64) -> Result<Tensor> {
        let x = match (&batch.target_x, self.on_target) {
            (Some(t), true) => Tensor::cat(&[&batch.x, t], 0)?,
            _ => batch.x.clone(),
        };
        let n = batch.x.dim(0)?;
        let out = net.forward_t(&x, true)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits.narrow(0, 0, n)?, &batch.y)?;
        let teacher = self
            .teacher
            .batch(batch, self.on_target, TeacherOutput::Features)?;
        let rel = relation_losses(&out.features, &teacher)?;
        self.means.add(SP_LOSS, &rel.sp)?;
        self.means.add(DISTANCE_LOSS, &rel.distance)?;
        self.means.add(ANGLE_LOSS, &rel.angle)?;
        if let Ok(a) = relations::knn_overlap(
            &features(&out.features.detach())?,
            &features(&teacher)?,
            DEFAULT_K,
        ) {
            self.agreement.0 += a;
            self.agreement.1 += 1;
        }
        let relation = ((rel.sp * self.lambda)?
            + (rel.distance * self.w_distance)?
            + (rel.angle * self.w_angle)?)?;
        ce + relation
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        let mut m = self.means.take();
        let (sum, n) = std::mem::take(&mut self.agreement);
        if n > 0 {
            m.push((AGREEMENT.to_string(), sum / n as f64));
        }
        m
    }

    fn labels_target(&self) -> bool {
        true
    }

    fn needs_labelled_pass(&self) -> bool {
        true
    }

    /// The first pass (before any step) is the student before training.
    fn begin_epoch(&mut self, pass: &TargetPass) -> Result<()> {
        if self.passes == 0 {
            let (heat, agreement) = self.observe(pass)?;
            self.relations.student_before = heat;
            self.relations.agreement_before = agreement;
        }
        self.passes += 1;
        Ok(())
    }

    fn end_run(&mut self, pass: &TargetPass) -> Result<()> {
        let (heat, agreement) = self.observe(pass)?;
        self.relations.student_after = heat;
        self.relations.agreement_after = agreement;
        Ok(())
    }

    fn report_extra(&self) -> Option<serde_json::Value> {
        let round = |m: &Vec<Vec<f32>>| -> Vec<Vec<f32>> {
            m.iter()
                .map(|r| r.iter().map(|v| (v * 1000.0).round() / 1000.0).collect())
                .collect()
        };
        let r = Relations {
            teacher: round(&self.relations.teacher),
            student_before: round(&self.relations.student_before),
            student_after: round(&self.relations.student_after),
            ..self.relations.clone()
        };
        Some(serde_json::json!({ "relations": r }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn tensor(rows: &[[f32; 3]]) -> Tensor {
        let v: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(v, (rows.len(), 3), &Device::Cpu).unwrap()
    }

    #[test]
    fn the_relations_ignore_scale_and_rotation_but_not_a_change_of_structure() {
        let t = tensor(&[
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 1.0, 0.5],
            [0.2, 0.3, 1.0],
        ]);
        // The same points turned (x ↔ y) and scaled: the same relations.
        let same = tensor(&[
            [0.0, 2.0, 0.0],
            [2.0, 0.0, 0.0],
            [2.0, 2.0, 1.0],
            [0.6, 0.4, 2.0],
        ]);
        let l = relation_losses(&same, &t).unwrap();
        for v in [l.sp, l.distance, l.angle] {
            assert!(v.to_scalar::<f32>().unwrap() < 1e-6);
        }
        let other = tensor(&[
            [1.0, 0.0, 0.0],
            [1.0, 0.1, 0.0],
            [0.0, 0.0, 1.0],
            [5.0, 1.0, 0.0],
        ]);
        let l = relation_losses(&other, &t).unwrap();
        for v in [l.sp, l.distance, l.angle] {
            assert!(v.to_scalar::<f32>().unwrap() > 1e-3);
        }
    }

    #[test]
    fn descending_the_relation_losses_moves_the_student_towards_the_teachers_structure() {
        let t = tensor(&[
            [1.0, 0.0, 0.0],
            [0.9, 0.1, 0.0],
            [0.0, 1.0, 0.1],
            [0.1, 0.9, 0.0],
            [0.0, 0.1, 1.0],
        ]);
        let s = Var::from_tensor(&tensor(&[
            [0.3, 0.2, 0.9],
            [1.0, 0.3, 0.2],
            [0.5, 0.5, 0.1],
            [0.2, 1.0, 0.4],
            [0.9, 0.1, 0.6],
        ]))
        .unwrap();
        let total = |s: &Tensor| {
            let l = relation_losses(s, &t).unwrap();
            ((l.sp * 100.0).unwrap() + l.distance + l.angle).unwrap()
        };
        let start = total(s.as_tensor()).to_scalar::<f32>().unwrap();
        use candle_nn::Optimizer;
        let mut opt = candle_nn::SGD::new(vec![s.clone()], 0.05).unwrap();
        for _ in 0..300 {
            opt.backward_step(&total(s.as_tensor())).unwrap();
        }
        let end = total(s.as_tensor()).to_scalar::<f32>().unwrap();
        assert!(end.is_finite() && end < start * 0.3, "{start} → {end}");
    }
}
