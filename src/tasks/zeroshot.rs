//! Zero-shot learning by attributes (direct attribute prediction, Lampert et al. 2009):
//! classes are described by attributes; the network learns to predict the attributes from
//! images of the *seen* classes only, and an image of an *unseen* class is named by the
//! class whose signature its predicted attributes fit best.
//!
//! With p_a the predicted probability of attribute a and π_a its mean over the seen
//! classes (the prior), DAP scores class c by Σ_a log p(a = s_ca | x) / p(a = s_ca), which
//! for signatures s_ca ∈ [0, 1] equals, up to a term shared by all classes,
//! Σ_a s_ca · (logit p_a − logit π_a): the network's attribute logits against each
//! signature, corrected for how common each attribute is.

use super::tables::{AttributeTable, read_attribute_table};
use super::{TaskData, TaskRun, outputs, rows, stratified_split, task_report, train_task};
use crate::data::folder::{LoadOptions, decode_scan, looks_colour, scan_folder};
use crate::data::shapes;
use crate::data::{DataError, Domain, LoadProgress, SampleShape};
use crate::method::domain_classifier::bce_with_logits;
use crate::model::save_checkpoint;
use crate::train::config::ExperimentConfig;
use crate::train::epoch_loop::EpochFigures;
use crate::train::events::{EventSink, NetworkSummary, RunReport};
use crate::train::experiment::{Control, validate_config};
use crate::train::learner::{Learner, NetworkGoal, build_network, in_epoch, prepare};
use crate::train::load::ShapeHint;
use crate::train::results::{
    AttributeAccuracy, ClassAccuracy, Metric, RunExtra, SOURCE_ACCURACY, TARGET_ACCURACY,
    ZeroShotPrediction, ZeroShotResults,
};
use crate::train::{Invalid, RunError, Setting};
use candle_core::Tensor;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Images of labelled classes and the attribute table describing the classes.
#[derive(Clone, Debug)]
pub struct ZeroShotData {
    /// The images, labelled by their class folders.
    pub domain: Domain,
    /// Each class's attribute values (the signatures unseen classes are named by).
    pub table: AttributeTable,
    /// The table's file, for messages (None for the demo).
    pub table_path: Option<String>,
    /// The unseen classes when the user names none.
    pub default_unseen: Vec<String>,
    /// Non-fatal problems: skipped files, classes without a folder.
    pub warnings: Vec<String>,
    /// Where the data came from, for reports.
    pub origin: String,
}

impl AsMut<Domain> for ZeroShotData {
    fn as_mut(&mut self) -> &mut Domain {
        &mut self.domain
    }
}

/// The built-in zero-shot demo: 18 shape × colour × fill classes, 7 attributes.
pub fn shapes_zero_shot(seed: u64, per_class: usize) -> ZeroShotData {
    let (attributes, rows) = shapes::attribute_table();
    ZeroShotData {
        domain: shapes::shapes_domain(seed, per_class),
        table: AttributeTable {
            attributes,
            lines: (0..rows.len()).map(|i| i + 2).collect(),
            classes: rows.iter().map(|r| r.0.clone()).collect(),
            signatures: rows.into_iter().map(|r| r.1).collect(),
        },
        table_path: None,
        default_unseen: shapes::DEFAULT_UNSEEN.map(String::from).to_vec(),
        warnings: Vec::new(),
        origin: "demo shapes".into(),
    }
}

