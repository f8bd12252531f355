//! Multitask learning: one trunk (the backbone), one head per task, trained together on the
//! sum of the tasks' weighted cross-entropies — against each task trained alone with the
//! same trunk, the same initial weights, the same batches and the same number of steps.
//! The comparison is the point: a shared trunk can learn features that help every task
//! (or, when the tasks compete, worse ones).
//!
//! The joint network has one output layer with the tasks' classes side by side; each
//! task's head is its slice of it (the same function as separate linear heads). A missing
//! label (an empty cell) leaves that task's loss and accuracy for that image out.

use super::tables::{TaskInfo, normalise_file, read_label_table};
use super::{
    TaskData, TaskRun, masked_cross_entropy, outputs, rows, stratified_split, task_report,
    train_task,
};
use crate::data::folder::{FolderScan, LoadOptions, decode_scan, looks_colour, scan_folder};
use crate::data::shapes::{self, COLOURS, FILLS, SHAPES};
use crate::data::{DataError, Domain, LoadProgress, SampleShape};
use crate::model::save_checkpoint;
use crate::train::config::ExperimentConfig;
use crate::train::epoch_loop::EpochFigures;
use crate::train::events::{EventSink, NetworkSummary, RunReport};
use crate::train::experiment::{Control, validate_config};
use crate::train::learner::{Learner, NetworkGoal, build_network, in_epoch, prepare};
use crate::train::load::ShapeHint;
use crate::train::results::{
    Metric, MultitaskResults, RunExtra, SOURCE_ACCURACY, TARGET_ACCURACY, TaskAccuracy, TaskOutcome,
};
use crate::train::{Invalid, RunError, Setting};
use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

/// Images with a label per task.
#[derive(Clone, Debug)]
pub struct MultiLabelData {
    /// The images (their `labels` are not used).
    pub domain: Domain,
    pub tasks: Vec<TaskInfo>,
    /// `[task][sample]`: class index within the task, None when the cell was empty.
    pub labels: Vec<Vec<Option<u32>>>,
    pub warnings: Vec<String>,
    /// Where the data came from, for reports.
    pub origin: String,
}

impl AsMut<Domain> for MultiLabelData {
    fn as_mut(&mut self) -> &mut Domain {
        &mut self.domain
    }
}

/// The built-in multitask demo: shapes labelled by shape, colour and fill.
pub fn shapes_multitask(seed: u64, per_class: usize) -> MultiLabelData {
    let domain = shapes::shapes_domain(seed, per_class);
    let parsed: Vec<(usize, usize, usize)> = domain
        .labels
        .as_ref()
        .expect("generated labels")
        .iter()
        .map(|&l| shapes::parse_class(&domain.class_names[l as usize]).expect("own class"))
        .collect();
    let task = |name: &str, classes: &[&str], pick: fn(&(usize, usize, usize)) -> usize| {
        (
            TaskInfo {
                name: name.into(),
                classes: classes.iter().map(|s| s.to_string()).collect(),
            },
            parsed
                .iter()
                .map(|p| Some(pick(p) as u32))
                .collect::<Vec<_>>(),
        )
    };
    let (tasks, labels): (Vec<_>, Vec<_>) = [
        task("shape", &SHAPES, |p| p.0),
        task("colour", &COLOURS, |p| p.1),
        task("fill", &FILLS, |p| p.2),
    ]
    .into_iter()
    .unzip();
    MultiLabelData {
        domain,
        tasks,
        labels,
        warnings: Vec::new(),
        origin: "demo shapes".into(),
    }
}

fn table_error(e: super::tables::TableError) -> DataError {
    DataError::Invalid(e.to_string())
}

