//! The transfer methods: unsupervised adaptation never sees target labels, every method
//! trains with freezing and `--init`, reports its figures, and bad settings fail before
//! training starts.

mod common;

use common::{run_cli, write_digit_folder};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use transferlab::data::demo::{Style, generate_demo_sized};
use transferlab::data::{DomainPair, SampleShape};
use transferlab::device::DeviceChoice;
use transferlab::method::{MethodKind, MethodSettings, PSEUDO_ACCURACY, build_method};
use transferlab::model::{BackboneKind, Network, NetworkSpec, Normalisation};
use transferlab::train::{
    DataSource, Event, Experiment, ExperimentConfig, NoControl, RunReport, ShapeHint, load_pair,
};

fn run(config: ExperimentConfig, pair: Arc<DomainPair>) -> RunReport {
    let mut exp = Experiment::new(config, pair).unwrap();
    exp.run(&mut |_e: Event| {}, &mut NoControl).unwrap()
}

fn moons_config(method: MethodKind) -> ExperimentConfig {
    ExperimentConfig {
        data: DataSource::Demo {
            name: "moons".into(),
        },
        method,
        epochs: 2,
        batch_size: 32,
        learning_rate: 1e-2,
        device: DeviceChoice::Cpu,
        ..Default::default()
    }
}

fn moons() -> Arc<DomainPair> {
    Arc::new(generate_demo_sized("moons", 3, 100, 100).unwrap())
}

/// Move every file of class folder `c` into folder `perm[c]` (file names unchanged).
fn permute_class_folders(dir: &Path, perm: &[usize]) {
    for c in 0..perm.len() {
        std::fs::rename(dir.join(c.to_string()), dir.join(format!("was{c}"))).unwrap();
    }
    for (c, &to) in perm.iter().enumerate() {
        std::fs::rename(dir.join(format!("was{c}")), dir.join(to.to_string())).unwrap();
    }
}