/// Read a folder of class subfolders and the attribute CSV describing its classes.
pub fn load_zero_shot_folder(
    folder: &Path,
    csv: &Path,
    hint: ShapeHint,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<ZeroShotData, DataError> {
    let table = read_attribute_table(csv).map_err(|e| DataError::Invalid(e.to_string()))?;
    let scan = scan_folder("image", folder)?;
    let channels = hint
        .channels
        .unwrap_or(if looks_colour(&scan) { 3 } else { 1 });
    let opts = LoadOptions {
        role: "image".into(),
        shape: SampleShape::Image {
            channels,
            height: hint.size,
            width: hint.size,
        },
        allow_flat: false,
    };
    let domain = decode_scan(&scan, folder, &opts, progress)?;
    let mut warnings = domain.warnings.clone();
    warnings.extend(domain.skipped_warning());
    let absent: Vec<&str> = table
        .classes
        .iter()
        .filter(|c| !domain.class_names.contains(c))
        .map(String::as_str)
        .collect();
    if !absent.is_empty() {
        warnings.push(format!(
            "{} class(es) of {} have no folder and are not used: {}",
            absent.len(),
            csv.display(),
            absent.join(", ")
        ));
    }
    Ok(ZeroShotData {
        domain,
        table,
        table_path: Some(csv.display().to_string()),
        default_unseen: Vec::new(),
        warnings,
        origin: format!("{} + {}", folder.display(), csv.display()),
    })
}

/// The classes of a zero-shot run, checked.
#[derive(Clone, Debug)]
pub struct ClassPlan {
    /// Per folder class: its row in the attribute table.
    pub table_row: Vec<usize>,
    /// Folder class indices.
    pub seen: Vec<usize>,
    pub unseen: Vec<usize>,
    pub warnings: Vec<String>,
}

/// Check the unseen classes against the folder and the table: every class needs a
/// signature, an unseen class may not share its signature with another class, and at
/// least two classes must be seen and two unseen.
pub fn plan_classes(data: &ZeroShotData, unseen: &[String]) -> Result<ClassPlan, RunError> {
    let table_name = data.table_path.as_deref().unwrap_or("the attribute table");
    let classes = &data.domain.class_names;
    let unseen: Vec<String> = if unseen.is_empty() {
        data.default_unseen.clone()
    } else {
        unseen.to_vec()
    };
    if unseen.len() < 2 {
        return Err(RunError::Invalid(
            Invalid::text("zero-shot needs at least two unseen classes (")
                .name(Setting::Unseen)
                .then(format!(
                    "), got {}{}",
                    unseen.len(),
                    if unseen.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", unseen.join(", "))
                    }
                )),
        ));
    }
    let mut unseen_idx = Vec::new();
    for u in &unseen {
        match classes.iter().position(|c| c == u) {
            Some(i) if !unseen_idx.contains(&i) => unseen_idx.push(i),
            Some(_) => {
                return Err(RunError::Invalid(Invalid::setting(
                    Setting::Unseen,
                    format!(" names '{u}' twice"),
                )));
            }
            None => {
                return Err(RunError::Invalid(Invalid::text(format!(
                    "unseen class '{u}' has no images: the classes are {}",
                    classes.join(", ")
                ))));
            }
        }
    }
    let mut table_row = Vec::with_capacity(classes.len());
    for (i, c) in classes.iter().enumerate() {
        match data.table.find(c) {
            Some(r) => table_row.push(r),
            None if unseen_idx.contains(&i) => {
                return Err(RunError::Invalid(Invalid::text(format!(
                    "{table_name}: unseen class '{c}' has no attribute signature (no row for it)"
                ))));
            }
            None => {
                return Err(RunError::Invalid(Invalid::text(format!(
                    "{table_name}: class '{c}' has images but no row (every class needs its attributes)"
                ))));
            }
        }
    }
    for &u in &unseen_idx {
        for (c, &row) in table_row.iter().enumerate() {
            if c != u && data.table.signatures[row] == data.table.signatures[table_row[u]] {
                return Err(RunError::Invalid(Invalid::text(format!(
                    "{table_name}, line {}: unseen class '{}' has the same attributes as '{}' (line {}): zero-shot cannot tell them apart",
                    data.table.lines[table_row[u]], classes[u], classes[c], data.table.lines[row]
                ))));
            }
        }
    }
    let seen: Vec<usize> = (0..classes.len())
        .filter(|i| !unseen_idx.contains(i))
        .collect();
    if seen.len() < 2 {
        return Err(RunError::Invalid(Invalid::text(format!(
            "zero-shot needs at least two seen classes to learn attributes from; only {} remain",
            seen.len()
        ))));
    }
    let mut warnings = Vec::new();
    for (a, name) in data.table.attributes.iter().enumerate() {
        let values: Vec<f32> = seen
            .iter()
            .map(|&c| data.table.signatures[table_row[c]][a])
            .collect();
        if values.iter().all(|&v| v == values[0]) {
            warnings.push(format!(
                "attribute '{name}' is {} for every seen class: the network cannot learn it",
                values[0]
            ));
        }
    }
    Ok(ClassPlan {
        table_row,
        seen,
        unseen: unseen_idx,
        warnings,
    })
}

