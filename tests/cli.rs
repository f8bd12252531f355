//! The command line as a script would use it: flags, JSON keys, CSV predictions, errors.

mod common;

use common::{run_cli, write_digit_folder};
use transferlab::data::demo::Style;

#[test]
fn demos_are_listed() {
    let (ok, out, _) = run_cli(&["demos"]);
    assert!(ok);
    for name in [
        "digits-rotated",
        "digits-inverted",
        "digits-colour",
        "moons",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
}

#[test]
fn devices_are_listed_with_the_automatic_choice() {
    let (ok, out, err) = run_cli(&["devices"]);
    assert!(ok, "{err}");
    assert!(out.lines().next().unwrap().starts_with("cpu"), "{out}");
    assert!(out.contains("auto   → "), "{out}");
}

#[test]
fn a_demo_run_writes_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let (ok, out, err) = run_cli(&[
        "run",
        "--demo",
        "moons",
        "--method",
        "fine-tune",
        "--freeze",
        "1",
        "--epochs",
        "2",
        "--seed",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "one summary line on stdout: {out}");
    assert!(out.contains("target"), "{out}");
    assert!(err.contains("epoch"), "per-epoch progress on stderr: {err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let t = v["final"]["target_accuracy"].as_f64().unwrap();
    let s = v["final"]["source_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&s));
    // The estimate made without target labels, documented in docs/methods.md.
    let atc = v["final"]["label_free"]["accuracy"]["atc"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&atc), "{atc}");
    assert!(
        err.contains("estimated without target labels: ATC"),
        "{err}"
    );
    let history = v["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    for (i, h) in history.iter().enumerate() {
        assert_eq!(h["epoch"].as_u64(), Some(i as u64 + 1));
        for key in ["train_loss", "source_accuracy", "target_accuracy"] {
            assert!(h[key].is_number(), "history[{i}].{key}");
        }
    }
    assert_eq!(v["freeze"].as_u64(), Some(1));
}

#[test]
fn folders_train_and_an_unlabeled_target_gets_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let tgt = dir.path().join("tgt");
    write_digit_folder(&src, &[0, 1, 2], 8, Style::Clean, 28, "png", 1);
    // A flat target: images straight in the folder.
    write_digit_folder(&tgt, &[1, 2], 3, Style::Inverted, 32, "png", 2);
    for c in ["1", "2"] {
        for e in std::fs::read_dir(tgt.join(c)).unwrap() {
            let p = e.unwrap().path();
            std::fs::rename(&p, tgt.join(p.file_name().unwrap())).unwrap();
        }
        std::fs::remove_dir(tgt.join(c)).unwrap();
    }
    let json = dir.path().join("r.json");
    let csv = dir.path().join("p.csv");
    let (ok, out, err) = run_cli(&[
        "run",
        "--source",
        src.to_str().unwrap(),
        "--target",
        tgt.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--json",
        json.to_str().unwrap(),
        "--predict",
        csv.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("target n/a"),
        "no target accuracy without labels: {out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["final"]["target_accuracy"].is_null());
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "file,predicted,confidence");
    assert_eq!(lines.len(), 7, "a row per target file");
    assert!(
        lines[1..]
            .iter()
            .all(|l| ["0", "1", "2"].contains(&l.split(',').nth(1).unwrap()))
    );
}

#[test]
fn save_then_init_is_task_a_to_task_b() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("a.safetensors");
    let (ok, _, err) = run_cli(&[
        "run",
        "--demo",
        "digits-inverted",
        "--epochs",
        "1",
        "--save",
        model.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(model.exists() && dir.path().join("a.json").exists());
    let (ok, out, err) = run_cli(&[
        "run",
        "--demo",
        "digits-rotated",
        "--method",
        "fine-tune",
        "--init",
        model.to_str().unwrap(),
        "--freeze",
        "3",
        "--epochs",
        "1",
        "--target-labels",
        "5",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("fine-tune"), "{out}");
    assert!(!err.contains("matched only"), "every tensor matched: {err}");

    // An adaptation layer the saved model never had: its weights (and the head after it)
    // start fresh, and the run says which.
    let (ok, _, err) = run_cli(&[
        "run",
        "--demo",
        "digits-rotated",
        "--init",
        model.to_str().unwrap(),
        "--bottleneck",
        "32",
        "--epochs",
        "1",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let warning = err
        .lines()
        .find(|l| l.contains("matched only"))
        .unwrap_or_else(|| panic!("no partial-match warning in:\n{err}"));
    assert!(
        warning.contains("a.safetensors") && warning.contains("bottleneck"),
        "{warning}"
    );
}

#[test]
fn bad_input_fails_with_a_clear_message_and_no_panic() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--demo", "nope"], "unknown demo 'nope'"),
        (
            vec!["run", "--source", "/no/such/dir", "--target", "/tmp"],
            "does not exist",
        ),
        (
            vec!["run", "--demo", "moons", "--freeze", "7"],
            "--freeze 7 is more than",
        ),
        (
            vec!["run", "--demo", "moons", "--method", "target-only"],
            "--target-labels",
        ),
        (
            vec!["run", "--demo", "moons", "--method", "magic"],
            "invalid value 'magic'",
        ),
        (
            vec!["run", "--demo", "moons", "--init", "/no/model.safetensors"],
            "model",
        ),
    ];
    assert_each_fails_clearly(&cases);
}

/// Run each case; each must fail with its expected words and no panic. Returns the
/// error output of each, for further checks.
fn assert_each_fails_clearly(cases: &[(Vec<&str>, &str)]) -> Vec<String> {
    cases
        .iter()
        .map(|(args, expected)| {
            let (ok, _, err) = run_cli(args);
            assert!(!ok, "{args:?} should fail");
            assert!(
                err.contains(expected),
                "{args:?}: expected '{expected}' in:\n{err}"
            );
            assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
            err
        })
        .collect()
}

#[test]
fn similarity_reports_metrics_map_and_advice_and_flags_negative_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sim.json");
    // Two run reports: an adaptation run well below source-only is negative transfer.
    let base = serde_json::json!({"method": "source-only", "final": {"target_accuracy": 0.8}, "config": {"target_labels": 0}});
    let bad = serde_json::json!({"method": "dann", "final": {"target_accuracy": 0.5}, "config": {"target_labels": 0}});
    let (a, b) = (dir.path().join("base.json"), dir.path().join("bad.json"));
    std::fs::write(&a, base.to_string()).unwrap();
    std::fs::write(&b, bad.to_string()).unwrap();
    let (ok, out, err) = run_cli(&[
        "similarity",
        "--demo",
        "digits-inverted",
        "--max-per-domain",
        "200",
        "--permutations",
        "50",
        "--json",
        json.to_str().unwrap(),
        "--runs",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("A-distance") && out.contains("advice"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Inverted digits are trivially told apart by their pixels.
    assert!(
        v["a_distance"].as_f64().unwrap() > 1.5,
        "{}",
        v["a_distance"]
    );
    assert!(v["mmd_p_value"].as_f64().unwrap() < 0.05);
    assert!(v["mmd2"].as_f64().unwrap() > 0.0);
    assert!(v["coral_distance"].is_number());
    assert_eq!(v["per_class"]["matrix"].as_array().unwrap().len(), 10);
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 400);
    assert!(
        points[0]["file"]
            .as_str()
            .unwrap()
            .starts_with("demo:digits-inverted/source")
    );
    assert!(["a", "b", "c", "d"].contains(&v["advice"]["case"].as_str().unwrap()));
    let warnings = v["negative_transfer"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["method"], "dann");
}

#[test]
fn sizes_a_backbone_cannot_take_are_refused_before_anything_loads() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "--demo", "digits-rotated", "--input-size", "2000"],
            "--input-size",
        ),
        (
            vec![
                "run",
                "--demo",
                "digits-rotated",
                "--backbone",
                "resnet18",
                "--input-size",
                "16",
            ],
            "32 to 256",
        ),
        (
            vec!["run", "--demo", "digits-rotated", "--channels", "2"],
            "--channels",
        ),
        (
            vec!["bench", "--backbone", "small-cnn", "--input-size", "100000"],
            "--input-size",
        ),
    ];
    for ((args, _), err) in cases.iter().zip(assert_each_fails_clearly(&cases)) {
        assert!(!err.contains("epoch"), "{args:?} started training:\n{err}");
        assert!(
            !err.contains("memory allocation"),
            "{args:?} aborted:\n{err}"
        );
    }
}

#[test]
fn methods_and_backbones_are_listed_with_their_settings() {
    let (ok, out, _) = run_cli(&["methods"]);
    assert!(ok);
    assert!(
        out.contains("dann") && out.contains("--lambda (default 0.3"),
        "{out}"
    );
    let (ok, out, _) = run_cli(&["backbones"]);
    assert!(ok);
    assert!(
        out.contains("resnet18") && out.contains("stem, layer1"),
        "{out}"
    );
    // A hyperparameter the method does not have is named, with the ones it has.
    let (ok, _, err) = run_cli(&[
        "run", "--demo", "moons", "--method", "dan", "--param", "tau=2",
    ]);
    assert!(!ok);
    assert!(
        err.contains("--param tau") && err.contains("it has lambda"),
        "{err}"
    );
}

#[test]
fn rank_puts_the_source_and_the_model_closest_to_the_target_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let classes = [0, 1, 2, 3];
    // The target: inverted digits. Candidates: more inverted digits, and clean ones.
    for (name, style, seed) in [
        ("target", Style::Inverted, 1),
        ("like", Style::Inverted, 2),
        ("unlike", Style::Clean, 3),
    ] {
        write_digit_folder(&dir.path().join(name), &classes, 12, style, 28, "png", seed);
    }
    // Two starting models: one trained on inverted digits, one on clean ones.
    for (data, model) in [
        ("like", "like.safetensors"),
        ("unlike", "unlike.safetensors"),
    ] {
        let (ok, _, err) = run_cli(&[
            "run",
            "--source",
            &path(data),
            "--target",
            &path("target"),
            "--epochs",
            "3",
            "--save",
            &path(model),
            "--quiet",
        ]);
        assert!(ok, "{err}");
    }
    let json = path("rank.json");
    let (ok, out, err) = run_cli(&[
        "rank",
        "--target",
        &path("target"),
        "--source",
        &path("unlike"),
        "--source",
        &path("like"),
        "--model",
        &path("unlike.safetensors"),
        "--model",
        &path("like.safetensors"),
        "--target-labels",
        "5",
        "--features",
        "pixels",
        "--json",
        &json,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("#1 folder"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let first = |kind: &str| -> String {
        let c = report["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind && c["rank"] == 1)
            .unwrap_or_else(|| panic!("no #1 {kind}: {report}"));
        for key in if kind == "folder" {
            ["mmd2", "a_distance", "coral"]
        } else {
            ["logme", "leep", "h_score"]
        } {
            assert!(c["measures"][key].is_f64(), "{kind} {key}: {c}");
        }
        c["name"].as_str().unwrap().to_string()
    };
    assert!(first("folder").ends_with("like") && !first("folder").ends_with("unlike"));
    assert!(first("model").ends_with("/like.safetensors"), "{report}");
    // Models need labelled target images: said before anything is measured.
    let (ok, _, err) = run_cli(&[
        "rank",
        "--target",
        &path("target"),
        "--model",
        &path("like.safetensors"),
    ]);
    assert!(!ok && err.contains("--target-labels"), "{err}");
}

#[test]
fn rotation_pretraining_without_labels_gives_features_that_cluster_and_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("rot.safetensors");
    let report = dir.path().join("report.json");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    // 1. Self-supervised: no class label is read, so no class accuracy is reported.
    let (ok, out, err) = run_cli(&[
        "run",
        "--demo",
        "digits-colour",
        "--method",
        "rotation-pretrain",
        "--epochs",
        "4",
        "--save",
        &path(&model),
        "--json",
        &path(&report),
        "-q",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("rotation accuracy"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(v["final"]["target_accuracy"].is_null());
    let last = &v["history"].as_array().unwrap().last().unwrap()["metrics"];
    assert!(
        last["rotation_acc"].as_f64().unwrap() > 0.6,
        "chance is 0.25: {last}"
    );
    // 2. Clustering the unlabeled target: the pretrained features group the digits far
    // better than the same network with random weights.
    let ari = |features: &[&str]| {
        let json = dir.path().join("sim.json");
        let mut args = vec![
            "similarity",
            "--demo",
            "digits-colour",
            "--layer",
            "fc1",
            "--clusters",
            "10",
            "--max-per-domain",
            "500",
            "--permutations",
            "10",
        ];
        args.extend(features);
        let json_arg = path(&json);
        args.extend(["--json", &json_arg]);
        let (ok, out, err) = run_cli(&args);
        assert!(ok, "{err}");
        assert!(out.contains("adjusted Rand index"), "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["clusters"]["k"], 10);
        let points = v["points"].as_array().unwrap();
        assert!(
            points
                .iter()
                .all(|p| p["cluster"].is_number() == (p["domain"] == "target")),
            "target points, and only they, carry their cluster"
        );
        v["clusters"]["adjusted_rand_index"].as_f64().unwrap()
    };
    let model_arg = path(&model);
    let (pretrained, random) = (
        ari(&["--init", &model_arg]),
        ari(&["--backbone", "small-cnn"]),
    );
    assert!(
        pretrained > random + 0.15,
        "ARI pretrained {pretrained} vs random {random}"
    );
    // 3. Transfer to the target with 5 labels per class on the frozen features.
    let target_accuracy = |init: Option<&str>| {
        let mut args = vec![
            "run",
            "--demo",
            "digits-colour",
            "--method",
            "target-only",
            "--target-labels",
            "5",
            "--freeze",
            "2",
            "--epochs",
            "8",
            "-q",
        ];
        if let Some(m) = init {
            args.extend(["--init", m]);
        }
        let (ok, out, err) = run_cli(&args);
        assert!(ok, "{err}");
        out.split("target ")
            .nth(1)
            .and_then(|s| s.split('%').next())
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no target accuracy in {out}"))
    };
    let (with, without) = (target_accuracy(Some(&model_arg)), target_accuracy(None));
    assert!(with > without + 20.0, "{with}% vs {without}% from scratch");
}

#[test]
fn labels_spread_step_by_step_reach_the_target_and_get_better_as_they_travel() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("spread.json");
    let (ok, out, err) = run_cli(&[
        "similarity",
        "--demo",
        "digits-rotated",
        "--max-per-domain",
        "300",
        "--permutations",
        "10",
        "--spread",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("spreading     labels reach"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = &v["label_spreading"];
    let reached: Vec<f64> = s["reached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(reached[0], 0.0, "nothing has arrived before the first step");
    assert!(
        reached.windows(2).all(|w| w[0] <= w[1] + 1e-9),
        "{reached:?}"
    );
    assert!(*reached.last().unwrap() > 0.95, "{reached:?}");
    let accuracy: Vec<f64> = s["accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    // Better than chance (10 classes) once the labels have travelled.
    assert!(*accuracy.last().unwrap() > 0.3, "{accuracy:?}");
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(steps.len(), reached.len());
    let targets = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["domain"] == "target")
        .count();
    assert_eq!(steps[0].as_array().unwrap().len(), targets);
    assert_eq!(s["target_index"].as_array().unwrap().len(), targets);
}

#[test]
fn rotation_pretraining_learns_from_a_source_folder_without_classes() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = dir.path().join("labelled");
    write_digit_folder(&labelled, &[0, 1, 2, 3], 12, Style::Clean, 28, "png", 3);
    // Flatten the source: every image straight in one folder, no class folder.
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for class in std::fs::read_dir(&labelled).unwrap() {
        for f in std::fs::read_dir(class.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            std::fs::rename(&f, flat.join(f.file_name().unwrap())).unwrap();
        }
    }
    let target = dir.path().join("target");
    write_digit_folder(&target, &[0, 1, 2, 3], 12, Style::Rotated(30), 28, "png", 4);
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let model = dir.path().join("rot.safetensors");
    let args = |method: &str| {
        vec![
            "run".to_string(),
            "--source".into(),
            path(&flat),
            "--target".into(),
            path(&target),
            "--method".into(),
            method.into(),
            "--epochs".into(),
            "2".into(),
            "--batch-size".into(),
            "16".into(),
            "--save".into(),
            path(&model),
            "-q".into(),
        ]
    };
    let a = args("rotation-pretrain");
    let (ok, out, err) = run_cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(out.contains("rotation accuracy"), "{out}");
    assert!(model.is_file());
    // A method that needs the source's labels says why it cannot use this folder.
    let a = args("source-only");
    let (ok, _, err) = run_cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok);
    assert!(
        err.contains("no class subfolders") && err.contains("rotation-pretrain"),
        "{err}"
    );
}
