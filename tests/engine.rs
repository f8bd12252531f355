//! The engine on small generated data: freezing, repeatability, learning, target labels,
//! checkpoints (task A → task B), the worker's stop/failure behaviour.

mod common;

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transferlab::data::demo::generate_demo_sized;
use transferlab::data::{DomainPair, SampleShape};
use transferlab::device::DeviceChoice;
use transferlab::method::MethodKind;
use transferlab::model::{BackboneKind, Network, NetworkSpec, Normalisation, layers, read_meta};
use transferlab::run::Worker;
use transferlab::train::{
    Command, DataSource, Event, Experiment, ExperimentConfig, NoControl, RunReport,
};

fn moons() -> Arc<DomainPair> {
    Arc::new(generate_demo_sized("moons", 3, 150, 100).unwrap())
}

fn digits(per_class: usize) -> Arc<DomainPair> {
    Arc::new(generate_demo_sized("digits-rotated", 3, per_class, per_class).unwrap())
}

fn config(demo: &str) -> ExperimentConfig {
    ExperimentConfig {
        data: DataSource::Demo { name: demo.into() },
        epochs: 3,
        batch_size: 32,
        learning_rate: 1e-2,
        device: DeviceChoice::Cpu,
        ..Default::default()
    }
}

fn snapshot(net: &Network) -> HashMap<String, Vec<f32>> {
    net.varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
            )
        })
        .collect()
}

fn run(config: ExperimentConfig, pair: Arc<DomainPair>) -> (RunReport, Experiment) {
    let mut exp = Experiment::new(config, pair).unwrap();
    let report = exp.run(&mut |_e: Event| {}, &mut NoControl).unwrap();
    (report, exp)
}

#[test]
fn source_only_learns_the_source_and_the_shift_hurts_the_target() {
    let (report, _) = run(
        ExperimentConfig {
            epochs: 8,
            ..config("moons")
        },
        moons(),
    );
    let src = report.final_metrics.source_accuracy.unwrap();
    let tgt = report.final_metrics.target_accuracy.unwrap();
    assert!(src > 0.95, "source accuracy {src}");
    assert!(
        tgt < src - 0.05,
        "a 40° rotation should cost accuracy: source {src}, target {tgt}"
    );
    assert_eq!(report.history.len(), 8);
    assert!(report.history[7].train_loss < report.history[0].train_loss);
}

