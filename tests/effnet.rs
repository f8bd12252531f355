//! The shipped ImageNet EfficientNet-Lite0: the two CC0 photo crops of the fixture are
//! recognised (espresso, a cat), and all 1000 logits agree with PyTorch's reference
//! (timm's `tf_efficientnet_lite0` with the same weights, `scripts/convert-effnet-lite0.py`).

use candle_core::{Device, Tensor};
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