/// Read a folder of images and a labels CSV naming files in it (relative paths, or
/// absolute paths inside the folder). A row naming a file that is not there is an error
/// naming the row; images without a row are left out with a warning.
pub fn load_multitask_folder(
    folder: &Path,
    csv: &Path,
    hint: ShapeHint,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<MultiLabelData, DataError> {
    let table = read_label_table(csv).map_err(table_error)?;
    let scan = scan_folder("image", folder)?;
    let all: Vec<&std::path::PathBuf> = scan
        .classes
        .iter()
        .flat_map(|(_, f)| f.iter())
        .chain(scan.flat.iter())
        .collect();
    let key = |p: &Path| -> String {
        normalise_file(&p.strip_prefix(folder).unwrap_or(p).to_string_lossy())
    };
    let by_key: HashMap<String, &std::path::PathBuf> = all.iter().map(|p| (key(p), *p)).collect();
    let mut listed = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let k = {
            let p = Path::new(&row.file);
            if p.is_absolute() {
                key(p)
            } else {
                normalise_file(&row.file)
            }
        };
        match by_key.get(&k) {
            Some(p) => listed.push(((*p).clone(), row)),
            None => {
                return Err(DataError::Invalid(format!(
                    "{}, line {}: '{}' is not an image in {}",
                    csv.display(),
                    row.line,
                    row.file,
                    folder.display()
                )));
            }
        }
    }
    let mut warnings = scan.warnings.clone();
    let unlisted = all.len() - listed.len();
    if unlisted > 0 {
        warnings.push(format!(
            "{unlisted} image(s) in {} have no row in {} and are not used",
            folder.display(),
            csv.display()
        ));
    }
    let channels = hint
        .channels
        .unwrap_or(if looks_colour(&scan) { 3 } else { 1 });
    let shape = SampleShape::Image {
        channels,
        height: hint.size,
        width: hint.size,
    };
    let listed_scan = FolderScan {
        classes: Vec::new(),
        flat: listed.iter().map(|(p, _)| p.clone()).collect(),
        skipped: scan.skipped.clone(),
        ..Default::default()
    };
    let opts = LoadOptions {
        role: "image".into(),
        shape,
        allow_flat: true,
    };
    let domain = decode_scan(&listed_scan, folder, &opts, progress)?;
    warnings.extend(domain.skipped_warning());
    let row_of: HashMap<String, &super::tables::LabelRow> = listed
        .iter()
        .map(|(p, r)| (p.display().to_string(), *r))
        .collect();
    let labels = (0..table.tasks.len())
        .map(|t| domain.files.iter().map(|f| row_of[f].labels[t]).collect())
        .collect();
    finish(
        MultiLabelData {
            domain,
            tasks: table.tasks.clone(),
            labels,
            warnings,
            origin: format!("{} + {}", folder.display(), csv.display()),
        },
        csv,
    )
}

fn finish(data: MultiLabelData, csv: &Path) -> Result<MultiLabelData, DataError> {
    for (t, task) in data.tasks.iter().enumerate() {
        let present: std::collections::BTreeSet<u32> =
            data.labels[t].iter().flatten().copied().collect();
        if present.len() < 2 {
            return Err(DataError::Invalid(format!(
                "{}: task '{}' has {} among the loaded images: a task needs at least two classes",
                csv.display(),
                task.name,
                match present.iter().next() {
                    Some(&c) => format!("only the class '{}'", task.classes[c as usize]),
                    None => "no label".into(),
                }
            )));
        }
    }
    Ok(data)
}