/// Copy a folder of class folders.
fn copy_folder(from: &Path, to: &Path) {
    for class in std::fs::read_dir(from).unwrap() {
        let class = class.unwrap().path();
        let dest = to.join(class.file_name().unwrap());
        std::fs::create_dir_all(&dest).unwrap();
        for f in std::fs::read_dir(&class).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dest.join(f.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn unsupervised_adaptation_never_sees_target_labels() {
    let classes = [0, 1, 2, 3];
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let target_a = dir.path().join("target_a");
    let target_b = dir.path().join("target_b");
    write_digit_folder(&source, &classes, 12, Style::Clean, 28, "png", 1);
    // The same target files twice, the second time with its class folders permuted:
    // every file keeps its name but sits under another class.
    write_digit_folder(
        &target_a,
        &classes,
        10,
        Style::ThickRotatedNoisy,
        28,
        "png",
        2,
    );
    copy_folder(&target_a, &target_b);
    permute_class_folders(&target_b, &[2, 3, 1, 0]);
    let hint = ShapeHint {
        channels: Some(1),
        size: 28,
        flat_source: false,
    };
    let pair = |target: &Path| {
        let data = DataSource::Folders {
            source: source.clone(),
            target: target.to_path_buf(),
        };
        Arc::new(load_pair(&data, hint, &mut |_, _| {}).unwrap())
    };
    let (pair_a, pair_b) = (pair(&target_a), pair(&target_b));
    let label_of_file = |p: &DomainPair| -> HashMap<String, u32> {
        let labels = p.target.labels.as_ref().unwrap();
        p.target
            .files
            .iter()
            .zip(labels)
            .map(|(f, &l)| {
                (
                    Path::new(f).file_name().unwrap().to_string_lossy().into(),
                    l,
                )
            })
            .collect()
    };
    let (labels_a, labels_b) = (label_of_file(&pair_a), label_of_file(&pair_b));
    assert_eq!(labels_a.len(), 40);
    assert!(
        labels_a.iter().all(|(f, l)| labels_b[f] != *l),
        "the permutation must change every target label"
    );
    for method in MethodKind::ADAPTATION {
        let config = ExperimentConfig {
            data: DataSource::Demo {
                name: "folders".into(),
            },
            method,
            backbone: Some(BackboneKind::SmallCnn),
            epochs: 2,
            batch_size: 16,
            learning_rate: 1e-3,
            device: DeviceChoice::Cpu,
            ..Default::default()
        };
        let a = run(config.clone(), pair_a.clone());
        let b = run(config, pair_b.clone());
        assert_eq!(a.history.len(), 2);
        for (ea, eb) in a.history.iter().zip(&b.history) {
            let what = format!("{} epoch {}", method.name(), ea.epoch);
            assert_eq!(ea.train_loss, eb.train_loss, "{what}: training loss");
            assert_eq!(ea.source_accuracy, eb.source_accuracy, "{what}: source");
            // Pseudo-label accuracy is scored against the target labels for display; every
            // figure the method computes itself must be blind to them.
            let blind = |m: &std::collections::BTreeMap<String, f64>| {
                let mut m = m.clone();
                m.remove(PSEUDO_ACCURACY);
                m
            };
            assert_eq!(
                blind(&ea.metrics),
                blind(&eb.metrics),
                "{what}: method metrics"
            );
            assert!(!ea.metrics.is_empty(), "{what}: reports its figures");
            if method == MethodKind::Shot {
                // The runner does score it on both, against each folder's own labels.
                assert!(ea.metrics.contains_key(PSEUDO_ACCURACY), "{what}");
                assert!(eb.metrics.contains_key(PSEUDO_ACCURACY), "{what}");
            }
        }
        assert_eq!(a.extra, b.extra, "{}: extra results", method.name());
        let estimate = a.final_metrics.label_free.as_ref();
        assert!(
            estimate.is_some(),
            "{}: label-free estimates",
            method.name()
        );
        assert_eq!(
            a.final_metrics.label_free,
            b.final_metrics.label_free,
            "{}: the label-free estimates use no target label",
            method.name()
        );
    }
}

#[test]
fn every_method_trains_reports_its_figures_and_works_with_freezing_and_init() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("a.safetensors");
    let pretrained = ExperimentConfig {
        save: Some(model.clone()),
        ..moons_config(MethodKind::SourceOnly)
    };
    run(pretrained, moons());
    let expected: HashMap<MethodKind, &[&str]> = HashMap::from([
        (MethodKind::Ddc, &["mmd2"][..]),
        (MethodKind::Dan, &["mk_mmd2"][..]),
        (MethodKind::Coral, &["coral"][..]),
        (MethodKind::Dann, &["domain_acc", "domain_loss"][..]),
        (
            MethodKind::InstanceWeighting,
            &["domain_acc", "weight_max", "weight_min", "weight_std"][..],
        ),
        (
            MethodKind::Shot,
            &["diversity", "entropy", PSEUDO_ACCURACY][..],
        ),
        (MethodKind::Mcc, &["class_confusion"][..]),
        (
            MethodKind::LabelPropagation,
            &["agreement", PSEUDO_ACCURACY, "reached"][..],
        ),
    ]);
    for method in MethodKind::ADAPTATION {
        let config = ExperimentConfig {
            init: Some(model.clone()),
            freeze: 1,
            ..moons_config(method)
        };
        let mut exp = Experiment::new(config, moons()).unwrap();
        let fc1_before = exp.net.varmap.data().lock().unwrap()["fc1.weight"]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let report = exp.run(&mut |_e: Event| {}, &mut NoControl).unwrap();
        let fc1_after = exp.net.varmap.data().lock().unwrap()["fc1.weight"]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            fc1_before,
            fc1_after,
            "{}: frozen stage moved",
            method.name()
        );
        assert!(report.init.as_ref().unwrap().loaded > 0);
        let last = report.history.last().unwrap();
        let keys: Vec<&str> = last.metrics.keys().map(String::as_str).collect();
        assert_eq!(keys, expected[&method], "{}", method.name());
        for (k, v) in &last.metrics {
            assert!(v.is_finite(), "{} {k} = {v}", method.name());
            // Every figure is described: the CLI, the curves and the exports name it.
            let described = report.metrics.iter().find(|m| m.key == *k);
            assert!(described.is_some(), "{}: {k} undescribed", method.name());
        }
        if let Some(acc) = last.metrics.get("domain_acc") {
            assert!((0.0..=1.0).contains(acc));
            let d = report
                .metrics
                .iter()
                .find(|m| m.key == "domain_acc")
                .unwrap();
            assert_eq!(d.chance, Some(0.5), "a domain classifier guesses at 50%");
        }
        let t = report.final_metrics.target_accuracy.unwrap();
        assert!(t > 0.5, "{}: target accuracy {t}", method.name());
    }
}

#[test]
fn instance_weights_are_reported_per_source_file() {
    let pair = moons();
    let report = run(moons_config(MethodKind::InstanceWeighting), pair.clone());
    let extra = serde_json::to_value(report.extra.as_ref().unwrap()).unwrap();
    let weights = extra["instance_weights"].as_array().unwrap();
    assert_eq!(weights.len(), report.data.source_train);
    let mut sum = 0.0;
    for w in weights {
        let i = w["index"].as_u64().unwrap() as usize;
        assert_eq!(w["file"].as_str().unwrap(), pair.source.files[i]);
        let v = w["weight"].as_f64().unwrap();
        assert!(v > 0.0 && v.is_finite());
        sum += v;
    }
    // Normalised to mean 1 in every batch, so about 1 overall.
    let mean = sum / weights.len() as f64;
    assert!((0.8..1.2).contains(&mean), "mean weight {mean}");
}

#[test]
fn a_method_adds_its_layers_without_changing_the_networks_initial_weights() {
    let spec = NetworkSpec {
        backbone: BackboneKind::Mlp,
        input: SampleShape::Vector { dim: 2 },
        num_classes: 2,
        bottleneck: Some(16),
    };
    let norm = Normalisation {
        mean: vec![0.0; 2],
        std: vec![1.0; 2],
    };
    let values = |net: &Network| -> HashMap<String, Vec<f32>> {
        let data = net.varmap.data().lock().unwrap();
        data.iter()
            .map(|(k, v)| {
                let v = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                (k.clone(), v)
            })
            .collect()
    };
    let settings = MethodSettings {
        lambda: 1.0,
        params: Default::default(),
        total_steps: 10,
        seed: 5,
        source_files: Vec::new(),
        teacher: None,
    };
    let device = candle_core::Device::Cpu;
    let plain = Network::new(spec.clone(), norm.clone(), &device, 5).unwrap();
    let before = values(&plain);
    let _dann = build_method(MethodKind::Dann, &settings, &plain).unwrap();
    let after = values(&plain);
    assert!(after.keys().any(|k| k.starts_with("dann.")));
    for (name, v) in &before {
        assert_eq!(&after[name], v, "{name} changed when DANN added its layers");
    }
    // The method's own layers are seeded too.
    let again = Network::new(spec, norm, &device, 5).unwrap();
    let _dann = build_method(MethodKind::Dann, &settings, &again).unwrap();
    assert_eq!(values(&again), after);
}

#[test]
fn bad_method_settings_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let small_target = dir.path().join("target");
    write_digit_folder(&source, &[0, 1], 20, Style::Clean, 28, "png", 1);
    write_digit_folder(&small_target, &[0, 1], 5, Style::Inverted, 28, "png", 2);
    let (s, t) = (source.to_str().unwrap(), small_target.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "--demo", "moons", "--method", "mmd-magic"],
            "invalid value 'mmd-magic'",
        ),
        (
            vec!["run", "--demo", "moons", "--method", "target-only"],
            "--target-labels",
        ),
        (
            vec![
                "run", "--demo", "moons", "--method", "dann", "--lambda", "0",
            ],
            "--lambda must be a positive number",
        ),
        (
            vec!["run", "--demo", "moons", "--method", "dan", "--lambda=-1"],
            "--lambda must be a positive number",
        ),
        (
            vec![
                "run",
                "--source",
                s,
                "--target",
                t,
                "--method",
                "coral",
                "--batch-size",
                "32",
            ],
            "lower --batch-size",
        ),
    ];
    for (args, expected) in cases {
        let started = Instant::now();
        let (ok, _, err) = run_cli(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(
            err.contains(expected),
            "{args:?}: expected '{expected}' in:\n{err}"
        );
        assert!(!err.contains("epoch"), "{args:?} started training:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
        assert!(started.elapsed().as_secs() < 20, "{args:?} took too long");
    }
    // The unknown-method message lists the methods that exist.
    let (_, _, err) = run_cli(&["run", "--demo", "moons", "--method", "mmd-magic"]);
    for name in ["ddc", "dan", "coral", "dann", "instance-weighting"] {
        assert!(err.contains(name), "{name} not offered in:\n{err}");
    }
    // A target just big enough for one batch is fine.
    let (ok, _, err) = run_cli(&[
        "run",
        "--source",
        s,
        "--target",
        t,
        "--method",
        "coral",
        "--batch-size",
        "10",
        "--epochs",
        "1",
        "-q",
    ]);
    assert!(ok, "{err}");
}

#[test]
fn self_training_closes_most_of_the_gap_and_the_label_free_estimate_sees_it() {
    // Thin upright digits → thick, rotated, noisy ones: plain training lands near 40%.
    let pair = Arc::new(generate_demo_sized("digits-rotated", 7, 100, 50).unwrap());
    let train = |method| {
        let config = ExperimentConfig {
            data: DataSource::Demo {
                name: "digits-rotated".into(),
            },
            method,
            epochs: 6,
            batch_size: 32,
            device: DeviceChoice::Cpu,
            ..Default::default()
        };
        run(config, pair.clone())
    };
    let (plain, shot, mcc) = (
        train(MethodKind::SourceOnly),
        train(MethodKind::Shot),
        train(MethodKind::Mcc),
    );
    let acc = |r: &RunReport| r.final_metrics.target_accuracy.unwrap();
    let atc = |r: &RunReport| {
        r.final_metrics
            .label_free
            .as_ref()
            .and_then(|l| l.accuracy)
            .map(|a| a.atc)
            .unwrap()
    };
    eprintln!(
        "target: source-only {:.3} (ATC {:.3}), shot {:.3} (ATC {:.3}), mcc {:.3} (ATC {:.3})",
        acc(&plain),
        atc(&plain),
        acc(&shot),
        atc(&shot),
        acc(&mcc),
        atc(&mcc)
    );
    assert!(acc(&shot) > acc(&plain) + 0.15, "SHOT gains 15 points");
    assert!(acc(&mcc) > acc(&plain) + 0.15, "MCC gains 15 points");
    // Without a target label, the estimate still tells the adapted models from plain
    // training, and lands within 15 points of the truth.
    assert!(atc(&shot) > atc(&plain) && atc(&mcc) > atc(&plain));
    for r in [&plain, &shot, &mcc] {
        assert!(
            (atc(r) - acc(r)).abs() < 0.15,
            "{}: ATC {} vs {}",
            r.method,
            atc(r),
            acc(r)
        );
    }
    // SHOT's pseudo-labels end up more accurate than plain training's predictions.
    let pseudo = shot.history.last().unwrap().metrics[PSEUDO_ACCURACY];
    assert!(pseudo > acc(&plain) + 0.15, "pseudo-labels {pseudo}");
}

#[test]
fn labels_propagated_over_the_graph_beat_plain_training_on_the_target() {
    let pair = Arc::new(generate_demo_sized("digits-rotated", 7, 100, 50).unwrap());
    let train = |method| {
        let config = ExperimentConfig {
            data: DataSource::Demo {
                name: "digits-rotated".into(),
            },
            method,
            epochs: 6,
            batch_size: 32,
            device: DeviceChoice::Cpu,
            ..Default::default()
        };
        run(config, pair.clone())
    };
    let plain = train(MethodKind::SourceOnly);
    let propagated = train(MethodKind::LabelPropagation);
    let acc = |r: &RunReport| r.final_metrics.target_accuracy.unwrap();
    let last = &propagated.history.last().unwrap().metrics;
    eprintln!(
        "target: source-only {:.3}, label propagation {:.3}; propagated labels {:.3}, reached {:.3}, agreement {:.3}",
        acc(&plain),
        acc(&propagated),
        last[PSEUDO_ACCURACY],
        last["reached"],
        last["agreement"]
    );
    assert!(
        acc(&propagated) > acc(&plain) + 0.15,
        "label propagation gains 15 points"
    );
    // The labels reach (nearly) the whole target and are better than plain training's
    // own predictions.
    assert!(last["reached"] > 0.9, "reached {}", last["reached"]);
    assert!(last[PSEUDO_ACCURACY] > acc(&plain) + 0.1);
}

#[test]
fn a_teachers_relations_lift_the_student_and_the_heatmaps_show_them_taken_on() {
    use transferlab::method::relation_distill::Relations;
    use transferlab::model::predict::PredictModel;
    let pair = Arc::new(generate_demo_sized("digits-rotated", 7, 100, 50).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let teacher_file = dir.path().join("teacher.safetensors");
    let config = |method, teacher: Option<PredictModel>| ExperimentConfig {
        data: DataSource::Demo {
            name: "digits-rotated".into(),
        },
        method,
        epochs: 6,
        batch_size: 32,
        device: DeviceChoice::Cpu,
        teacher,
        ..Default::default()
    };
    // The teacher: a network that adapted to the target by label propagation.
    let teacher = run(
        ExperimentConfig {
            save: Some(teacher_file.clone()),
            ..config(MethodKind::LabelPropagation, None)
        },
        pair.clone(),
    );
    let alone = run(config(MethodKind::SourceOnly, None), pair.clone());
    let from = || Some(PredictModel::Checkpoint(teacher_file.clone()));
    let relations = run(config(MethodKind::RelationDistill, from()), pair.clone());
    let outputs = run(config(MethodKind::Distill, from()), pair.clone());
    let acc = |r: &RunReport| r.final_metrics.target_accuracy.unwrap();
    eprintln!(
        "target: teacher {:.3}, student alone {:.3}, relation-distill {:.3}, distill {:.3}",
        acc(&teacher),
        acc(&alone),
        acc(&relations),
        acc(&outputs)
    );
    assert!(
        acc(&relations) > acc(&alone) + 0.1,
        "relations lift the student"
    );
    assert!(
        acc(&outputs) > acc(&alone) + 0.1,
        "outputs lift the student"
    );
    // The student's neighbourhoods become the teacher's, on the batches and on the target.
    let agreement: Vec<f64> = relations
        .history
        .iter()
        .map(|h| h.metrics["relation_agreement"])
        .collect();
    assert!(agreement.last() > agreement.first(), "{agreement:?}");
    let Some(transferlab::train::results::RunExtra::Method(extra)) = &relations.extra else {
        panic!("relation-distill reports its relations");
    };
    let r: Relations = serde_json::from_value(extra["relations"].clone()).unwrap();
    assert_eq!(r.teacher.len(), r.classes.len());
    assert_eq!(r.student_before.len(), r.classes.len());
    assert_eq!(r.student_after.len(), r.classes.len());
    assert!(
        r.classes.windows(2).all(|w| w[0] <= w[1]),
        "sorted by class"
    );
    assert!(r.agreement_after > r.agreement_before, "{r:?}");
    // The heatmap after training is closer to the teacher's than the one before.
    let distance = |m: &[Vec<f32>]| -> f32 {
        m.iter()
            .flatten()
            .zip(r.teacher.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .sum()
    };
    assert!(distance(&r.student_after) < distance(&r.student_before));
}

#[test]
fn distillation_of_outputs_needs_the_students_classes_and_relations_do_not() {
    use transferlab::model::predict::PredictModel;
    let pair = Arc::new(generate_demo_sized("digits-rotated", 7, 20, 20).unwrap());
    let config = |method| ExperimentConfig {
        data: DataSource::Demo {
            name: "digits-rotated".into(),
        },
        method,
        epochs: 1,
        batch_size: 32,
        device: DeviceChoice::Cpu,
        teacher: Some(PredictModel::Imagenet),
        ..Default::default()
    };
    let started = Instant::now();
    let err = Experiment::new(config(MethodKind::Distill), pair.clone())
        .err()
        .expect("distill refuses a 1000-class teacher for 10 digits");
    let words = err.words(transferlab::train::Audience::Cli);
    assert!(words.contains("relation-distill"), "{words}");
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "refused before the teacher's pass"
    );
    // Relations cross label sets: the ImageNet network teaches a digit classifier.
    let report = run(config(MethodKind::RelationDistill), pair.clone());
    assert!(report.final_metrics.target_accuracy.is_some());
    let Some(transferlab::train::results::RunExtra::Method(extra)) = &report.extra else {
        panic!("relations reported");
    };
    assert!(
        extra["relations"]["teacher_model"]
            .as_str()
            .unwrap()
            .contains("efficientnet-lite0")
    );
    // And a teacher is asked for only by the methods that learn from one: the command
    // line refuses it elsewhere.
    let (ok, _, err) = run_cli(&["run", "--demo", "moons", "--teacher", "imagenet", "-q"]);
    assert!(!ok);
    assert!(err.contains("--teacher is only for"), "{err}");
    let mut needs = config(MethodKind::RelationDistill);
    needs.teacher = None;
    let err = Experiment::new(needs, pair).err().unwrap();
    assert!(
        err.words(transferlab::train::Audience::Cli)
            .contains("--teacher is needed")
    );
}

#[test]
fn shot_can_take_its_pseudo_labels_from_label_propagation() {
    let pair = Arc::new(generate_demo_sized("digits-rotated", 7, 60, 30).unwrap());
    let mut config = ExperimentConfig {
        data: DataSource::Demo {
            name: "digits-rotated".into(),
        },
        method: MethodKind::Shot,
        epochs: 3,
        batch_size: 32,
        device: DeviceChoice::Cpu,
        ..Default::default()
    };
    config.params.insert("propagate".into(), 1.0);
    let report = run(config, pair);
    // The propagated labels are scored (evaluation only) like the centroids' would be, and
    // they are far better than chance (10 classes).
    let last = &report.history.last().unwrap().metrics;
    assert!(last[PSEUDO_ACCURACY] > 0.5, "{last:?}");
    assert_eq!(report.config.params.get("propagate"), Some(&1.0));
}

#[test]
fn select_by_keeps_the_best_scored_epochs_weights_and_names_the_oracles_choice() {
    use transferlab::train::selection::SelectBy;
    let pair = Arc::new(generate_demo_sized("digits-rotated", 7, 60, 30).unwrap());
    let config = |method, select_by| ExperimentConfig {
        data: DataSource::Demo {
            name: "digits-rotated".into(),
        },
        method,
        epochs: 4,
        batch_size: 32,
        device: DeviceChoice::Cpu,
        select_by: Some(select_by),
        ..Default::default()
    };
    for criterion in [SelectBy::Snd, SelectBy::SourceVal] {
        let report = run(config(MethodKind::Dann, criterion), pair.clone());
        let sel = report.selection.clone().expect("a selection is reported");
        assert_eq!(sel.criterion, criterion);
        assert_eq!(sel.scores.len(), 4);
        let kept = &report.history[sel.chosen_epoch - 1];
        // The final figures, and the predictions behind the confusion matrix, are the kept
        // epoch's: its weights were put back.
        assert_eq!(report.final_metrics.target_accuracy, kept.target_accuracy);
        let confusion = report.confusion.as_ref().unwrap();
        let right: u32 = (0..confusion.len()).map(|i| confusion[i][i]).sum();
        let all: u32 = confusion.iter().flatten().sum();
        let measured = right as f64 / all as f64;
        assert!(
            (measured - kept.target_accuracy.unwrap()).abs() < 1e-9,
            "{measured} vs {kept:?}"
        );
        // The oracle's epoch is the best target accuracy of the history.
        let best = report
            .history
            .iter()
            .map(|h| h.target_accuracy.unwrap())
            .fold(f64::MIN, f64::max);
        assert_eq!(sel.oracle_target_accuracy, Some(best));
    }
    // A run that trains no classifier has nothing to select.
    let err = Experiment::new(config(MethodKind::RotationPretrain, SelectBy::Dev), pair)
        .err()
        .unwrap();
    assert!(
        err.words(transferlab::train::Audience::Cli)
            .contains("--select-by")
    );
}
