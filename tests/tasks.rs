//! Across tasks and through stepping stones: multitask learning against single tasks,
//! zero-shot learning by attributes against chance, stepping-stone transfer against direct
//! transfer, and the tables' bad input named by row.

mod common;

use common::{run_cli, write_digit_folder};
use std::path::Path;
use transferlab::data::demo::Style;
use transferlab::device::DeviceChoice;
use transferlab::method::MethodKind;
use transferlab::tasks::multitask::{run_multitask, shapes_multitask};
use transferlab::tasks::zeroshot::{plan_classes, run_zero_shot, shapes_zero_shot};
use transferlab::train::results::RunExtra;
use transferlab::train::{
    DataSource, EpochRecord, Event, ExperimentConfig, NoControl, RunReport, ShapeHint,
};

fn config(method: MethodKind, demo: &str, epochs: usize) -> ExperimentConfig {
    ExperimentConfig {
        data: DataSource::Demo { name: demo.into() },
        method,
        epochs,
        batch_size: 32,
        seed: 1,
        device: DeviceChoice::Cpu,
        ..Default::default()
    }
}

/// A multitask epoch's accuracy of `task`, trained jointly or alone.
fn task_accuracy(r: &EpochRecord, task: &str, alone: bool) -> Option<f64> {
    let t = r.tasks.iter().find(|t| t.task == task)?;
    if alone { t.alone } else { t.joint }
}

/// The report's extra results as they are written to JSON.
fn extra_json(report: &RunReport) -> serde_json::Value {
    serde_json::to_value(report.extra.as_ref().unwrap()).unwrap()
}

fn quiet() -> impl FnMut(Event) {
    |_| {}
}