#[test]
fn frozen_stages_stay_bit_identical_and_the_rest_trains() {
    for (demo, pair, freeze) in [("moons", moons(), 1usize), ("digits-rotated", digits(6), 2)] {
        let cfg = ExperimentConfig {
            freeze,
            epochs: 1,
            ..config(demo)
        };
        let mut exp = Experiment::new(cfg, pair).unwrap();
        let before = snapshot(&exp.net);
        let frozen: Vec<String> = exp.net.stages()[..freeze]
            .iter()
            .flat_map(|s| s.var_prefixes.clone())
            .collect();
        exp.run(&mut |_e: Event| {}, &mut NoControl).unwrap();
        let after = snapshot(&exp.net);
        for (name, v) in &before {
            let is_frozen = frozen.iter().any(|p| name.starts_with(p));
            if is_frozen {
                assert_eq!(v, &after[name], "{demo}: frozen {name} changed");
            } else if !name.contains("running") {
                assert_ne!(v, &after[name], "{demo}: trainable {name} did not change");
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_history_and_another_seed_does_not() {
    let a = run(config("moons"), moons()).0;
    let b = run(config("moons"), moons()).0;
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(x.train_loss, y.train_loss);
        assert_eq!(x.source_accuracy, y.source_accuracy);
        assert_eq!(x.target_accuracy, y.target_accuracy);
    }
    let c = run(
        ExperimentConfig {
            seed: 2,
            ..config("moons")
        },
        moons(),
    )
    .0;
    assert_ne!(a.history[0].train_loss, c.history[0].train_loss);
    let d1 = run(
        ExperimentConfig {
            epochs: 1,
            ..config("digits-rotated")
        },
        digits(5),
    )
    .0;
    let d2 = run(
        ExperimentConfig {
            epochs: 1,
            ..config("digits-rotated")
        },
        digits(5),
    )
    .0;
    assert_eq!(d1.history[0].train_loss, d2.history[0].train_loss);
}

#[test]
fn target_labels_move_k_per_class_into_training_and_the_rest_is_evaluated() {
    let pair = digits(6);
    let cfg = ExperimentConfig {
        method: MethodKind::FineTune,
        target_labels: 2,
        epochs: 1,
        ..config("digits-rotated")
    };
    let exp = Experiment::new(cfg, pair.clone()).unwrap();
    assert_eq!(exp.split.target_train.len(), 20);
    assert_eq!(exp.split.target_eval.len(), 40);
    assert!(
        exp.split
            .target_train
            .iter()
            .all(|i| !exp.split.target_eval.contains(i))
    );
    let labels = pair.target.labels.as_ref().unwrap();
    for c in 0..10u32 {
        assert_eq!(
            exp.split
                .target_train
                .iter()
                .filter(|&&i| labels[i] == c)
                .count(),
            2
        );
    }
    // Source-only with no target labels never trains on the target.
    let exp = Experiment::new(config("digits-rotated"), pair).unwrap();
    assert!(exp.split.target_train.is_empty());
    assert_eq!(exp.split.target_eval.len(), 60);
}

#[test]
fn settings_are_checked_before_training() {
    let err = |cfg: ExperimentConfig| Experiment::new(cfg, moons()).err().unwrap().to_string();
    assert!(
        err(ExperimentConfig {
            freeze: 9,
            ..config("moons")
        })
        .contains("--freeze 9 is more than the 2 stages")
    );
    assert!(
        err(ExperimentConfig {
            epochs: 0,
            ..config("moons")
        })
        .contains("--epochs")
    );
    assert!(
        err(ExperimentConfig {
            learning_rate: -1.0,
            ..config("moons")
        })
        .contains("--lr")
    );
    assert!(
        err(ExperimentConfig {
            method: MethodKind::TargetOnly,
            ..config("moons")
        })
        .contains("--target-labels")
    );
    assert!(
        err(ExperimentConfig {
            backbone: Some(BackboneKind::SmallCnn),
            ..config("moons")
        })
        .contains("image input")
    );
}

#[test]
fn a_saved_model_reloads_exactly_and_transfers_to_new_classes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.safetensors");
    let pair = digits(8);
    let cfg = ExperimentConfig {
        epochs: 2,
        save: Some(path.clone()),
        ..config("digits-rotated")
    };
    let (report_a, exp_a) = run(cfg, pair.clone());
    let meta = read_meta(&path).unwrap();
    assert_eq!(meta.backbone, BackboneKind::SmallCnn);
    assert_eq!(meta.stages, vec!["conv1", "conv2", "fc1"]);
    assert_eq!(meta.channels, 1);
    assert_eq!(meta.input_size, [28, 28]);
    assert_eq!(meta.class_names, pair.classes);
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a.json")).unwrap()).unwrap();
    for key in [
        "backbone",
        "stages",
        "input_size",
        "channels",
        "normalisation",
        "class_names",
    ] {
        assert!(sidecar.get(key).is_some(), "sidecar lacks {key}");
    }
    // Same classes: the whole model comes back; fully frozen + tiny lr keeps its predictions.
    let cfg = ExperimentConfig {
        init: Some(path.clone()),
        freeze: 3,
        epochs: 1,
        learning_rate: 1e-9,
        ..config("digits-rotated")
    };
    let exp_b = Experiment::new(cfg, pair.clone()).unwrap();
    let init = exp_b.init_report.clone().unwrap();
    assert!(!init.new_head);
    assert!(init.fresh.is_empty());
    let idx: Vec<usize> = (0..pair.target.len()).collect();
    assert_eq!(
        exp_a.predict(true, &idx).unwrap(),
        exp_b.predict(true, &idx).unwrap()
    );
    assert!(report_a.final_metrics.target_accuracy.is_some());
    // Task B has other classes: the backbone is reused, the head is new.
    let mut other = (*pair).clone();
    other.classes = (0..10).map(|i| format!("letter{i}")).collect();
    other.source.class_names = other.classes.clone();
    other.target.class_names = other.classes.clone();
    let cfg = ExperimentConfig {
        init: Some(path),
        epochs: 1,
        ..config("digits-rotated")
    };
    let exp_c = Experiment::new(cfg, Arc::new(other)).unwrap();
    let init = exp_c.init_report.clone().unwrap();
    assert!(init.new_head);
    assert_eq!(init.fresh, vec!["head.bias", "head.weight"]);
    assert!(exp_c.warnings.iter().any(|w| w.contains("new head")));
    let a = snapshot(&exp_a.net);
    let c = snapshot(&exp_c.net);
    assert_eq!(a["conv1.weight"], c["conv1.weight"]);
    assert_ne!(a["head.weight"], c["head.weight"]);
}

#[test]
fn the_worker_stops_within_a_batch_and_reports_in_order() {
    let cfg = ExperimentConfig {
        epochs: 50,
        batch_size: 8,
        ..config("moons")
    };
    let worker = Worker::spawn(cfg, Some(moons()), None, Some(1), Arc::new(|| {})).unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stop_sent_at_batch = None;
    while Instant::now() < deadline {
        let Ok(ev) = worker.events().recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        if let Event::EpochFinished(r) = &ev
            && r.epoch == 1
            && stop_sent_at_batch.is_none()
        {
            worker.send(Command::Stop);
            stop_sent_at_batch = Some(r.epoch);
        }
        let done = matches!(ev, Event::Finished(_) | Event::Failed { .. });
        events.push(ev);
        if done {
            break;
        }
    }
    assert!(matches!(events.first(), Some(Event::Started(_))));
    let Some(Event::Finished(report)) = events.last() else {
        panic!("no Finished event: {:?}", events.last());
    };
    assert!(report.stopped_early);
    // Stop was sent after epoch 1: at most the epoch in flight may not even finish.
    assert!(
        report.history.len() <= 2,
        "ran {} epochs after stop",
        report.history.len()
    );
    let batches_after_stop = events
        .iter()
        .skip_while(|e| !matches!(e, Event::EpochFinished(r) if r.epoch == 1))
        .filter(|e| matches!(e, Event::BatchFinished(p) if p.epoch == 2 && p.batch > 1))
        .count();
    assert_eq!(batches_after_stop, 0, "the run went on after Stop");
    assert!(worker_finishes(&worker));
}

fn worker_finishes(w: &Worker) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if w.is_finished() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_diverging_run_fails_with_its_epoch_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    // A sane first run writes a checkpoint.
    run(
        ExperimentConfig {
            epochs: 1,
            save: Some(path.clone()),
            ..config("moons")
        },
        moons(),
    );
    let good = std::fs::read(&path).unwrap();
    let cfg = ExperimentConfig {
        learning_rate: 1e30,
        epochs: 3,
        save: Some(path.clone()),
        ..config("moons")
    };
    let worker = Worker::spawn(cfg, Some(moons()), None, Some(1), Arc::new(|| {})).unwrap();
    let mut failed = None;
    while let Ok(ev) = worker.events().recv_timeout(Duration::from_secs(30)) {
        match ev {
            Event::Failed { epoch, message } => {
                failed = Some((epoch, message));
                break;
            }
            Event::Finished(_) => break,
            _ => {}
        }
    }
    let (epoch, message) = failed.expect("the run fails");
    assert!(epoch.is_some(), "{message}");
    assert!(
        message.contains("diverged") || message.contains("NaN") || message.contains("inf"),
        "{message}"
    );
    // The checkpoint on disk is still a complete file from a finished epoch.
    let now = std::fs::read(&path).unwrap();
    assert!(
        epoch == Some(1) && now == good || epoch > Some(1),
        "checkpoint was overwritten by a bad epoch"
    );
    assert!(read_meta(&path).is_ok());
}

#[test]
fn resnet18_has_the_standard_names_and_trains_end_to_end() {
    let spec = NetworkSpec {
        backbone: BackboneKind::Resnet18,
        input: SampleShape::Image {
            channels: 3,
            height: 32,
            width: 32,
        },
        num_classes: 4,
        bottleneck: None,
    };
    let net = Network::new(spec, Normalisation::imagenet(), &Device::Cpu, 1).unwrap();
    let names: Vec<String> = net.varmap.data().lock().unwrap().keys().cloned().collect();
    for n in [
        "conv1.weight",
        "bn1.running_mean",
        "bn1.weight",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_var",
        "layer4.1.bn2.bias",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n}");
    }
    assert_eq!(net.stages().len(), 5);
    let (_, total) = net.param_counts(0);
    assert_eq!(total, 11_178_564, "ResNet-18 with a 4-class head");
    let x = Tensor::rand(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap();
    let out = net.forward_t(&x, true).unwrap();
    assert_eq!(out.logits.dims(), &[2, 4]);
    let grads = out.logits.sum_all().unwrap().backward().unwrap();
    let data = net.varmap.data().lock().unwrap();
    assert!(
        grads.get(data["conv1.weight"].as_tensor()).is_some(),
        "gradient reaches the stem through the pool"
    );
}

#[test]
fn the_differentiable_max_pool_matches_candles() {
    for (h, w) in [(8, 8), (7, 9), (32, 32), (5, 4)] {
        let x = Tensor::rand(0f32, 1.0, (2, 3, h, w), &Device::Cpu).unwrap();
        let ours = layers::max_pool_3x3_s2(&x).unwrap();
        let padded = x
            .pad_with_zeros(2, 1, 1)
            .unwrap()
            .pad_with_zeros(3, 1, 1)
            .unwrap();
        let reference = padded.max_pool2d_with_stride(3, 2).unwrap();
        assert_eq!(ours.dims(), reference.dims(), "{h}×{w}");
        let diff = (ours - reference)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0);
    }
}

#[test]
fn an_imported_file_with_a_scalar_head_is_read_without_a_crash() {
    // A file from anywhere: the ResNet layout with a 0-d `fc.weight`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.safetensors");
    let cpu = Device::Cpu;
    let mut tensors = HashMap::new();
    tensors.insert(
        "conv1.weight".to_string(),
        Tensor::zeros((64, 3, 7, 7), candle_core::DType::F32, &cpu).unwrap(),
    );
    tensors.insert(
        "layer4.1.conv2.weight".to_string(),
        Tensor::zeros((2, 2, 1, 1), candle_core::DType::F32, &cpu).unwrap(),
    );
    tensors.insert("fc.weight".to_string(), Tensor::new(1f32, &cpu).unwrap());
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let meta = read_meta(&path).unwrap();
    assert_eq!(meta.backbone, BackboneKind::Resnet18);
    assert!(meta.class_names.is_empty(), "{:?}", meta.class_names);
}