/// Clamp for the attribute logits when scoring (p in [0.001, 0.999]).
const LOGIT_CLAMP: f32 = 6.9;

fn logit(p: f32) -> f32 {
    let p = p.clamp(0.02, 0.98);
    (p / (1.0 - p)).ln()
}

/// DAP: the best of `candidates` (class indices) for attribute logits `z`.
pub fn dap_predict(
    z: &[f32],
    candidates: &[usize],
    signatures: &[&[f32]],
    prior_logit: &[f32],
) -> usize {
    let score = |c: usize| -> f32 {
        signatures[c]
            .iter()
            .zip(z)
            .zip(prior_logit)
            .map(|((s, z), p)| s * (z.clamp(-LOGIT_CLAMP, LOGIT_CLAMP) - p))
            .sum()
    };
    *candidates
        .iter()
        .max_by(|&&a, &&b| score(a).total_cmp(&score(b)))
        .expect("at least one candidate")
}

/// A zero-shot evaluation.
#[derive(Clone, Debug, Default)]
pub struct ZeroShotEval {
    /// Held-out images of seen classes, named among the seen classes.
    pub seen_accuracy: Option<f64>,
    /// Images of unseen classes, named among the unseen classes.
    pub unseen_accuracy: Option<f64>,
    /// Generalised zero-shot: unseen images named among all classes.
    pub unseen_accuracy_all_classes: Option<f64>,
    /// Per attribute: accuracy of its predicted side (p ≥ 0.5) on unseen images.
    pub attribute_accuracy: Vec<f64>,
    /// Per unseen class: accuracy and image count.
    pub unseen_class_accuracy: Vec<ClassAccuracy>,
    pub confusion: Vec<Vec<u32>>,
    pub predictions: Vec<ZeroShotPrediction>,
}