#[test]
fn multitask_reports_every_task_joint_and_alone_and_learns_them() {
    let data = shapes_multitask(7, 12);
    let mut epochs_seen = 0;
    let mut sink = |e: Event| {
        if let Event::EpochFinished(r) = e {
            epochs_seen += 1;
            for (task, alone) in [
                ("shape", false),
                ("shape", true),
                ("fill", false),
                ("colour", true),
            ] {
                assert!(
                    task_accuracy(&r, task, alone).is_some(),
                    "{task} in {:?}",
                    r.tasks
                );
            }
        }
    };
    let report = run_multitask(
        &config(MethodKind::Multitask, "shapes", 4),
        &data,
        &mut sink,
        &mut NoControl,
    )
    .unwrap();
    assert_eq!(epochs_seen, 4);
    let tasks = extra_json(&report)["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 3);
    for t in &tasks {
        let chance = 1.0 / t["classes"].as_array().unwrap().len() as f64;
        for key in ["joint_accuracy", "alone_accuracy"] {
            let acc = t[key].as_f64().unwrap();
            assert!(
                acc > chance + 0.15,
                "{} {key} {acc} vs chance {chance}",
                t["name"]
            );
        }
    }
    // Colour is the easy task: both models get it.
    let colour = tasks.iter().find(|t| t["name"] == "colour").unwrap();
    assert!(colour["joint_accuracy"].as_f64().unwrap() > 0.9, "{colour}");
}

#[test]
fn multitask_weights_change_what_is_learnt_and_bad_weights_are_refused() {
    let data = shapes_multitask(7, 6);
    let mut cfg = config(MethodKind::Multitask, "shapes", 1);
    cfg.task_weights = vec![1.0, 1.0];
    let err = run_multitask(&cfg, &data, &mut quiet(), &mut NoControl).unwrap_err();
    assert!(err.to_string().contains("3 tasks"), "{err}");
    cfg.task_weights = vec![0.0, 0.0, 0.0];
    assert!(run_multitask(&cfg, &data, &mut quiet(), &mut NoControl).is_err());
    let run = |w: Vec<f64>| -> RunReport {
        let cfg = ExperimentConfig {
            task_weights: w,
            ..config(MethodKind::Multitask, "shapes", 1)
        };
        run_multitask(&cfg, &data, &mut quiet(), &mut NoControl).unwrap()
    };
    let a = run(vec![1.0, 1.0, 1.0]);
    let b = run(vec![1.0, 0.0, 1.0]);
    // The alone baselines do not depend on the joint weights; the joint model does.
    let alone = |r: &RunReport| task_accuracy(&r.history[0], "colour", true).unwrap();
    let joint = |r: &RunReport| task_accuracy(&r.history[0], "shape", false).unwrap();
    assert_eq!(alone(&a), alone(&b));
    assert_ne!(
        (joint(&a), a.history[0].train_loss),
        (joint(&b), b.history[0].train_loss)
    );
}

#[test]
fn zero_shot_names_unseen_classes_well_above_chance() {
    let data = shapes_zero_shot(7, 30);
    let report = run_zero_shot(
        &config(MethodKind::ZeroShot, "shapes", 6),
        &data,
        &mut quiet(),
        &mut NoControl,
    )
    .unwrap();
    let e = &extra_json(&report);
    let chance = e["chance"].as_f64().unwrap();
    assert_eq!(chance, 0.25);
    // The run says what its figures are: the target curve is the unseen classes, with
    // its chance level (drawn as a line in the app).
    let target = report
        .metrics
        .iter()
        .find(|m| m.key == "target_accuracy")
        .unwrap();
    assert_eq!(
        (target.label.as_ref(), target.chance),
        ("unseen classes", Some(0.25))
    );
    let unseen = e["unseen_accuracy"].as_f64().unwrap();
    assert!(unseen > 0.6, "unseen accuracy {unseen} vs chance {chance}");
    // Seen classes are named among 14 (chance 7 %).
    let seen = e["seen_accuracy"].as_f64().unwrap();
    assert!(seen > 0.5, "seen accuracy {seen}");
    let attrs = e["attribute_accuracy"].as_array().unwrap();
    assert_eq!(attrs.len(), 7);
    // Unseen images never reached training: their predictions are marked and present.
    let preds = e["predictions"].as_array().unwrap();
    let n_unseen = preds.iter().filter(|p| p["unseen"] == true).count();
    assert_eq!(n_unseen, 4 * 30);
    assert_eq!(report.final_metrics.target_accuracy, Some(unseen));
    assert_eq!(report.data.classes.len(), 4);
}

#[test]
fn zero_shot_refuses_unseen_classes_it_cannot_name() {
    let mut data = shapes_zero_shot(7, 2);
    let err = |data: &transferlab::tasks::zeroshot::ZeroShotData, unseen: &[&str]| {
        let u: Vec<String> = unseen.iter().map(|s| s.to_string()).collect();
        plan_classes(data, &u).unwrap_err().to_string()
    };
    let e = err(&data, &["circle-red-filled"]);
    assert!(e.contains("at least two unseen"), "{e}");
    let e = err(&data, &["circle-red-filled", "hexagon-red-filled"]);
    assert!(e.contains("'hexagon-red-filled' has no images"), "{e}");
    // A duplicated signature: square-red-filled described exactly like circle-red-filled.
    let c = data.table.find("circle-red-filled").unwrap();
    let s = data.table.find("square-red-filled").unwrap();
    data.table.signatures[s] = data.table.signatures[c].clone();
    let e = err(&data, &["square-red-filled", "triangle-blue-outline"]);
    assert!(
        e.contains(&format!("line {}", data.table.lines[s]))
            && e.contains("same attributes as 'circle-red-filled'"),
        "{e}"
    );
    // An unseen class without a row.
    data.table.classes[s] = "renamed".into();
    let e = err(&data, &["square-red-filled", "triangle-blue-outline"]);
    assert!(
        e.contains("unseen class 'square-red-filled' has no attribute signature"),
        "{e}"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn labels_csv_errors_name_the_row_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    write_digit_folder(&images, &[1, 2], 3, Style::Clean, 28, "png", 1);
    let csv = dir.path().join("labels.csv");
    let run = |csv_text: &str| {
        write(&csv, csv_text);
        run_cli(&[
            "run",
            "--method",
            "multitask",
            "--source",
            images.to_str().unwrap(),
            "--labels",
            csv.to_str().unwrap(),
            "--epochs",
            "1",
            "--quiet",
        ])
    };
    let (ok, _, err) = run("file,digit,parity\n1/1_000.png,one,odd\n1/1_999.png,one,odd\n");
    assert!(!ok);
    assert!(
        err.contains("line 3") && err.contains("'1/1_999.png' is not an image"),
        "{err}"
    );
    let (ok, _, err) = run("file,digit,parity\n1/1_000.png,one\n");
    assert!(!ok);
    assert!(
        err.contains("line 2") && err.contains("the header has 3"),
        "{err}"
    );
    let (ok, _, err) = run("file,digit,parity\n1/1_000.png,one,odd\n1/1_001.png,one,odd\n");
    assert!(!ok);
    assert!(
        err.contains("task 'digit'") && err.contains("only the class 'one'"),
        "{err}"
    );
    let (ok, _, err) = run("file,digit\n1/1_000.png,one\n2/2_000.png,two\n");
    assert!(!ok);
    assert!(err.contains("at least two tasks"), "{err}");
    // Good rows (an empty cell is a missing label): it trains, and says which images
    // were left out.
    let (ok, out, err) = run(
        "file,digit,parity\n1/1_000.png,one,odd\n1/1_001.png,one,\n1/1_002.png,one,odd\n2/2_000.png,two,even\n2/2_001.png,two,even\n./2/2_002.png,,even\n",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("task digit") && out.contains("task parity"),
        "{out}"
    );
    let (ok, _, err) = run(
        "file,digit,parity\n1/1_000.png,one,odd\n1/1_001.png,one,odd\n2/2_000.png,two,even\n2/2_001.png,two,even\n",
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("2 image(s)") && err.contains("no row"),
        "{err}"
    );
}

#[test]
fn attribute_csv_errors_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    write_digit_folder(&images, &[1, 2, 3, 4], 3, Style::Clean, 28, "png", 1);
    let csv = dir.path().join("attributes.csv");
    let run = |text: &str, unseen: &str| {
        write(&csv, text);
        run_cli(&[
            "run",
            "--method",
            "zero-shot",
            "--source",
            images.to_str().unwrap(),
            "--attributes",
            csv.to_str().unwrap(),
            "--unseen",
            unseen,
            "--epochs",
            "1",
            "--quiet",
        ])
    };
    let table = "class,straight,round\n1,1,0\n2,0,1\n3,0,1\n4,1,1\n";
    let (ok, _, err) = run(table, "3,4");
    assert!(!ok);
    assert!(
        err.contains("line 4") && err.contains("'3' has the same attributes as '2'"),
        "{err}"
    );
    let (ok, _, err) = run("class,straight,round\n1,1,0\n2,0,1\n4,1,1\n", "3,4");
    assert!(!ok);
    assert!(
        err.contains("unseen class '3' has no attribute signature"),
        "{err}"
    );
    let (ok, _, err) = run(
        "class,straight,round\n1,1,0\n2,0,maybe\n3,0,0\n4,1,1\n",
        "3,4",
    );
    assert!(!ok);
    assert!(err.contains("line 3") && err.contains("'maybe'"), "{err}");
    let (ok, out, err) = run("class,straight,round\n1,1,0\n2,0,1\n3,0,0\n4,1,1\n", "3,4");
    assert!(ok, "{err}");
    assert!(
        out.contains("unseen classes") && out.contains("chance 50.0%"),
        "{out}"
    );
}

#[test]
fn stepping_stones_beat_direct_transfer_on_the_steps_demo() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("steps.json");
    let (ok, out, err) = run_cli(&[
        "run",
        "--demo",
        "digits-steps",
        "--stepping-stones",
        "--epochs",
        "3",
        "--seed",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("via stepping stones"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let e = &v["extra"];
    assert_eq!(e["kind"], "stepping-stones");
    assert_eq!(e["hops"].as_array().unwrap().len(), 3);
    assert_eq!(e["direct_epochs"], 9);
    assert_eq!(v["history"].as_array().unwrap().len(), 9);
    // Each epoch says which hop it belongs to.
    assert_eq!(v["history"][0]["phase"], serde_json::json!({"hop": 1}));
    assert_eq!(v["history"][8]["phase"], serde_json::json!({"hop": 3}));
    // The report reads back as typed results.
    let typed: RunReport = serde_json::from_value(v.clone()).unwrap();
    let Some(RunExtra::SteppingStones(steps)) = &typed.extra else {
        panic!("stepping-stone results expected: {:?}", typed.extra);
    };
    assert_eq!(steps.hops.len(), 3);
    let stepping = e["stepping_target_accuracy"].as_f64().unwrap();
    let direct = e["direct_target_accuracy"].as_f64().unwrap();
    assert_eq!(v["final"]["target_accuracy"].as_f64(), Some(stepping));
    assert!(
        stepping > direct + 0.05,
        "stepping {stepping} vs direct {direct}: {e}"
    );
    // The intermediate's pseudo-labels were mostly right.
    assert!(
        e["hops"][0]["pseudo_label_accuracy"].as_f64().unwrap() > 0.7,
        "{e}"
    );
}

#[test]
fn stepping_stones_and_task_methods_refuse_what_they_cannot_do() {
    let (ok, _, err) = run_cli(&["run", "--demo", "moons", "--stepping-stones", "--quiet"]);
    assert!(!ok && err.contains("no intermediate domains"), "{err}");
    let (ok, _, err) = run_cli(&[
        "run",
        "--demo",
        "digits-steps",
        "--stepping-stones",
        "--method",
        "target-only",
        "--target-labels",
        "3",
        "--quiet",
    ]);
    assert!(!ok && err.contains("never trains on the source"), "{err}");
    let (ok, _, err) = run_cli(&[
        "run",
        "--demo",
        "digits-rotated",
        "--method",
        "multitask",
        "--quiet",
    ]);
    assert!(!ok && err.contains("--demo shapes"), "{err}");
    let (ok, _, err) = run_cli(&["run", "--demo", "shapes", "--quiet"]);
    assert!(!ok && err.contains("multitask"), "{err}");
    let _ = ShapeHint::default();
}