/// Train the joint network and every single-task network in lockstep, evaluating all of
/// them on the same held-out images every epoch.
pub fn run_multitask(
    config: &ExperimentConfig,
    data: &MultiLabelData,
    sink: &mut dyn EventSink,
    control: &mut dyn Control,
) -> Result<RunReport, RunError> {
    validate_config(config)?;
    let started = Instant::now();
    let n_tasks = data.tasks.len();
    if n_tasks < 2 {
        return Err(RunError::Invalid(Invalid::text(format!(
            "multitask needs at least two tasks (label columns), got {}",
            n_tasks
        ))));
    }
    let weights: Vec<f64> = if config.task_weights.is_empty() {
        vec![1.0; n_tasks]
    } else if config.task_weights.len() != n_tasks {
        return Err(RunError::Invalid(Invalid::setting(
            Setting::TaskWeights,
            format!(
                " has {} value(s) but there are {} tasks ({})",
                config.task_weights.len(),
                n_tasks,
                data.tasks
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )));
    } else {
        config.task_weights.clone()
    };
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(RunError::Invalid(Invalid::text(format!(
            "task weights must be ≥ 0, got {w}"
        ))));
    }
    if weights.iter().all(|&w| w == 0.0) {
        return Err(RunError::Invalid(Invalid::text(
            "at least one task weight must be above 0",
        )));
    }
    let domain = &data.domain;
    let n = domain.len();
    let all: Vec<usize> = (0..n).collect();
    // Stratify by the first task's label so every class of it is held out.
    let (train, eval) = stratified_split(
        &all,
        |i| data.labels[0][i].map_or(usize::MAX, |l| l as usize),
        config.val_fraction.max(0.05),
        config.seed,
        "split-multitask",
    );
    if train.is_empty() || eval.is_empty() {
        return Err(RunError::Invalid(Invalid::text(format!(
            "multitask needs images to train on and to hold out: {n} image(s) loaded"
        ))));
    }
    let prepared = prepare(config, domain, &train, data.warnings.clone())?;
    let sizes: Vec<usize> = data.tasks.iter().map(|t| t.classes.len()).collect();
    let offsets: Vec<usize> = sizes
        .iter()
        .scan(0, |acc, &k| {
            let o = *acc;
            *acc += k;
            Some(o)
        })
        .collect();
    let setup = |e: candle_core::Error| RunError::Setup(e.to_string());
    let network = |outputs: usize| {
        build_network(
            config,
            &prepared,
            domain.shape,
            NetworkGoal {
                outputs,
                default_bottleneck: None,
                keep_head: false,
            },
        )
    };
    let (joint_net, init_report) = network(sizes.iter().sum())?;
    let joint = Learner::new(joint_net, config.learning_rate)?;
    let mut alone = Vec::with_capacity(n_tasks);
    for &k in &sizes {
        alone.push(Learner::new(network(k)?.0, config.learning_rate)?);
    }
    let device = &prepared.device;
    let x = Tensor::from_slice(&domain.x, domain.shape.batch_dims(n).as_slice(), device)
        .map_err(setup)?;
    let mut y = Vec::with_capacity(n_tasks);
    let mut mask = Vec::with_capacity(n_tasks);
    for labels in &data.labels {
        let v: Vec<u32> = labels.iter().map(|l| l.unwrap_or(0)).collect();
        let m: Vec<f32> = labels
            .iter()
            .map(|l| if l.is_some() { 1.0 } else { 0.0 })
            .collect();
        y.push(Tensor::from_vec(v, n, device).map_err(setup)?);
        mask.push(Tensor::from_vec(m, n, device).map_err(setup)?);
    }
    // Held-out accuracy of task `t` read from outputs `offset..offset + k`.
    let accuracy = |net: &crate::model::Network,
                    t: usize,
                    offset: usize|
     -> candle_core::Result<Option<f64>> {
        let k = sizes[t];
        let labelled: Vec<usize> = eval
            .iter()
            .copied()
            .filter(|&i| data.labels[t][i].is_some())
            .collect();
        if labelled.is_empty() {
            return Ok(None);
        }
        let out = outputs(net, &x, &labelled)?;
        let correct = out
            .iter()
            .zip(&labelled)
            .filter(|(o, i)| {
                let head = &o[offset..offset + k];
                let best = (0..k)
                    .max_by(|&a, &b| head[a].total_cmp(&head[b]))
                    .unwrap_or(0);
                Some(best as u32) == data.labels[t][**i]
            })
            .count();
        Ok(Some(correct as f64 / labelled.len() as f64))
    };
    let class_names: Vec<String> = data
        .tasks
        .iter()
        .flat_map(|t| t.classes.iter().map(move |c| format!("{}={c}", t.name)))
        .collect();
    let mut state = (joint, alone, vec![None; n_tasks], vec![None; n_tasks]);
    let step = |(joint, alone, _, _): &mut State, idx: &[usize], epoch: usize| {
        let fail = in_epoch(epoch);
        let bx = rows(&x, idx).map_err(&fail)?;
        let by: Vec<(Tensor, Tensor)> = (0..n_tasks)
            .map(|t| Ok((rows(&y[t], idx)?, rows(&mask[t], idx)?)))
            .collect::<candle_core::Result<_>>()
            .map_err(&fail)?;
        let logits = joint.net.forward_t(&bx, true).map_err(&fail)?.logits;
        let mut loss: Option<Tensor> = None;
        for t in (0..n_tasks).filter(|&t| weights[t] > 0.0) {
            let head = logits.narrow(1, offsets[t], sizes[t]).map_err(&fail)?;
            let l = masked_cross_entropy(&head, &by[t].0, &by[t].1)
                .and_then(|l| l * weights[t])
                .map_err(&fail)?;
            loss = Some(match loss {
                Some(s) => (s + l).map_err(&fail)?,
                None => l,
            });
        }
        let value = joint.step(&loss.expect("a weight is above 0"), epoch)?;
        for (t, learner) in alone.iter_mut().enumerate() {
            let logits = learner.net.forward_t(&bx, true).map_err(&fail)?.logits;
            let l = masked_cross_entropy(&logits, &by[t].0, &by[t].1).map_err(&fail)?;
            learner.step(&l, epoch)?;
        }
        Ok(value)
    };
    let end_epoch = |(joint, alone, joint_acc, alone_acc): &mut State, epoch: usize| {
        let fail = in_epoch(epoch);
        let mut metrics = BTreeMap::new();
        let mut tasks = Vec::with_capacity(n_tasks);
        for t in 0..n_tasks {
            joint_acc[t] = accuracy(&joint.net, t, offsets[t]).map_err(&fail)?;
            alone_acc[t] = accuracy(&alone[t].net, t, 0).map_err(&fail)?;
            tasks.push(TaskAccuracy {
                task: data.tasks[t].name.clone(),
                joint: joint_acc[t],
                alone: alone_acc[t],
            });
        }
        let joint_mean = mean(joint_acc);
        for (key, v) in [("joint_mean", joint_mean), ("alone_mean", mean(alone_acc))] {
            if let Some(v) = v {
                metrics.insert(key.into(), v);
            }
        }
        if let Some(path) = &config.save {
            let trained_with = format!("multitask on {}", data.origin);
            save_checkpoint(&joint.net, &class_names, Some(trained_with), path)?;
        }
        Ok(EpochFigures {
            source_accuracy: joint_mean,
            target_accuracy: None,
            metrics,
            tasks,
        })
    };
    let network = NetworkSummary::of(&state.0.net, config.freeze, prepared.device_label());
    let outcome = train_task(
        config,
        &prepared,
        TaskRun {
            train: &train,
            network,
            state: &mut state,
            step,
            end_epoch,
            metrics: METRICS.to_vec(),
        },
        sink,
        control,
    )?;
    let (joint, _, joint_acc, alone_acc) = state;
    let outcomes: Vec<TaskOutcome> = data
        .tasks
        .iter()
        .enumerate()
        .map(|(t, task)| TaskOutcome {
            name: task.name.clone(),
            classes: task.classes.clone(),
            weight: weights[t],
            joint_accuracy: joint_acc[t],
            alone_accuracy: alone_acc[t],
            labelled_train: train
                .iter()
                .filter(|&&i| data.labels[t][i].is_some())
                .count(),
            labelled_eval: eval
                .iter()
                .filter(|&&i| data.labels[t][i].is_some())
                .count(),
        })
        .collect();
    let task_data = TaskData {
        origin: &data.origin,
        domain,
        classes: data.tasks.iter().map(|t| t.name.clone()).collect(),
        train: train.len(),
        held_out: eval.len(),
    };
    let mut report = task_report(config, &joint.net, &prepared, outcome, started, task_data);
    if let (Some(init), Some(path)) = (&init_report, &config.init) {
        report.warnings.extend(init.partial_warning(path));
    }
    report.init = init_report;
    report.extra = Some(RunExtra::Multitask(MultitaskResults {
        tasks: outcomes,
        joint_mean: mean(&joint_acc),
        alone_mean: mean(&alone_acc),
    }));
    Ok(report)
}

/// The figures of a multitask epoch beside its per-task accuracies.
const METRICS: &[Metric] = &[
    Metric::accuracy(SOURCE_ACCURACY, "mean task accuracy (joint)"),
    Metric::accuracy(TARGET_ACCURACY, "target accuracy"),
    Metric::accuracy("joint_mean", "mean task accuracy, trained together"),
    Metric::accuracy("alone_mean", "mean task accuracy, each alone"),
];

/// The joint learner, the single-task learners, and the last joint and alone accuracies.
type State = (Learner, Vec<Learner>, Vec<Option<f64>>, Vec<Option<f64>>);

/// Mean of the known values.
fn mean(v: &[Option<f64>]) -> Option<f64> {
    let xs: Vec<f64> = v.iter().flatten().copied().collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}
