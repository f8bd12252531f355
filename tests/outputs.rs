//! Nothing lost on bad paths: outputs are checked before the work, never overwrite an
//! input, are written whole, and a model file is one unit that is checked as untrusted
//! input; Ctrl-C still writes the report.

mod common;

use common::{bin, run_cli};
use std::path::Path;
use transferlab::model::read_meta;

/// Train the demo for one epoch and save the model at `path`.
fn save_model(path: &Path) {
    let (ok, _, err) = run_cli(&[
        "run",
        "--demo",
        "digits-rotated",
        "--epochs",
        "1",
        "-q",
        "--save",
        path.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
}

fn quick_run(extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["run", "--demo", "digits-rotated", "--epochs", "1", "-q"];
    args.extend_from_slice(extra);
    run_cli(&args)
}

#[test]
fn a_report_onto_the_starting_model_is_refused_and_the_model_survives() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    save_model(&model);
    let before = std::fs::read(&model).unwrap();
    let m = model.to_str().unwrap();
    let (ok, out, err) = quick_run(&["--init", m, "--json", m]);
    assert!(!ok);
    assert!(out.is_empty(), "it trained before refusing: {out}");
    assert!(
        err.contains("--json report") && err.contains("starting model"),
        "{err}"
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    // The sidecar is an input too.
    let side = dir.path().join("m.json");
    let (ok, _, err) = quick_run(&["--init", m, "--predict", side.to_str().unwrap()]);
    assert!(!ok && err.contains("sidecar"), "{err}");
    assert!(read_meta(&model).is_ok());
}

#[test]
fn a_report_and_a_saved_model_on_one_name_clash_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("x.json");
    let save = dir.path().join("x.safetensors");
    let (ok, out, err) = quick_run(&[
        "--json",
        json.to_str().unwrap(),
        "--save",
        save.to_str().unwrap(),
    ]);
    assert!(!ok && out.is_empty());
    assert!(
        err.contains("sidecar") && err.contains("--json report"),
        "{err}"
    );
    assert!(!json.exists() && !save.exists());
}

#[test]
fn outputs_are_checked_before_training_and_folders_created() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the report should go: refused before any epoch.
    let (ok, out, err) = quick_run(&["--json", dir.path().to_str().unwrap()]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("not a regular file"), "{err}");
    #[cfg(unix)]
    {
        let (ok, _, err) = quick_run(&["--save", "/dev/null"]);
        assert!(!ok && err.contains("not a regular file"), "{err}");
        use std::os::unix::fs::FileTypeExt;
        let t = std::fs::metadata("/dev/null").unwrap().file_type();
        assert!(t.is_char_device(), "/dev/null was replaced");
    }
    // A missing folder is created, as --save does.
    let deep = dir.path().join("a/b/report.json");
    let (ok, _, err) = quick_run(&["--json", deep.to_str().unwrap()]);
    assert!(ok, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&deep).unwrap()).unwrap();
    assert!(report.get("history").is_some());
    let left: Vec<_> = std::fs::read_dir(deep.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "temporary files left: {left:?}");
}

#[test]
fn a_model_file_carries_its_own_description() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    save_model(&model);
    let meta = read_meta(&model).unwrap();
    // The readable sidecar can go missing or be replaced: the weights know what they are.
    std::fs::write(dir.path().join("m.json"), "{}").unwrap();
    assert_eq!(read_meta(&model).unwrap(), meta);
    std::fs::remove_file(dir.path().join("m.json")).unwrap();
    assert_eq!(read_meta(&model).unwrap(), meta);
    let (ok, _, err) = quick_run(&["--init", model.to_str().unwrap()]);
    assert!(ok, "{err}");
}

/// An older model: weights without the embedded description, and a sidecar beside them.
fn old_style(dir: &Path, sidecar: &str) -> std::path::PathBuf {
    let model = dir.join("new.safetensors");
    save_model(&model);
    let tensors = candle_core::safetensors::load(&model, &candle_core::Device::Cpu).unwrap();
    let old = dir.join("old.safetensors");
    candle_core::safetensors::save(&tensors, &old).unwrap();
    std::fs::write(dir.join("old.json"), sidecar).unwrap();
    old
}

#[test]
fn an_old_sidecar_is_checked_against_its_weights_and_as_untrusted_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("new.safetensors");
    let old = old_style(dir.path(), "{}");
    let good = std::fs::read_to_string(dir.path().join("new.json")).unwrap();
    let err = read_meta(&old).unwrap_err().to_string();
    assert!(
        err.contains("old.json") && err.contains("backbone"),
        "{err}"
    );
    // The right sidecar: read as before.
    std::fs::write(dir.path().join("old.json"), &good).unwrap();
    assert_eq!(read_meta(&old).unwrap(), read_meta(&model).unwrap());
    let mut side: serde_json::Value = serde_json::from_str(&good).unwrap();
    let cases: [(&str, serde_json::Value, &str); 4] = [
        (
            "class_names",
            serde_json::json!(["a", "b"]),
            "another model",
        ),
        (
            "normalisation",
            serde_json::json!({"mean": [0.0], "std": [0.0]}),
            "positive",
        ),
        ("bottleneck", serde_json::json!(1_000_000_000u64), "wide"),
        (
            "input",
            serde_json::json!({"kind": "image", "channels": 1, "height": 100000, "width": 100000}),
            "a side",
        ),
    ];
    for (key, value, words) in cases {
        let saved = side[key].clone();
        side[key] = value;
        std::fs::write(dir.path().join("old.json"), side.to_string()).unwrap();
        let err = read_meta(&old).unwrap_err().to_string();
        assert!(err.contains(words), "{key}: {err}");
        // The CLI refuses it with the same words instead of aborting.
        let (ok, _, cli_err) = quick_run(&["--init", old.to_str().unwrap()]);
        assert!(!ok && cli_err.contains(words), "{key}: {cli_err}");
        side[key] = saved;
    }
}

#[test]
fn absurd_sizes_are_refused_with_a_message_not_an_abort() {
    let (ok, _, err) = quick_run(&["--method", "dan", "--bottleneck", "100000000"]);
    assert!(
        !ok && err.contains("--bottleneck") && err.contains("at most"),
        "{err}"
    );
    let (ok, _, err) = run_cli(&[
        "similarity",
        "--demo",
        "digits-rotated",
        "--permutations",
        "1000000000",
    ]);
    assert!(!ok && err.contains("--permutations"), "{err}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_and_still_writes_its_report() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = std::process::Command::new(bin())
        .args([
            "run",
            "--demo",
            "digits-rotated",
            "--epochs",
            "500",
            "--json",
            json.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Wait for the first finished epoch, then interrupt.
    for line in lines.by_ref() {
        if line.unwrap().contains("epoch   1") {
            break;
        }
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["stopped_early"], true);
    let epochs = report["history"].as_array().unwrap().len();
    assert!((1..500).contains(&epochs), "{epochs}");
}
