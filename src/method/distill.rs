//! Ordinary knowledge distillation (Hinton, Vinyals & Dean, 2015): the student matches the
//! teacher's softened class probabilities, on the labelled batch and on the unlabeled target
//! batch, beside the cross-entropy on the labels. It needs a teacher with the student's
//! classes; it is the point of comparison for relation-based distillation
//! ([`super::relation_distill`]), which hands over the relations between samples instead
//! and so works across label sets.
//!
//! Loss: cross-entropy + λ·T²·KL(softmax(teacher/T) ‖ softmax(student/T)).

use super::teacher::{TeacherOutput, TeacherOutputs};
use super::{EpochMeans, Method, MethodSettings, TrainBatch};
use crate::metric::{Metric, Unit};
use crate::model::Network;
use candle_core::{D, Result, Tensor};
use std::sync::Arc;

/// Key of the distillation term.
pub const KD_LOSS: &str = "kd_loss";

/// Output distillation's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "distill",
    family: super::Family::Parameter,
    summary: "Knowledge distillation of outputs (Hinton et al.): the student matches a teacher's softened class probabilities on source and target images; the teacher must know the same classes.",
    labelled: super::LabelledData::SourceAndTarget,
    uses_unlabeled_target: true,
    bottleneck: None,
    anneal_lr: false,
    teacher: true,
    hyperparameters: &[
        super::Hyperparameter::lambda(1.0).labelled(
            "λ (distillation weight)",
            "Weight of matching the teacher's softened probabilities against the cross-entropy on the labels.",
        ),
        super::Hyperparameter::new(
            "temperature",
            "Temperature T",
            "Softens both distributions before they are compared (Hinton et al. use 2 to 20).",
            4.0,
            (0.5, 50.0),
        ),
    ],
    metrics: &[Metric::new(KD_LOSS, "distillation loss", Unit::Nats).higher_is_better(false)],
    build: Some(|settings, net| Ok(Box::new(Distill::new(settings, net)?))),
};

/// Output distillation from a teacher's precomputed class scores.
pub struct Distill {
    teacher: Arc<TeacherOutputs>,
    lambda: f64,
    temperature: f64,
    means: EpochMeans,
}

impl Distill {
    pub fn new(settings: &MethodSettings, net: &Network) -> Result<Self> {
        let Some(teacher) = settings.teacher.clone() else {
            candle_core::bail!("distill needs a teacher (--teacher MODEL)");
        };
        if teacher.class_names.len() != net.spec.num_classes {
            candle_core::bail!(
                "distill matches the teacher's class probabilities, but the teacher ({}) knows {} classes and this data has {}: use relation-distill, which hands over relations and works across label sets",
                teacher.description,
                teacher.class_names.len(),
                net.spec.num_classes
            );
        }
        Ok(Self {
            teacher,
            lambda: settings.lambda,
            temperature: settings.param("temperature").unwrap_or(4.0),
            means: EpochMeans::default(),
        })
    }
}

/// T²·KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the rows.
pub fn kd_loss(student: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    let log_s = candle_nn::ops::log_softmax(&(student / temperature)?, D::Minus1)?;
    let log_t = candle_nn::ops::log_softmax(&(teacher.detach() / temperature)?, D::Minus1)?;
    let kl = (log_t.exp()? * (log_t - log_s)?)?
        .sum(D::Minus1)?
        .mean_all()?;
    kl * (temperature * temperature)
}

impl Method for Distill {
    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, _progress: f64) -> Result<Tensor> {
        let x = match &batch.target_x {
            Some(t) => Tensor::cat(&[&batch.x, t], 0)?,
            None => batch.x.clone(),
        };
        let n = batch.x.dim(0)?;
        let logits = net.forward_t(&x, true)?.logits;
        let ce = candle_nn::loss::cross_entropy(&logits.narrow(0, 0, n)?, &batch.y)?;
        let teacher = self.teacher.batch(batch, true, TeacherOutput::Logits)?;
        let kd = kd_loss(&logits, &teacher, self.temperature)?;
        self.means.add(KD_LOSS, &kd)?;
        ce + (kd * self.lambda)?
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
    fn the_distillation_loss_is_zero_only_when_the_softened_outputs_agree() {
        let t = Tensor::new(&[[2.0f32, 0.0, -1.0], [0.0, 3.0, 0.0]], &Device::Cpu).unwrap();
        let same = kd_loss(&(&t + 5.0).unwrap(), &t, 4.0).unwrap();
        assert!(same.to_scalar::<f32>().unwrap().abs() < 1e-5);
        let flipped = Tensor::new(&[[-1.0f32, 0.0, 2.0], [3.0, 0.0, 0.0]], &Device::Cpu).unwrap();
        let differ = kd_loss(&flipped, &t, 4.0).unwrap();
        assert!(differ.to_scalar::<f32>().unwrap() > 0.1);
    }
}
