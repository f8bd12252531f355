//! The shipped ImageNet EfficientNet-Lite0: the two CC0 photo crops of the fixture are
//! recognised (espresso, a cat), and all 1000 logits agree with PyTorch's reference
//! (timm's `tf_efficientnet_lite0` with the same weights, `scripts/convert-effnet-lite0.py`);
//! `predict` names them; `run --backbone efficientnet-lite0` trains on a colour folder at
//! every freezing depth, and a linear probe leaves the ImageNet weights as they were.

mod common;

use candle_core::{Device, Tensor};
use common::{run_cli, write_digit_folder};
use transferlab::data::demo::Style;
use transferlab::data::folder::image_to_values;
use transferlab::model::efficientnet::{imagenet_classes, imagenet_network};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/effnet");

#[test]
fn shipped_weights_recognise_the_fixture_photos_and_match_pytorch() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/reference-logits.json")).unwrap(),
    )
    .unwrap();
    let images = fixture["images"].as_array().unwrap();
    let mut x = Vec::new();
    for img in images {
        let path = format!("{FIXTURES}/{}", img["file"].as_str().unwrap());
        let decoded = image::open(&path).unwrap();
        x.extend(image_to_values(&decoded, 3, 224, 224));
    }
    let x = Tensor::from_vec(x, (images.len(), 3, 224, 224), &Device::Cpu).unwrap();
    let net = imagenet_network(224, &Device::Cpu).unwrap();
    let logits: Vec<Vec<f32>> = net.forward_t(&x, false).unwrap().logits.to_vec2().unwrap();
    let names = imagenet_classes();
    assert_eq!(names.len(), 1000);
    let top1 = |l: &[f32]| {
        l.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    // coffee.png: espresso; chelsea.png: one of the domestic cats (281–285).
    assert_eq!(top1(&logits[0]), 967, "coffee: {}", names[top1(&logits[0])]);
    assert_eq!(names[967], "espresso");
    let cat = top1(&logits[1]);
    assert!(
        (281..=285).contains(&cat),
        "chelsea: {} ({cat})",
        names[cat]
    );
    for (img, ours) in images.iter().zip(&logits) {
        let reference: Vec<f32> = img["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let delta = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("{}: max |Δlogit| {delta:.5}", img["file"]);
        assert!(delta <= 1e-2, "{}: max |Δlogit| {delta}", img["file"]);
    }
}

#[test]
fn predict_names_the_espresso_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("p.json");
    let missing = dir.path().join("missing.png");
    let coffee = format!("{FIXTURES}/coffee-224.png");
    let (ok, out, err) = run_cli(&[
        "predict",
        "--model",
        "efficientnet-lite0",
        &coffee,
        missing.to_str().unwrap(),
        "--top",
        "3",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("espresso"), "{out}");
    assert!(
        err.contains("missing.png"),
        "the unreadable file is reported: {err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let preds = v.as_array().unwrap();
    assert_eq!(preds.len(), 1, "only the readable file: {v}");
    assert!(
        preds[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("coffee-224.png")
    );
    let top = preds[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert_eq!(top[0]["index"].as_u64(), Some(967));
    assert_eq!(top[0]["name"].as_str(), Some("espresso"));
    let p = top[0]["probability"].as_f64().unwrap();
    assert!(p > 0.8 && p <= 1.0, "espresso with p {p}");
}

/// A small colour folder: three coloured-digit classes at 40 px.
fn colour_folders(dir: &std::path::Path) -> (String, String) {
    let src = dir.join("src");
    let tgt = dir.join("tgt");
    write_digit_folder(&src, &[0, 1, 7], 12, Style::Coloured, 40, "png", 1);
    write_digit_folder(&tgt, &[0, 1, 7], 4, Style::Coloured, 56, "png", 2);
    (
        src.to_str().unwrap().to_string(),
        tgt.to_str().unwrap().to_string(),
    )
}

#[test]
fn efficientnet_trains_at_every_freezing_depth_on_a_colour_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (src, tgt) = colour_folders(dir.path());
    let mut trainable = Vec::new();
    for freeze in 0..=9 {
        let json = dir.path().join(format!("r{freeze}.json"));
        let (ok, _, err) = run_cli(&[
            "run",
            "--source",
            &src,
            "--target",
            &tgt,
            "--backbone",
            "efficientnet-lite0",
            "--input-size",
            "48",
            "--freeze",
            &freeze.to_string(),
            "--epochs",
            "1",
            "--batch-size",
            "12",
            "--json",
            json.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(ok, "freeze {freeze}: {err}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["backbone"].as_str(), Some("efficientnet-lite0"));
        assert_eq!(v["stages"].as_array().unwrap().len(), 9);
        let loss = v["history"][0]["train_loss"].as_f64().unwrap();
        assert!(loss.is_finite(), "freeze {freeze}: loss {loss}");
        trainable.push(v["trainable_params"].as_u64().unwrap());
    }
    // Each deeper freeze trains fewer parameters; a linear probe trains only the head.
    assert!(trainable.windows(2).all(|w| w[1] < w[0]), "{trainable:?}");
    assert_eq!(trainable[9], 1280 * 3 + 3);
}

#[test]
fn a_linear_probe_keeps_the_imagenet_weights_and_its_checkpoint_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let (src, tgt) = colour_folders(dir.path());
    let model = dir.path().join("probe.safetensors");
    let json = dir.path().join("report.json");
    let (ok, _, err) = run_cli(&[
        "run",
        "--source",
        &src,
        "--target",
        &tgt,
        "--backbone",
        "efficientnet-lite0",
        "--input-size",
        "64",
        "--freeze",
        "9",
        "--epochs",
        "8",
        "--batch-size",
        "12",
        "--save",
        model.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let acc = v["final"]["target_accuracy"].as_f64().unwrap();
    eprintln!(
        "linear probe on ImageNet features: target accuracy {acc:.3}, {:.1} s",
        v["elapsed_secs"]
    );
    assert!(acc > 0.5, "three classes, chance is 1/3: {acc}");
    // Frozen means frozen: weights and batch-norm statistics as shipped.
    let saved = candle_core::safetensors::load(&model, &Device::Cpu).unwrap();
    let shipped = candle_core::safetensors::load_buffer(
        transferlab::model::efficientnet::WEIGHTS,
        &Device::Cpu,
    )
    .unwrap();
    for name in [
        "_conv_stem.weight",
        "_blocks.7._depthwise_conv.weight",
        "_blocks.15._bn2.running_var",
        "_bn1.running_mean",
    ] {
        let a: Vec<f32> = saved[name].flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = shipped[name]
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(a, b, "{name} changed under a linear probe");
    }
    // The checkpoint classifies a target image with the folder's class names.
    let image = std::fs::read_dir(dir.path().join("tgt/7"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (ok, out, err) = run_cli(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        image.to_str().unwrap(),
        "--top",
        "3",
    ]);
    assert!(ok, "{err}");
    let first = out.lines().nth(1).unwrap_or_default();
    assert!(
        ["0", "1", "7"]
            .iter()
            .any(|c| first.trim_end().ends_with(c)),
        "{out}"
    );
}

#[test]
fn similarity_reads_any_stage_of_the_imagenet_network() {
    let dir = tempfile::tempdir().unwrap();
    let (src, tgt) = colour_folders(dir.path());
    for layer in ["stem", "stage4", "conv_head"] {
        let (ok, out, err) = run_cli(&[
            "similarity",
            "--source",
            &src,
            "--target",
            &tgt,
            "--backbone",
            "efficientnet-lite0",
            "--layer",
            layer,
            "--input-size",
            "48",
            "--permutations",
            "10",
        ]);
        assert!(ok, "{layer}: {err}");
        assert!(
            out.contains(&format!(
                "efficientnet-lite0 stage {layer} (ImageNet weights)"
            )),
            "{out}"
        );
    }
}

/// Four CC0 photos (the fixtures and their mirror images) in a flat folder.
fn photo_folder(dir: &std::path::Path) -> String {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["coffee", "chelsea"] {
        let img = image::open(format!("{FIXTURES}/{name}-224.png")).unwrap();
        img.save(photos.join(format!("{name}.png"))).unwrap();
        img.fliph()
            .save(photos.join(format!("{name}-mirrored.png")))
            .unwrap();
    }
    photos.to_str().unwrap().to_string()
}

/// `similarity --backbone efficientnet-lite0` measures the target against ImageNet and
/// speaks the notes' cases: photos the network recognises are case (a), digits case (c).
#[test]
fn similarity_from_imagenet_reads_case_a_for_photos_and_case_c_for_digits() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = colour_folders(dir.path());
    let photos = photo_folder(dir.path());
    let digits = dir.path().join("digits");
    // A flat (unlabeled) folder of four digits.
    write_digit_folder(&digits, &[3], 4, Style::Clean, 28, "png", 3);
    let digits = digits.join("3").to_str().unwrap().to_string();
    let mut seen = Vec::new();
    for (target, case) in [(photos, "a"), (digits, "c")] {
        let json = dir.path().join(format!("{case}.json"));
        let (ok, out, err) = run_cli(&[
            "similarity",
            "--source",
            &src,
            "--target",
            &target,
            "--backbone",
            "efficientnet-lite0",
            "--input-size",
            "224",
            "--permutations",
            "10",
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        assert!(out.contains("ImageNet "), "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["advice"]["case"].as_str(), Some(case), "{out}");
        let reason = v["advice"]["reason"].as_str().unwrap();
        assert!(reason.starts_with(&format!("Case ({case})")), "{reason}");
        let d = v["imagenet"]["distance"].as_f64().unwrap();
        assert_eq!(v["advice"]["imagenet_distance"].as_f64(), Some(d));
        seen.push(d);
    }
    assert!(
        seen[0] < seen[1],
        "photos nearer ImageNet than digits: {seen:?}"
    );
}