/// Train on the seen classes' attributes, evaluate seen and unseen classes every epoch.
pub fn run_zero_shot(
    config: &ExperimentConfig,
    data: &ZeroShotData,
    sink: &mut dyn EventSink,
    control: &mut dyn Control,
) -> Result<RunReport, RunError> {
    validate_config(config)?;
    let started = Instant::now();
    let plan = plan_classes(data, &config.unseen)?;
    let domain = &data.domain;
    let labels = domain.labels.as_ref().ok_or_else(|| {
        RunError::Invalid(Invalid::text(
            "zero-shot needs a folder of class subfolders",
        ))
    })?;
    let n = domain.len();
    let n_attr = data.table.attributes.len();
    let class_sig: Vec<&[f32]> = plan
        .table_row
        .iter()
        .map(|&r| data.table.signatures[r].as_slice())
        .collect();
    let seen_samples: Vec<usize> = (0..n)
        .filter(|&i| plan.seen.contains(&(labels[i] as usize)))
        .collect();
    let unseen_samples: Vec<usize> = (0..n)
        .filter(|&i| plan.unseen.contains(&(labels[i] as usize)))
        .collect();
    let (train, seen_eval) = stratified_split(
        &seen_samples,
        |i| labels[i] as usize,
        config.val_fraction,
        config.seed,
        "split-zero-shot",
    );
    if train.is_empty() || unseen_samples.is_empty() {
        return Err(RunError::Invalid(Invalid::text(format!(
            "zero-shot needs images of seen classes to train on ({}) and of unseen classes to test on ({})",
            train.len(),
            unseen_samples.len()
        ))));
    }
    let prior_logit: Vec<f32> = (0..n_attr)
        .map(|a| {
            logit(plan.seen.iter().map(|&c| class_sig[c][a]).sum::<f32>() / plan.seen.len() as f32)
        })
        .collect();
    let mut warnings = data.warnings.clone();
    warnings.extend(plan.warnings.iter().cloned());
    let prepared = prepare(config, domain, &train, warnings)?;
    let device = &prepared.device;
    let setup = |e: candle_core::Error| RunError::Setup(e.to_string());
    let (net, init_report) = build_network(
        config,
        &prepared,
        domain.shape,
        NetworkGoal {
            outputs: n_attr,
            default_bottleneck: None,
            keep_head: false,
        },
    )?;
    let mut learner = Learner::new(net, config.learning_rate)?;
    let x = Tensor::from_slice(&domain.x, domain.shape.batch_dims(n).as_slice(), device)
        .map_err(setup)?;
    let targets: Vec<f32> = labels
        .iter()
        .flat_map(|&l| class_sig[l as usize].iter().copied())
        .collect();
    let targets = Tensor::from_vec(targets, (n, n_attr), device).map_err(setup)?;
    let classes = &domain.class_names;
    let evaluate = |net: &crate::model::Network, keep: bool| -> candle_core::Result<ZeroShotEval> {
        let mut ev = ZeroShotEval {
            confusion: vec![vec![0; plan.unseen.len()]; plan.unseen.len()],
            ..Default::default()
        };
        let all_classes: Vec<usize> = (0..classes.len()).collect();
        let seen_out = outputs(net, &x, &seen_eval)?;
        if !seen_eval.is_empty() {
            let correct = seen_out
                .iter()
                .zip(&seen_eval)
                .filter(|(z, i)| {
                    dap_predict(z, &plan.seen, &class_sig, &prior_logit) == labels[**i] as usize
                })
                .count();
            ev.seen_accuracy = Some(correct as f64 / seen_eval.len() as f64);
        }
        let unseen_out = outputs(net, &x, &unseen_samples)?;
        let (mut correct, mut correct_all) = (0usize, 0usize);
        let mut attr_correct = vec![0usize; n_attr];
        let mut per_class = vec![(0usize, 0usize); plan.unseen.len()];
        for (z, &i) in unseen_out.iter().zip(&unseen_samples) {
            let truth = labels[i] as usize;
            let p = dap_predict(z, &plan.unseen, &class_sig, &prior_logit);
            let ui = plan
                .unseen
                .iter()
                .position(|&u| u == truth)
                .expect("unseen sample");
            let pi = plan
                .unseen
                .iter()
                .position(|&u| u == p)
                .expect("unseen candidate");
            ev.confusion[ui][pi] += 1;
            per_class[ui].1 += 1;
            if p == truth {
                correct += 1;
                per_class[ui].0 += 1;
            }
            if dap_predict(z, &all_classes, &class_sig, &prior_logit) == truth {
                correct_all += 1;
            }
            for a in 0..n_attr {
                if (z[a] >= 0.0) == (class_sig[truth][a] >= 0.5) {
                    attr_correct[a] += 1;
                }
            }
        }
        let m = unseen_samples.len() as f64;
        ev.unseen_accuracy = Some(correct as f64 / m);
        ev.unseen_accuracy_all_classes = Some(correct_all as f64 / m);
        ev.attribute_accuracy = attr_correct.iter().map(|&c| c as f64 / m).collect();
        ev.unseen_class_accuracy = plan
            .unseen
            .iter()
            .zip(&per_class)
            .map(|(&u, &(c, t))| ClassAccuracy {
                class: classes[u].clone(),
                accuracy: c as f64 / t.max(1) as f64,
                images: t,
            })
            .collect();
        if keep {
            let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
            for (z, &i) in seen_out
                .iter()
                .zip(&seen_eval)
                .chain(unseen_out.iter().zip(&unseen_samples))
            {
                let unseen = plan.unseen.contains(&(labels[i] as usize));
                let candidates = if unseen { &plan.unseen } else { &plan.seen };
                ev.predictions.push(ZeroShotPrediction {
                    file: domain.files[i].clone(),
                    class: classes[labels[i] as usize].clone(),
                    predicted: classes[dap_predict(z, candidates, &class_sig, &prior_logit)]
                        .clone(),
                    unseen,
                    attributes: z.iter().map(|&v| sigmoid(v)).collect(),
                });
            }
        }
        Ok(ev)
    };
    let chance = 1.0 / plan.unseen.len() as f64;
    let step = |learner: &mut Learner, idx: &[usize], epoch: usize| {
        let fail = in_epoch(epoch);
        let logits = learner
            .net
            .forward_t(&rows(&x, idx).map_err(&fail)?, true)
            .map_err(&fail)?
            .logits;
        let loss = bce_with_logits(&logits, &rows(&targets, idx).map_err(&fail)?).map_err(&fail)?;
        learner.step(&loss, epoch)
    };
    let end_epoch = |learner: &mut Learner, epoch: usize| {
        let ev = evaluate(&learner.net, false).map_err(in_epoch(epoch))?;
        let mut metrics = BTreeMap::new();
        metrics.insert(
            "attribute_accuracy".into(),
            ev.attribute_accuracy.iter().sum::<f64>() / n_attr as f64,
        );
        if let Some(v) = ev.unseen_accuracy_all_classes {
            metrics.insert("unseen_among_all".into(), v);
        }
        if let Some(path) = &config.save {
            let trained_with = format!("zero-shot attributes on {}", data.origin);
            save_checkpoint(
                &learner.net,
                &data.table.attributes,
                Some(trained_with),
                path,
            )?;
        }
        Ok(EpochFigures {
            source_accuracy: ev.seen_accuracy,
            target_accuracy: ev.unseen_accuracy,
            metrics,
            tasks: Vec::new(),
        })
    };
    let network = NetworkSummary::of(&learner.net, config.freeze, prepared.device_label());
    let outcome = train_task(
        config,
        &prepared,
        TaskRun {
            train: &train,
            network,
            state: &mut learner,
            step,
            end_epoch,
            metrics: vec![
                Metric::accuracy(SOURCE_ACCURACY, "seen classes"),
                Metric::accuracy(TARGET_ACCURACY, "unseen classes").with_chance(chance),
                Metric::accuracy("attribute_accuracy", "attributes right on unseen images"),
                Metric::accuracy("unseen_among_all", "unseen images named among all classes")
                    .with_chance(1.0 / classes.len().max(1) as f64),
            ],
        },
        sink,
        control,
    )?;
    let final_eval = evaluate(&learner.net, true).map_err(in_epoch(outcome.history.len()))?;
    let names =
        |idx: &[usize]| -> Vec<String> { idx.iter().map(|&c| classes[c].clone()).collect() };
    let task_data = TaskData {
        origin: &data.origin,
        domain,
        classes: names(&plan.unseen),
        train: train.len(),
        held_out: seen_eval.len(),
    };
    let mut report = task_report(config, &learner.net, &prepared, outcome, started, task_data);
    report.data.target_eval = unseen_samples.len();
    report.data.target_total = unseen_samples.len();
    report.data.target_labelled = true;
    report.confusion = Some(final_eval.confusion.clone());
    if let (Some(init), Some(path)) = (&init_report, &config.init) {
        report.warnings.extend(init.partial_warning(path));
    }
    report.init = init_report;
    report.extra = Some(RunExtra::ZeroShot(ZeroShotResults {
        attributes: data.table.attributes.clone(),
        classes: classes.clone(),
        signatures: plan
            .table_row
            .iter()
            .map(|&r| data.table.signatures[r].clone())
            .collect(),
        seen: names(&plan.seen),
        unseen: names(&plan.unseen),
        chance,
        seen_accuracy: final_eval.seen_accuracy,
        unseen_accuracy: final_eval.unseen_accuracy,
        unseen_accuracy_all_classes: final_eval.unseen_accuracy_all_classes,
        attribute_accuracy: data
            .table
            .attributes
            .iter()
            .zip(&final_eval.attribute_accuracy)
            .map(|(a, &accuracy)| AttributeAccuracy {
                attribute: a.clone(),
                accuracy,
            })
            .collect(),
        unseen_class_accuracy: final_eval.unseen_class_accuracy,
        predictions: final_eval.predictions,
    }));
    Ok(report)
}
